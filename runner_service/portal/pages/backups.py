"""Backups: per host, the last successful backup and its age, the last attempt (a failure says
why), and the size trend of its recent successful backups as a small server-drawn chart."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dbfleet.clock import utc, utcnow
from dbfleet.profiles import human_bytes
from dbfleet.store.backups import MAX_LIST
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import PageCaller

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Backups', '/backups')]
TREND = 10  # successful backups in a host's size trend
SPARK_WIDTH, SPARK_HEIGHT = 120, 24


@dataclass
class HostBackups:
    host: str
    last_ok: dict | None = None
    last: dict | None = None
    sizes: list[int] = field(default_factory=list)  # oldest first

    def spark(self) -> str:
        """The size trend as SVG polyline points ('' under two sizes)."""
        if len(self.sizes) < 2:
            return ''
        low, high = min(self.sizes), max(self.sizes)
        step = SPARK_WIDTH / (len(self.sizes) - 1)
        return ' '.join('%.1f,%.1f' % (index * step, SPARK_HEIGHT - 2 - (size - low) / ((high - low) or 1)
                                       * (SPARK_HEIGHT - 4)) for index, size in enumerate(self.sizes))


def by_host(attempts: list[dict], hosts: list[str]) -> list[HostBackups]:
    """Each host's backups from `attempts` (newest first), every host of `hosts` included."""
    found = {name: HostBackups(name) for name in hosts}
    for attempt in attempts:
        entry = found.setdefault(attempt['host'], HostBackups(attempt['host']))
        entry.last = entry.last or attempt
        if attempt['status'] == 'ok':
            entry.last_ok = entry.last_ok or attempt
            if attempt['bytes'] is not None and len(entry.sizes) < TREND:
                entry.sizes.insert(0, attempt['bytes'])
    return [found[name] for name in sorted(found)]


@router.get('/backups')
def backups_page(request: Request, caller: PageCaller) -> Response:
    store = request.app.state.runtime.store
    hosts = by_host(store.backups.list(limit=MAX_LIST), [host['name'] for host in store.hosts.list()])
    now = utcnow()
    return render(request, caller, 'backups/list.html', {
        'hosts': hosts, 'human_bytes': human_bytes, 'spark': (SPARK_WIDTH, SPARK_HEIGHT),
        'age': lambda attempt: (now - utc(attempt['finished_at'] or attempt['started_at'])).total_seconds()})
