"""Every error the API returns is a JSON body {detail, errors?} with the status that fits."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dbfleet.store import StoreError, StoreUnavailable
from runner_service.errors import ServiceError
from runner_service.schemas import Problem

log = logging.getLogger(__name__)

HTTP_METHODS = ('get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace')


def error_responses(*statuses: int) -> dict:
    """A route's OpenAPI `responses` for the error statuses it may answer: each a Problem body."""
    return {status: {'model': Problem} for status in statuses}


def problem(status: int, detail: str, errors: list | None = None, headers: dict | None = None) -> JSONResponse:
    body: dict = {'detail': detail}
    if errors is not None:
        body['errors'] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _field(error: dict) -> str:
    location = [str(part) for part in error.get('loc', ()) if part not in ('body', 'query', 'path', 'header')]
    return '.'.join(location) or 'request'


def allowed_methods(request: Request) -> str:
    """Every method the API serves at the request's path, from its OpenAPI document and the portal's
    pages (Starlette's own 405 names only the methods of the first route whose path matched, one of several)."""
    methods: set[str] = set()
    path = request.url.path
    # The portal's pages are left out of the document: install() lists them in app.state.page_routes.
    served = [(template, [method.lower() for method in page_methods])
              for template, page_methods in getattr(request.app.state, 'page_routes', ())]
    documented = [*request.app.openapi().get('paths', {}).items(), *served]
    # A path served literally (/api/v1/backups/restore) is not also a parameter's value (/{backup_id}).
    literal = [(template, operations) for template, operations in documented if template == path]
    for template, operations in literal or documented:
        if re.fullmatch(re.sub(r'\\\{[^/]+?\\\}', '[^/]+', re.escape(template)), path):
            methods.update(method.upper() for method in operations if method in HTTP_METHODS)
    if 'GET' in methods:
        methods.add('HEAD')  # Starlette answers HEAD wherever it answers GET
    return ', '.join(sorted(methods))


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = [{'field': _field(error), 'message': error.get('msg', ''), 'type': error.get('type', '')}
                  for error in exc.errors()]
        summary = '; '.join('%s: %s' % (error['field'], error['message']) for error in errors[:5])
        return problem(422, 'invalid request: %s' % summary, errors)

    @app.exception_handler(ServiceError)
    async def job_error(request: Request, exc: ServiceError):
        return problem(exc.status, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        headers = dict(getattr(exc, 'headers', None) or {})
        if exc.status_code == 405:
            headers['Allow'] = allowed_methods(request)
            return problem(405, '%s is not served at %s; allowed: %s' % (request.method, request.url.path[:200],
                                                                         headers['Allow']), headers=headers)
        return problem(exc.status_code, str(exc.detail), headers=headers or None)

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable):
        return problem(503, 'the store is unavailable: %s' % exc)

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError):
        log.exception('store error on %s %s', request.method, request.url.path)
        return problem(500, 'store error: %s' % exc)
