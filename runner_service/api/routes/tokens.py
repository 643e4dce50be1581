"""/api/v1/tokens: admins create, list and revoke bearer tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from dbfleet.store.errors import UnknownToken
from runner_service import tokens
from runner_service.api.deps import Admin, RuntimeDep
from runner_service.api.errors import error_responses
from runner_service.errors import BadRequest, NotFound
from runner_service.schemas import TokenCreate, TokenCreated, TokenOut

router = APIRouter(prefix='/api/v1/tokens', tags=['tokens'])
ERRORS = error_responses(400, 401, 403, 404, 422)


def token_view(record: dict) -> TokenOut:
    """A token record as the API shows it (never its hash: the store does not return it)."""
    return TokenOut(**record, expired=tokens.is_expired(record))


@router.post('', status_code=201, response_model=TokenCreated, responses=ERRORS)
def create(body: TokenCreate, runtime: RuntimeDep, caller: Admin) -> TokenCreated:
    """The token is in this answer only: dbfleet keeps its hash. An agent token names its host;
    any token may expire (expires_at, or expires_in such as 90d)."""
    try:
        text, record = tokens.create(runtime.store, body.name, body.role, caller['name'], host=body.host,
                                     expires=body.expires_in, expires_at=body.expires_at, templates=body.templates)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return TokenCreated(token=text, **token_view(record).model_dump())


@router.get('', response_model=list[TokenOut], responses=ERRORS)
def list_tokens(runtime: RuntimeDep, caller: Admin, all: bool = False) -> list[TokenOut]:
    return [token_view(record) for record in runtime.store.tokens.list(include_revoked=all)]


@router.delete('/{name}', response_model=TokenOut, responses=ERRORS)
def revoke(name: Annotated[str, Path(max_length=255)], runtime: RuntimeDep, caller: Admin) -> TokenOut:
    try:
        return token_view(tokens.revoke(runtime.store, name, caller['name']))
    except UnknownToken as exc:
        raise NotFound(str(exc)) from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
