"""Who is looking at a page: the API token the user logged in with, kept in an HttpOnly cookie
and checked against the store on every request (a revoked or expired token logs out at once),
its role, and the CSRF token its forms carry.

The CSRF token is an HMAC of the session's own token: bound to the session, checked on every
POST, and needing no server-side state (docs/decisions.md)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import Response

from runner_service import tokens
from runner_service.errors import Forbidden

COOKIE = 'dbfleet_session'
LOGIN_CSRF_COOKIE = 'dbfleet_login_csrf'
CSRF_FIELD = 'csrf_token'
_CSRF_PURPOSE = b'dbfleet portal csrf v1'
# Why the login page was shown again: only these fixed texts are ever displayed.
LOGOUT_REASONS = {
    'expired': 'Your token has expired: log in with a new one.',
    'unknown': 'Your token is no longer valid (revoked or unknown): log in again.',
    'agent': 'An agent token only reports its host\'s cron runs: log in with a viewer, operator or admin token.',
    'bye': 'Logged out.',
}


class LoggedOut(Exception):
    """The request has no live session; `reason` is a key of LOGOUT_REASONS or ''."""

    def __init__(self, reason: str = ''):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Caller:
    token: str  # the bearer token itself (never rendered)
    record: dict  # its store record, as the API's routes get it

    @property
    def name(self) -> str:
        return self.record['name']

    @property
    def role(self) -> str:
        return self.record['role']

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)

    def can(self, role: str) -> bool:
        return tokens.allows(self.role, role)

    def need(self, role: str) -> None:
        """Forbidden (403) unless the caller's role allows `role`."""
        if not self.can(role):
            raise Forbidden('token %r has role %s; this needs %s or above' % (self.name, self.role, role))


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


def check_token(request: Request, text: str) -> Caller:
    """The caller `text` logs in as; LoggedOut with the reason when the store refuses it (an
    agent token included: the portal is for people)."""
    try:
        record = tokens.verify(request.app.state.runtime.store, text)
    except tokens.Refused as refused:
        raise LoggedOut(refused.reason) from None
    if record['role'] == tokens.AGENT:
        raise LoggedOut('agent')
    return Caller(token=text, record=record)


def page_caller(request: Request) -> Caller:
    text = request.cookies.get(COOKIE)
    if not text:
        raise LoggedOut()
    return check_token(request, text)


def form_caller(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = '') -> Caller:
    """The caller of a POST, whose form carries the session's CSRF token (else 403)."""
    caller = page_caller(request)
    if not hmac.compare_digest(csrf_token.encode(), caller.csrf.encode()):
        raise Forbidden('the form\'s CSRF token is missing or wrong: reload the page and send it again')
    return caller


PageCaller = Annotated[Caller, Depends(page_caller)]
FormCaller = Annotated[Caller, Depends(form_caller)]


def _secure(request: Request) -> bool:
    return request.url.scheme == 'https'


def start_session(request: Request, response: Response, caller: Caller) -> None:
    response.set_cookie(COOKIE, caller.token, httponly=True, samesite='strict', secure=_secure(request), path='/')
    response.delete_cookie(LOGIN_CSRF_COOKIE, path='/login')


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path='/')


def new_login_csrf() -> str:
    """Before a session exists, the login form is protected by a double-submit cookie: this
    value goes into the form and, with set_login_csrf, into the cookie."""
    return secrets.token_urlsafe(32)


def set_login_csrf(request: Request, response: Response, value: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, value, httponly=True, samesite='strict', secure=_secure(request),
                        path='/login')


def check_login_csrf(request: Request, sent: str) -> None:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ''
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden('the login form\'s CSRF token is missing or wrong: reload the login page')
