"""/api/v1/hosts: the fleet's database hosts. Viewers list them (tag expression, text, paging by
name) and read each one's profile; admins add, edit and delete them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from runner_service.api.deps import Admin, HostsDep, Viewer
from runner_service.api.errors import error_responses
from runner_service.fleet.schemas import HostDeleted, HostPage, HostRecord, HostUpdate, Profile

router = APIRouter(prefix='/api/v1/hosts', tags=['hosts'])
ERRORS = error_responses(400, 401, 403, 404, 413, 422)
Name = Annotated[str, Path(min_length=1, max_length=255, description='a host name')]


@router.get('', response_model=HostPage, responses=ERRORS)
def list_hosts(hosts: HostsDep, caller: Viewer,
               tags: Annotated[str | None, Query(max_length=4096, description="a tag expression: 'large and not "
                                                 "maintenance'")] = None,
               q: Annotated[str | None, Query(min_length=1, max_length=255, description='text in the name, address '
                                              'or attributes (any case)')] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               cursor: Annotated[str | None, Query(min_length=1, max_length=255, description='a next_cursor')] = None,
               ) -> HostPage:
    """By name, with unexpired tags and a summary of the latest facts; pass next_cursor back as
    cursor for the next page."""
    return HostPage(**hosts.list(tags=tags, q=q, limit=limit, cursor=cursor))


@router.get('/{name}', response_model=HostRecord, responses=ERRORS)
def show(name: Name, hosts: HostsDep, caller: Viewer) -> HostRecord:
    return HostRecord(**hosts.get(name))


@router.get('/{name}/profile', response_model=Profile, responses=ERRORS)
def profile(name: Name, hosts: HostsDep, caller: Viewer) -> Profile:
    """The database's page: facts summary, tags by dimension with evidence, tag history, recent
    jobs and host runs, backups, bridged crontab entries."""
    return Profile(**hosts.profile(name))


@router.put('/{name}', response_model=HostRecord, responses=ERRORS)
def put(name: Name, body: HostUpdate, hosts: HostsDep, caller: Admin) -> HostRecord:
    """Add the host, or change it: attributes are merged (null removes one), address and port
    change when given (as `dbfleet hosts set`)."""
    return HostRecord(**hosts.update(name, body, caller['name']))


@router.delete('/{name}', response_model=HostDeleted, responses=ERRORS)
def delete(name: Name, hosts: HostsDep, caller: Admin) -> HostDeleted:
    """Its facts and tags go; its jobs, backups and tag history stay, and the audit log keeps
    the tags it had."""
    return HostDeleted(**hosts.delete(name, caller['name']))
