"""What routes get injected: the process Runtime, the job service, and the caller's token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from runner_service import tokens
from runner_service.jobs import JobService
from runner_service.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description='a token from `dbfleet tokens create NAME --role ROLE`')


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_jobs(runtime: Annotated[Runtime, Depends(get_runtime)]) -> JobService:
    return JobService(runtime)


def require(role: str):
    """A dependency: the caller's token record, if its role allows `role`; else 401 or 403."""
    async def caller(runtime: Annotated[Runtime, Depends(get_runtime)],
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> dict:
        if credentials is None:
            raise HTTPException(401, 'no bearer token: send "Authorization: Bearer <token>" (create one with '
                                     '`dbfleet tokens create NAME --role viewer|operator|admin`)',
                                headers={'WWW-Authenticate': 'Bearer'})
        token = await run_in_threadpool(tokens.authenticate, runtime.store, credentials.credentials)
        if token is None:
            raise HTTPException(401, 'the bearer token is unknown or revoked', headers={'WWW-Authenticate': 'Bearer'})
        if not tokens.allows(token['role'], role):
            raise HTTPException(403, 'token %r has role %s; this needs %s or above' % (token['name'], token['role'],
                                                                                     role))
        return token
    return caller


Viewer = Annotated[dict, Depends(require('viewer'))]
Operator = Annotated[dict, Depends(require('operator'))]
Admin = Annotated[dict, Depends(require('admin'))]
Jobs = Annotated[JobService, Depends(get_jobs)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
