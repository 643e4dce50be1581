"""Runs of crontab entries bridged to dbfleet (`store.cron`).

The wrapper (`dbfleet cron exec`) reports a run twice, when it starts and when it ends, and
either report may come late (spooled while the API was unreachable) or twice (a delivery
whose answer was lost). `save_run` therefore merges: the first report creates the row,
later ones fill in what they know, and a finished run never goes back to running.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.models import CRON_RUN_STATUSES, CRON_RUN_VIA, CronRun
from dbfleet.store.transactions import Transactions

CRON_RUN_FIELDS = ('schedule_id', 'host', 'via', 'status', 'slot_at', 'started_at', 'finished_at', 'exit_code',
                   'duration_seconds', 'output_tail')
_COLUMNS = tuple(column.key for column in CronRun.__table__.columns)


class Cron:
    """store.cron: the runs of bridged crontab entries."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def save_run(self, run_id: str, **fields: Any) -> tuple[dict, bool]:
        """(the run as stored, whether this call created it)."""
        unknown = sorted(set(fields) - set(CRON_RUN_FIELDS))
        if unknown:
            raise ValueError('cron run: unknown field %s' % ', '.join(unknown))
        if fields.get('status') not in CRON_RUN_STATUSES:
            raise ValueError('cron run: status must be one of %s' % ', '.join(CRON_RUN_STATUSES))
        if fields.get('via', 'observe') not in CRON_RUN_VIA:
            raise ValueError('cron run: via must be one of %s' % ', '.join(CRON_RUN_VIA))

        def work(session: Session) -> tuple[dict, bool]:
            run = session.get(CronRun, run_id, with_for_update=True)
            if run is None:
                run = CronRun(id=run_id, received_at=utcnow(), **fields)
                session.add(run)
                session.flush()  # a racing delivery of the same run fails here, and the transaction runs again
                return _dict(run), True
            finished = run.status in ('ok', 'failed', 'skipped')
            for name, value in fields.items():
                if value is None or (finished and name == 'status' and value == 'running'):
                    continue
                if name == 'slot_at' and run.slot_at is not None:
                    continue  # the slot a run was claimed for stays
                setattr(run, name, value)
            run.received_at = utcnow()
            session.flush()
            return _dict(run), False

        return self._transactions.run(work, write=True)

    def get_run(self, run_id: str) -> dict | None:
        def work(session: Session) -> dict | None:
            run = session.get(CronRun, run_id)
            return _dict(run) if run is not None else None

        return self._transactions.run(work)

    def list_runs(self, schedule_id: str | None = None, host: str | None = None, limit: int = 50,
                  before: dt.datetime | None = None) -> list[dict]:
        """Newest first."""
        query = select(CronRun).order_by(CronRun.started_at.desc(), CronRun.id).limit(limit)
        if schedule_id is not None:
            query = query.where(CronRun.schedule_id == schedule_id)
        if host is not None:
            query = query.where(CronRun.host == host)
        if before is not None:
            query = query.where(CronRun.started_at < utc(before))
        return self._transactions.run(lambda session: [_dict(run) for run in session.scalars(query)])

    def run_for_slot(self, schedule_id: str, slot_at: dt.datetime) -> dict | None:
        """The run that crontab made for this slot (not one told to skip it), if any."""
        query = (select(CronRun).where(CronRun.schedule_id == schedule_id, CronRun.slot_at == utc(slot_at),
                                       CronRun.status != 'skipped').order_by(CronRun.started_at).limit(1))

        def work(session: Session) -> dict | None:
            run = session.scalar(query)
            return _dict(run) if run is not None else None

        return self._transactions.run(work)


def _dict(run: CronRun) -> dict:
    return {name: getattr(run, name) for name in _COLUMNS}
