"""Audit: who created, changed, launched and canceled what, newest first (admins, as in the API)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from runner_service.errors import BadRequest
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import PageCaller

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Audit', '/audit', role='admin')]
PAGE = 100


@router.get('/audit')
def audit_log(request: Request, caller: PageCaller,
              actor: Annotated[str, Query(max_length=255)] = '', action: Annotated[str, Query(max_length=32)] = '',
              target: Annotated[str, Query(max_length=255)] = '',
              cursor: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> Response:
    caller.need('admin')
    filters = {'actor': actor, 'action': action, 'target': target}
    try:
        entries = request.app.state.runtime.store.audit.list(
            limit=PAGE, before=cursor, **{key: value or None for key, value in filters.items()})
    except (ValueError, OverflowError) as exc:
        raise BadRequest('audit: %s' % str(exc)[:200]) from None
    query = urlencode({key: value for key, value in filters.items() if value})
    return render(request, caller, 'audit/list.html', {
        'entries': entries, 'filters': filters, 'query': query,
        'next_cursor': entries[-1]['id'] if len(entries) == PAGE else None})
