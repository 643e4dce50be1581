"""/api/v1/pools: named concurrency limits that every job's plan can name (admins set them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from dbfleet.store import UnknownPool
from runner_service.api.deps import Admin, RuntimeDep, Viewer
from runner_service.api.errors import error_responses
from runner_service.errors import BadRequest, NotFound
from runner_service.schemas import PoolOut, PoolSet

router = APIRouter(prefix='/api/v1/pools', tags=['pools'])
ERRORS = error_responses(400, 401, 403, 404, 422)
Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r'^[a-z0-9][a-z0-9_-]{0,63}$')]


@router.get('', response_model=list[PoolOut], responses=ERRORS)
def list_pools(runtime: RuntimeDep, caller: Viewer) -> list[PoolOut]:
    return [PoolOut(**pool) for pool in runtime.store.pools.list()]


@router.get('/{name}', response_model=PoolOut, responses=ERRORS)
def show(name: Name, runtime: RuntimeDep, caller: Viewer) -> PoolOut:
    try:
        return PoolOut(**runtime.store.pools.get(name))
    except UnknownPool as exc:
        raise NotFound(str(exc)) from None


@router.put('/{name}', response_model=PoolOut, responses=ERRORS)
def set_pool(name: Name, body: PoolSet, runtime: RuntimeDep, caller: Admin) -> PoolOut:
    """Create the pool or resize it (holders keep their slots; new ones wait for a free one)."""
    try:
        pool = runtime.store.pools.set(name, body.slots, body.description)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    runtime.store.audit.record(caller['name'], 'pool.set', name, {'slots': body.slots})
    return PoolOut(**pool)


@router.delete('/{name}', response_model=PoolOut, responses=ERRORS)
def delete(name: Name, runtime: RuntimeDep, caller: Admin) -> PoolOut:
    try:
        pool = runtime.store.pools.delete(name)
    except UnknownPool as exc:
        raise NotFound(str(exc)) from None
    runtime.store.audit.record(caller['name'], 'pool.delete', name)
    return PoolOut(**pool)
