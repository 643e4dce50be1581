"""The backup catalog: every attempt dbfleet.mysql.mysql_backup recorded, per host, newest first."""

from __future__ import annotations

import datetime as dt

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
