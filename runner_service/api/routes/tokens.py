"""/api/v1/tokens: admins create, list and revoke bearer tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from runner_service import tokens
from runner_service.api.deps import Admin, RuntimeDep
from runner_service.api.schemas import Problem, TokenCreate, TokenCreated, TokenOut
from runner_service.jobs import BadRequest, NotFound
from runner_service.store.errors import UnknownToken

router = APIRouter(prefix='/api/v1/tokens', tags=['tokens'])
ERRORS = {status: {'model': Problem} for status in (400, 401, 403, 404, 422)}


@router.post('', status_code=201, response_model=TokenCreated, responses=ERRORS)
def create(body: TokenCreate, runtime: RuntimeDep, caller: Admin) -> TokenCreated:
    """The token is in this answer only: dbfleet keeps its hash."""
    try:
        text, record = tokens.issue(runtime.store, body.name, body.role, created_by=caller['name'],
                                    templates=body.templates)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    runtime.store.audit(caller['name'], 'token.create', body.name, {'role': body.role, 'templates': body.templates})
    return TokenCreated(token=text, **record)


@router.get('', response_model=list[TokenOut], responses=ERRORS)
def list_tokens(runtime: RuntimeDep, caller: Admin, all: bool = False) -> list[TokenOut]:
    return [TokenOut(**record) for record in runtime.store.list_tokens(include_revoked=all)]


@router.delete('/{name}', response_model=TokenOut, responses=ERRORS)
def revoke(name: Annotated[str, Path(max_length=255)], runtime: RuntimeDep, caller: Admin) -> TokenOut:
    try:
        record = runtime.store.revoke_token(name)
    except UnknownToken as exc:
        raise NotFound(str(exc)) from None
    runtime.store.audit(caller['name'], 'token.revoke', name)
    return TokenOut(**record)
