"""Restore drills, as dbfleet.mysql.restore_drill reports them.

`store.drills` (Drills): one row per host and drill - {id, host, backup_id, job_id, status ('ok' |
'failed'), started_at, finished_at, rto_seconds, restored_to, restored_gtid, rpo_seconds, bytes,
detail, error}. Recording a drill of a backup also marks that backup restore-tested (its
restore_tested_at / restore_test_status), in the same transaction. `state` and `states` say, per
host, when its backups were last drilled and since when they have gone untested (the tag rule
`untested_backup`, /metrics and the profile read it).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dbfleet.clock import utc
from dbfleet.store.checks import check_datetime, check_limit
from dbfleet.store.models import DRILL_STATUSES, JOB_ID_LENGTH, NAME_LENGTH, Backup, Drill
from dbfleet.store.transactions import Transactions

MAX_ERROR_LENGTH = 4000
MAX_GTID_LENGTH = 4000
_CHUNK = 500


class Drills:
    """store.drills: record a drill, list them, each host's drill state."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def record(self, host: str, status: str, started_at: dt.datetime, finished_at: dt.datetime,
               backup_id: int | None = None, job_id: str | None = None, rto_seconds: float | None = None,
               restored_to: dt.datetime | None = None, restored_gtid: str | None = None,
               bytes: int | None = None, detail: dict | None = None, error: str | None = None,
               data_age: bool = True) -> dict:
        """Record one drill; rpo_seconds is computed (started_at - restored_to) when `data_age` (a drill to
        the newest data it could reach: that age is what a restore now would lose; not for a drill to an
        instant chosen inside the window). With backup_id (a backup of `host`), that backup is marked
        restore-tested with the drill's status and end."""
        if not isinstance(host, str) or not host or len(host) > NAME_LENGTH:
            raise ValueError('drill: host must be a non-empty string of at most %d characters' % NAME_LENGTH)
        if status not in DRILL_STATUSES:
            raise ValueError('drill: status must be one of %s, got %r' % (', '.join(DRILL_STATUSES), status))
        started_at = check_datetime(started_at, 'started_at')
        finished_at = check_datetime(finished_at, 'finished_at')
        if finished_at < started_at:
            raise ValueError('drill: finished_at is before started_at')
        if restored_to is not None:
            restored_to = check_datetime(restored_to, 'restored_to')
        if backup_id is not None and (isinstance(backup_id, bool) or not isinstance(backup_id, int)):
            raise ValueError('drill: backup_id must be an integer, got %r' % (backup_id,))
        if job_id is not None and (not isinstance(job_id, str) or not job_id or len(job_id) > JOB_ID_LENGTH):
            raise ValueError('drill: job_id must be a job id')
        if rto_seconds is not None and not _finite(rto_seconds):
            raise ValueError('drill: rto_seconds must be a non-negative number, got %r' % (rto_seconds,))
        if bytes is not None and (isinstance(bytes, bool) or not isinstance(bytes, int) or bytes < 0):
            raise ValueError('drill: bytes must be a non-negative integer')
        if restored_gtid is not None and (not isinstance(restored_gtid, str) or len(restored_gtid) > MAX_GTID_LENGTH):
            raise ValueError('drill: restored_gtid must be a GTID position')
        if detail is not None and not isinstance(detail, dict):
            raise ValueError('drill: detail must be a mapping')
        if error is not None and not isinstance(error, str):
            raise ValueError('drill: error must be a string')
        rpo = (started_at - restored_to).total_seconds() if restored_to is not None and data_age else None

        def work(session: Session) -> dict:
            if backup_id is not None:
                backup = session.get(Backup, backup_id, with_for_update=True)
                if backup is None or backup.host != host:
                    raise ValueError('drill: no backup %d of host %s' % (backup_id, host))
                backup.restore_tested_at, backup.restore_test_status = finished_at, status
            row = Drill(host=host, backup_id=backup_id, job_id=job_id, status=status, started_at=started_at,
                        finished_at=finished_at, rto_seconds=rto_seconds, restored_to=restored_to,
                        restored_gtid=restored_gtid or None, rpo_seconds=rpo, bytes=bytes, detail=detail or None,
                        error=error[-MAX_ERROR_LENGTH:] if error else None)
            session.add(row)
            session.flush()
            return drill_dict(row)

        return self._transactions.run(work, write=True)

    def list(self, host: str | None = None, status: str | None = None, limit: int = 50) -> list[dict]:
        """Drills, newest first (of one host, of one status)."""
        check_limit(limit)
        if status is not None and status not in DRILL_STATUSES:
            raise ValueError('drill status must be one of %s, got %r' % (', '.join(DRILL_STATUSES), status))
        query = select(Drill)
        if host is not None:
            query = query.where(Drill.host == host)
        if status is not None:
            query = query.where(Drill.status == status)
        query = query.order_by(Drill.started_at.desc(), Drill.id.desc()).limit(limit)
        return self._transactions.run(lambda session: [drill_dict(row) for row in session.scalars(query)])

    def state(self, host: str) -> dict | None:
        """The drill state of one host (see `states`), None when it has no successful backup."""
        return self.states([host]).get(host)

    def states(self, hosts: Iterable[str] | None = None) -> dict[str, dict]:
        """{host: {last (its newest drill, or None), last_ok, last_ok_at, first_backup_at, untested_since}} for the
        hosts with a successful backup (all of them, or those of `hosts`). untested_since: the end of
        its newest successful drill, or its first successful backup's start when never drilled - what
        "not restore-tested for N days" counts from."""
        wanted = None if hosts is None else sorted(set(hosts))
        return self._transactions.run(lambda session: drill_states(session, wanted))


def drill_states(session: Session, hosts: list[str] | None = None) -> dict[str, dict]:
    """Store.drills.states in an open session (store.metrics reads it in its own): {host: {last, last_ok
    (its newest drill, its newest successful one, or None), last_ok_at, first_backup_at, untested_since}} of
    the hosts with a successful backup, all or those of `hosts`."""
    found: dict[str, dict] = {}
    chunks = [None] if hosts is None else [hosts[start:start + _CHUNK] for start in range(0, len(hosts), _CHUNK)]
    for chunk in chunks:
        first = select(Backup.host, func.min(Backup.started_at)).where(Backup.status == 'ok')
        newest_ok = select(Drill.host, func.max(Drill.id)).where(Drill.status == 'ok')
        newest = select(Drill.host, func.max(Drill.id))
        if chunk is not None:
            first = first.where(Backup.host.in_(chunk))
            newest_ok = newest_ok.where(Drill.host.in_(chunk))
            newest = newest.where(Drill.host.in_(chunk))
        firsts = dict(session.execute(first.group_by(Backup.host)).all())
        ok_ids = dict(session.execute(newest_ok.group_by(Drill.host)).all())
        last_ids = dict(session.execute(newest.group_by(Drill.host)).all())
        ids = set(ok_ids.values()) | set(last_ids.values())
        rows = {row.id: drill_dict(row) for row in session.scalars(select(Drill).where(Drill.id.in_(ids)))} \
            if ids else {}
        for host, first_at in firsts.items():
            last_ok = rows.get(ok_ids.get(host))
            ok_at = last_ok['finished_at'] if last_ok else None
            found[host] = dict(last=rows.get(last_ids.get(host)), last_ok=last_ok, last_ok_at=ok_at,
                               first_backup_at=utc(first_at), untested_since=ok_at or utc(first_at))
    return found


def drill_fact(state: dict | None) -> dict | None:
    """What the tag rules see of a host's drills as facts.restore_drill ({untested_since, last_ok_at,
    first_backup_at: epoch seconds or None; last_status: 'ok' | 'failed' | None}), None without a
    successful backup (nothing to drill)."""
    if state is None:
        return None

    def epoch(value):
        return value.timestamp() if value is not None else None

    return dict(untested_since=epoch(state['untested_since']), last_ok_at=epoch(state['last_ok_at']),
                first_backup_at=epoch(state['first_backup_at']),
                last_status=state['last']['status'] if state['last'] else None)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def drill_dict(row: Drill) -> dict[str, Any]:
    return dict(id=row.id, host=row.host, backup_id=row.backup_id, job_id=row.job_id, status=row.status,
                started_at=utc(row.started_at), finished_at=utc(row.finished_at), rto_seconds=row.rto_seconds,
                restored_to=utc(row.restored_to), restored_gtid=row.restored_gtid, rpo_seconds=row.rpo_seconds,
                bytes=row.bytes, detail=row.detail, error=row.error)
