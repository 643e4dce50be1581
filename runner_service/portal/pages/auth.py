"""/login, /logout and / (the front page: the jobs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from runner_service.portal.rendering import PortalRoute, render
from runner_service.portal.session import (
    LOGOUT_REASONS,
    FormCaller,
    LoggedOut,
    check_login_csrf,
    check_token,
    end_session,
    new_login_csrf,
    set_login_csrf,
    start_session,
)

router = APIRouter(route_class=PortalRoute)
HOME = '/jobs'


@router.get('/')
def front() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get('/login')
def login_page(request: Request, reason: Annotated[str, Query(max_length=20)] = '') -> Response:
    return _login_form(request, LOGOUT_REASONS.get(reason, ''))


@router.post('/login')
def login(request: Request, token: Annotated[str, Form(max_length=200)] = '',
          csrf_token: Annotated[str, Form(max_length=200)] = '') -> Response:
    check_login_csrf(request, csrf_token)
    try:
        caller = check_token(request, token.strip())
    except LoggedOut as out:
        message = LOGOUT_REASONS['agent'] if out.reason == 'agent' else 'That token is not valid (unknown, revoked or expired).'
        return _login_form(request, message, status_code=401)
    response = RedirectResponse(HOME, status_code=303)
    start_session(request, response, caller)
    return response


@router.post('/logout')
def logout(caller: FormCaller) -> Response:
    response = RedirectResponse('/login?reason=bye', status_code=303)
    end_session(response)
    return response


def _login_form(request: Request, message: str, status_code: int = 200) -> Response:
    csrf = new_login_csrf()
    response = render(request, None, 'login.html', {'message': message, 'login_csrf': csrf},
                      status_code=status_code)
    set_login_csrf(request, response, csrf)
    return response
