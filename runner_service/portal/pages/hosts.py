"""Hosts: the fleet filtered by a tag expression (`large and not maintenance`), with columns from
the latest facts, and each database's profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from dbfleet.profiles import host_profile, human_bytes
from dbfleet.store import UnknownHost
from dbfleet.tags import TagExpressionError, parse_tag_expression
from runner_service.errors import BadRequest, NotFound
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import PageCaller

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Hosts', '/hosts')]
# (column, dotted path into the latest facts)
COLUMNS = (('version', 'server.version.full'), ('role', 'replication.role'), ('lag', 'replication.lag_seconds'),
           ('data', 'schemas.totals.total_bytes'), ('uptime', 'server.uptime_seconds'))


@router.get('/hosts')
def host_list(request: Request, caller: PageCaller,
              tags: Annotated[str, Query(max_length=1000, description='a tag expression')] = '') -> Response:
    store = request.app.state.runtime.store
    try:
        matches = parse_tag_expression(tags) if tags.strip() else None
    except TagExpressionError as exc:
        raise BadRequest('tag filter %r: %s' % (tags[:100], str(exc).replace('\n', ' ')[:300])) from None
    hosts = [record for record in store.hosts.inventory(fact_paths=[path for _, path in COLUMNS])
             if matches is None or matches.matches(record['tags'])]
    return render(request, caller, 'hosts/list.html', {'hosts': hosts, 'tags': tags, 'columns': COLUMNS,
                                                        'human_bytes': human_bytes})


@router.get('/hosts/{name}')
def profile(request: Request, caller: PageCaller, name: Annotated[str, Path(min_length=1, max_length=255)]) -> Response:
    try:
        found = host_profile(request.app.state.runtime.store, name)
    except UnknownHost:
        raise NotFound('no host named %r in the store' % name[:100]) from None
    return render(request, caller, 'hosts/profile.html', {'profile': found, 'name': name, 'human_bytes': human_bytes})
