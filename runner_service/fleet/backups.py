"""The backup catalog: every attempt dbfleet.mysql.mysql_backup recorded, per host, newest first; each
host's restorable window, from its backups and its binlog archive (dbfleet.restorable); pins
(`dbfleet backups keep ID`: retention never removes the backup), audited."""

from __future__ import annotations

import datetime as dt

from dbfleet import restorable
from dbfleet.store import Store
from runner_service.errors import BadRequest, NotFound, Unprocessable


class BackupCatalog:
    def __init__(self, store: Store):
        self.store = store

    def page(self, host: str | None = None, method: str | None = None, status: str | None = None,
             since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 50,
             cursor: str | None = None, pinned: bool | None = None, include_removed: bool = False) -> dict:
        """{'backups': [...], 'next_cursor'}; naive times are UTC. Backups retention removed only
        with include_removed."""
        try:
            return self.store.backups.catalog(host=host, method=method, status=status, since=since, until=until,
                                              limit=limit, cursor=cursor, pinned=pinned,
                                              include_removed=include_removed)
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

    def get(self, backup_id: int) -> dict:
        try:
            backup = self.store.backups.get(backup_id)
        except ValueError as exc:
            raise BadRequest('backups: %s' % str(exc)[:300]) from None
        if backup is None:
            raise unknown_backup(backup_id)
        return backup

    def keep(self, backup_id: int, pinned: bool, actor: str) -> dict:
        """Pin (pinned=True) or unpin a backup; audited as backup.keep / backup.unkeep when it changed."""
        before = self.get(backup_id)
        try:
            after = self.store.backups.set_pinned(backup_id, pinned)
        except ValueError as exc:
            raise Unprocessable(str(exc)[:300]) from None
        if after is None:
            raise unknown_backup(backup_id)
        if before['pinned'] != after['pinned']:
            self.store.audit.record(actor, 'backup.keep' if pinned else 'backup.unkeep', after['host'],
                                    {'backup': backup_id, 'path': after['path']})
        return after


def unknown_backup(backup_id: int) -> NotFound:
    return NotFound('no backup %d: `dbfleet backups list` (GET /api/v1/backups) shows their ids' % backup_id)
