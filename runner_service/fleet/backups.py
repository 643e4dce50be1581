"""The backup catalog: every attempt dbfleet.mysql.mysql_backup recorded, per host, newest first; and each
host's restorable window, from its backups and its binlog archive (dbfleet.restorable)."""

from __future__ import annotations

import datetime as dt

from dbfleet import restorable
from dbfleet.store import Store
from runner_service.errors import BadRequest


class BackupCatalog:
    def __init__(self, store: Store):
        self.store = store

    def page(self, host: str | None = None, method: str | None = None, status: str | None = None,
             since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 50,
             cursor: str | None = None) -> dict:
        """{'backups': [...], 'next_cursor'}; naive times are UTC."""
        try:
            return self.store.backups.catalog(host=host, method=method, status=status, since=since, until=until,
                                              limit=limit, cursor=cursor)
        except (ValueError, OverflowError) as exc:
            raise BadRequest('backups: %s' % str(exc)[:300]) from None

    def windows(self, host: str | None = None) -> dict:
        """{'windows': [...]}: the restorable window of every host with a backup or an archived binlog (of
        `host` alone when given), by host name."""
        try:
            if host is not None:
                backups = {host: self.store.backups.list(host=host, limit=1000)}
                states = {host: self.store.binlogs.state(host)}
                hosts = [host]
            else:
                backups = self.store.backups.recent_by_host(last=1000)
                states = self.store.binlogs.states()
                hosts = sorted(set(backups) | set(self.store.binlogs.newest_by_host()) | set(states))
        except (ValueError, OverflowError) as exc:
            raise BadRequest('backups: %s' % str(exc)[:300]) from None
        found = []
        for name in hosts:
            state = states.get(name)
            found.append(restorable.window(name, backups.get(name, []), self.store.binlogs.list(name),
                                           state['gaps'] if state else []))
            found[-1]['lag_seconds'] = state['lag_seconds'] if state else None
        return dict(windows=found)
