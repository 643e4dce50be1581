"""How a portal page answers: PortalRoute wraps every page with the security headers, turns a
service error into an HTML error page with its status and a lost session into the login page;
render() fills a Jinja2 template with the caller, its CSRF token and the navigation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from dbfleet.clock import utc, utcnow
from runner_service.errors import ServiceError
from runner_service.portal.session import CSRF_FIELD, Caller, LoggedOut, end_session

HERE = Path(__file__).parent
# No inline script or style anywhere; the pages load only their own files and talk only to this origin.
SECURITY_HEADERS = {
    'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
    'Cache-Control': 'no-store',
}


@dataclass(frozen=True)
class NavEntry:
    label: str
    path: str
    role: str = 'viewer'  # the least role that sees it


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ''
    seconds = int(seconds)
    if seconds < 60:
        return '%ds' % seconds
    if seconds < 3600:
        return '%dm %02ds' % divmod(seconds, 60)
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return '%dh %02dm' % (hours, rest // 60)
    days, rest = divmod(seconds, 86400)
    return '%dd %dh' % (days, rest // 3600)


def when(value: dt.datetime | str | None) -> str:
    """A time as the pages show it: UTC, to the second."""
    if value is None:
        return ''
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return utc(value).strftime('%Y-%m-%d %H:%M:%S')


def zoned(value: dt.datetime | None, tz) -> str:
    """A time in the zone `tz` (a tzinfo), with the zone's abbreviation."""
    if value is None:
        return ''
    return utc(value).astimezone(tz).strftime('%Y-%m-%d %H:%M:%S %Z')


def iso(value: dt.datetime | None) -> str:
    """A time as static/portal.js reads it to show it in the viewer's own zone."""
    return '' if value is None else utc(value).isoformat()


def elapsed(start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from `start` to `end` (still going: to now)."""
    if start is None:
        return None
    return ((utc(end) if end is not None else now or utcnow()) - utc(start)).total_seconds()


templates = Jinja2Templates(directory=HERE / 'templates')
templates.env.filters.update(duration=duration, when=when, zoned=zoned, iso=iso)
templates.env.globals.update(elapsed=elapsed)


def render(request: Request, caller: Caller | None, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> Response:
    nav = [entry for entry in request.app.state.portal_nav if caller is not None and caller.can(entry.role)]
    csrf = caller.csrf if caller is not None else ''
    return templates.TemplateResponse(request, name, {
        'caller': caller, 'nav': nav, 'csrf': csrf,
        'csrf_field': lambda: Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, csrf),
        **(context or {})}, status_code=status_code)


def is_fragment(request: Request) -> bool:
    return request.headers.get('HX-Request') == 'true'


class PortalRoute(APIRoute):
    """A portal page: security headers on every answer; a ServiceError becomes the error page
    with its status, a lost session the login page (htmx is told to go there)."""

    def get_route_handler(self) -> Callable:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handle(request)
            except LoggedOut as out:
                response = _to_login(request, out.reason)
            except ServiceError as error:
                response = error_page(request, error.status, error.detail)
            except RequestValidationError as invalid:
                response = error_page(request, 422, '; '.join(
                    '%s: %s' % ('.'.join(map(str, error['loc'][1:])) or 'request', error['msg'])
                    for error in invalid.errors()[:5]))
            response.headers.update(SECURITY_HEADERS)
            return response

        return page


def error_page(request: Request, status: int, detail: str) -> Response:
    return render(request, None, 'error.html', {'status': status, 'detail': detail[:2000]}, status_code=status)


def _to_login(request: Request, reason: str) -> Response:
    target = '/login' + ('?reason=%s' % reason if reason else '')
    if is_fragment(request):
        response = Response(status_code=401, headers={'HX-Redirect': target})
    else:
        response = RedirectResponse(target, status_code=303)
    end_session(response)
    return response
