"""Backups: per host its last successful backup, its age, the size trend of its recent backups
(a small SVG line), its restorable window (from its backups and binlog archive) and its failures;
a host's page shows its window, the gaps in its archive and its attempts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from dbfleet.clock import utcnow
from dbfleet.profiles import drill_summary, human_bytes
from runner_service.jobs import backups_overview
from runner_service.errors import NotFound
from runner_service.fleet.backups import BackupCatalog
from runner_service.fleet.schemas import HOST_NAME_PATTERN
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import PageCaller
from runner_service.portal.sparkline import sparkline

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Backups', '/backups')]
# Any host the store may hold (an IPv6 address, a name with ':' or '@'): the list links them all.
Host = Annotated[str, Path(max_length=255, pattern=HOST_NAME_PATTERN)]
ATTEMPTS = 100


@router.get('/backups')
def backup_list(request: Request, caller: PageCaller) -> Response:
    now = utcnow()
    store = request.app.state.runtime.store
    hosts = backups_overview.by_host(store, now)
    windows = {window['host']: window for window in BackupCatalog(store).windows()['windows']}
    return render(request, caller, 'backups/list.html', {
        'hosts': hosts, 'windows': windows, 'trends': {host['host']: sparkline(host['sizes']) for host in hosts},
        'human_bytes': human_bytes, 'stale_after': backups_overview.STALE_AFTER.total_seconds(), 'recent': backups_overview.RECENT})


@router.get('/backups/{host}')
def host_backups(request: Request, caller: PageCaller, host: Host) -> Response:
    store = request.app.state.runtime.store
    attempts = store.backups.list(host, limit=ATTEMPTS)
    if not attempts:
        raise NotFound('no backup of host %r is recorded' % host)
    (window,) = BackupCatalog(store).windows(host=host)['windows']
    trend = sparkline([attempt['bytes'] for attempt in reversed(attempts)
                       if attempt['status'] == 'ok' and attempt['bytes'] is not None])
    return render(request, caller, 'backups/host.html', {'host': host, 'attempts': attempts, 'trend': trend,
                                                         'human_bytes': human_bytes, 'window': window,
                                                         'drills': drill_summary(store, host)})
