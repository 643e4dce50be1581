"""Backup attempts, as the dbfleet.mysql.mysql_backup action plugin reports them.

`store.backups` (Backups) has the Store's habits: every public method is one short
transaction, returns plain dicts {id, host, method, status, started_at, finished_at,
duration_seconds, bytes, path, checksum, binlog_file, binlog_position, gtid, error, created_at},
datetimes are aware UTC (naive ones are taken as UTC), and bad input is a ValueError.

Failed attempts are kept too (status 'failed' with the error), so a host's history shows them;
only successful ones count in `durations`, which the planner uses to estimate how long
a host's next backup will take.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import Any, Iterable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.checks import check_datetime, check_limit
from dbfleet.store.cursors import page_cursor, parse_page_cursor
from dbfleet.store.models import BACKUP_METHODS, BACKUP_STATUSES, NAME_LENGTH, Backup, JobHostRun
from dbfleet.store.transactions import Transactions

BACKUP_FIELDS = ('method', 'status', 'started_at', 'finished_at', 'duration_seconds', 'bytes', 'path', 'checksum',
                 'binlog_file', 'binlog_position', 'gtid', 'error')
MAX_ERROR_LENGTH = 8000   # the tail of a tool's stderr is what matters; MySQL's TEXT stops at 64 KB anyway
MAX_LIST = 1000
_SHA256 = re.compile(r'[0-9a-f]{64}')
# Hosts per IN (...) list: far below SQLite's parameter limit and MySQL's packet size.
_CHUNK = 500


class Backups:
    """store.backups: record backup attempts, list them, read past durations."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def record(self, host: str, **fields: Any) -> dict:
        """Record one backup attempt of `host`. Fields: method ('logical' | 'physical') and
        started_at are required; status 'ok' (default) or 'failed'; finished_at, duration_seconds
        (computed from the times when left out), bytes, path, checksum (SHA-256 hex), binlog_file,
        binlog_position, gtid, error (kept to its last MAX_ERROR_LENGTH characters)."""
        values = _check_backup(host, fields)

        def work(session: Session) -> dict:
            row = Backup(host=host, created_at=utcnow(), **values)
            session.add(row)
            session.flush()
            return _backup_dict(row)

        return self._transactions.run(work, write=True)

    def list(self, host: str | None = None, limit: int = 50) -> list[dict]:
        """Backup attempts, newest first (by start), of one host or of every host."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise ValueError('limit must be an integer from 1 to %d, got %r' % (MAX_LIST, limit))
        query = select(Backup).order_by(Backup.started_at.desc(), Backup.id.desc()).limit(limit)
        if host is not None:
            query = query.where(Backup.host == host)
        return self._transactions.run(lambda session: [_backup_dict(row) for row in session.scalars(query)])

    def catalog(self, host: str | None = None, method: str | None = None, status: str | None = None,
                since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 50,
                cursor: str | None = None) -> dict:
        """{'backups': [...], 'next_cursor': str | None}: attempts newest first (by start), filtered by
        host, method, status, started at or after `since` and before `until`. The cursor marks the
        last attempt of a page by (started_at, id), so later pages neither repeat nor skip any."""
        check_limit(limit)
        query = select(Backup).order_by(Backup.started_at.desc(), Backup.id.desc()).limit(limit + 1)
        if host is not None:
            query = query.where(Backup.host == _check_host(host))
        for column, value, known in ((Backup.method, method, BACKUP_METHODS), (Backup.status, status, BACKUP_STATUSES)):
            if value is not None:
                if value not in known:
                    raise ValueError('%s must be one of %s, got %r' % (column.key, ', '.join(known), value))
                query = query.where(column == value)
        if since is not None:
            query = query.where(Backup.started_at >= check_datetime(since, 'since'))
        if until is not None:
            query = query.where(Backup.started_at < check_datetime(until, 'until'))
        if cursor is not None:
            at, last_id = parse_page_cursor(cursor, 'the backup catalog', numeric_id=True)
            query = query.where(or_(Backup.started_at < at, and_(Backup.started_at == at, Backup.id < int(last_id))))

        def work(session: Session) -> dict:
            rows = list(session.scalars(query))
            more = len(rows) > limit
            rows = rows[:limit]
            return {'backups': [_backup_dict(row) for row in rows],
                    'next_cursor': page_cursor(rows[-1].started_at, rows[-1].id) if more else None}

        return self._transactions.run(work)

    def durations(self, hosts: Iterable[str] | None = None, last: int = 5) -> dict[str, list[float]]:
        """{host: durations in seconds of its `last` most recent successful backups, newest first}.
        With `hosts`, every one of them is a key (an empty list when it has none); without, every
        host that has one."""
        if isinstance(last, bool) or not isinstance(last, int) or last < 1:
            raise ValueError('last must be a positive integer, got %r' % (last,))
        names = None if hosts is None else sorted({_check_host(host) for host in hosts})

        def durations(session: Session, chunk: list[str] | None) -> list[tuple[str, float]]:
            rank = func.row_number().over(partition_by=Backup.host,
                                          order_by=(Backup.started_at.desc(), Backup.id.desc())).label('rank')
            ranked = select(Backup.host, Backup.duration_seconds, rank).where(
                Backup.status == 'ok', Backup.duration_seconds.is_not(None))
            if chunk is not None:
                ranked = ranked.where(Backup.host.in_(chunk))
            ranked = ranked.subquery()
            return session.execute(select(ranked.c.host, ranked.c.duration_seconds)
                                   .where(ranked.c.rank <= last).order_by(ranked.c.host, ranked.c.rank)).all()

        def work(session: Session) -> dict[str, list[float]]:
            found: dict[str, list[float]] = defaultdict(list)
            chunks = [None] if names is None else [names[start:start + _CHUNK] for start in range(0, len(names), _CHUNK)]
            for chunk in chunks:
                for host, seconds in durations(session, chunk):
                    found[host].append(float(seconds))
            if names is not None:
                return dict((name, found.get(name, [])) for name in names)
            return dict(found)

        return self._transactions.run(work)

    def overheads(self, hosts: Iterable[str] | None = None, last: int = 5) -> dict[str, list[float]]:
        """{host: start-up seconds of its `last` most recent runs in planned jobs that took a
        backup, newest first}: each run's wall time (job_host_runs started_at to finished_at) minus
        the duration of the successful backup of that host that started within it. With `hosts`,
        every one of them is a key; without, the fleet's `last` most recent runs under the key ''."""
        if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= MAX_LIST:
            raise ValueError('last must be an integer from 1 to %d, got %r' % (MAX_LIST, last))
        names = None if hosts is None else sorted({_check_host(host) for host in hosts})

        def rows(session: Session, chunk: list[str] | None) -> list:
            partition = JobHostRun.host if chunk is not None else None
            rank = func.row_number().over(partition_by=partition,
                                          order_by=(JobHostRun.started_at.desc(), Backup.id.desc())).label('rank')
            ranked = (select(JobHostRun.host, JobHostRun.started_at, JobHostRun.finished_at,
                             Backup.duration_seconds, rank)
                      .join(Backup, and_(Backup.host == JobHostRun.host, Backup.status == 'ok',
                                         Backup.duration_seconds.is_not(None),
                                         Backup.started_at >= JobHostRun.started_at,
                                         Backup.started_at <= JobHostRun.finished_at))
                      .where(JobHostRun.status == 'ok', JobHostRun.started_at.is_not(None),
                             JobHostRun.finished_at.is_not(None)))
            if chunk is not None:
                ranked = ranked.where(JobHostRun.host.in_(chunk))
            ranked = ranked.subquery()
            return session.execute(select(ranked.c.host, ranked.c.started_at, ranked.c.finished_at,
                                          ranked.c.duration_seconds).where(ranked.c.rank <= last)
                                   .order_by(ranked.c.host, ranked.c.rank)).all()

        def work(session: Session) -> dict[str, list[float]]:
            found: dict[str, list[float]] = defaultdict(list)
            chunks = [None] if names is None else [names[start:start + _CHUNK] for start in range(0, len(names), _CHUNK)]
            for chunk in chunks:
                for host, started, finished, seconds in rows(session, chunk):
                    wall = (utc(finished) - utc(started)).total_seconds()
                    found[host if chunk is not None else ''].append(max(0.0, wall - float(seconds)))
            if names is not None:
                return dict((name, found.get(name, [])) for name in names)
            return {'': found.get('', [])}

        return self._transactions.run(work)

    def recent_by_host(self, last: int = 14) -> dict[str, list[dict]]:
        """{host: its `last` most recent backup attempts, newest first}, for every host that has one."""
        if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= MAX_LIST:
            raise ValueError('last must be an integer from 1 to %d, got %r' % (MAX_LIST, last))
        rank = func.row_number().over(partition_by=Backup.host,
                                      order_by=(Backup.started_at.desc(), Backup.id.desc())).label('rank')
        ranked = select(Backup.id, rank).subquery()
        query = (select(Backup).join(ranked, ranked.c.id == Backup.id).where(ranked.c.rank <= last)
                 .order_by(Backup.host, ranked.c.rank))

        def work(session: Session) -> dict[str, list[dict]]:
            found: dict[str, list[dict]] = defaultdict(list)
            for row in session.scalars(query):
                found[row.host].append(_backup_dict(row))
            return dict(found)

        return self._transactions.run(work)


def _check_host(host: Any) -> str:
    if not isinstance(host, str) or not host or len(host) > NAME_LENGTH:
        raise ValueError('host must be a non-empty string of at most %d characters, got %r' % (NAME_LENGTH, host))
    return host


def _check_backup(host: Any, fields: dict) -> dict:
    _check_host(host)
    unknown = sorted(set(fields) - set(BACKUP_FIELDS))
    if unknown:
        raise ValueError('backup of %s: unknown field(s) %s (known: %s)' % (host, ', '.join(unknown),
                                                                           ', '.join(BACKUP_FIELDS)))
    values = dict((name, fields.get(name)) for name in BACKUP_FIELDS)
    values['status'] = values['status'] or 'ok'
    if values['method'] not in BACKUP_METHODS:
        raise ValueError('backup of %s: method must be one of %s, got %r' % (host, ', '.join(BACKUP_METHODS),
                                                                            values['method']))
    if values['status'] not in BACKUP_STATUSES:
        raise ValueError('backup of %s: status must be one of %s, got %r' % (host, ', '.join(BACKUP_STATUSES),
                                                                            values['status']))
    for name in ('started_at', 'finished_at'):
        if values[name] is not None and not isinstance(values[name], dt.datetime):
            raise ValueError('backup of %s: %s must be a datetime, got %r' % (host, name, values[name]))
        values[name] = utc(values[name])
    if values['started_at'] is None:
        raise ValueError('backup of %s: started_at is required' % host)
    if values['finished_at'] is not None and values['finished_at'] < values['started_at']:
        raise ValueError('backup of %s: finished_at %s is before started_at %s'
                         % (host, values['finished_at'].isoformat(), values['started_at'].isoformat()))
    duration = values['duration_seconds']
    if duration is None and values['finished_at'] is not None:
        duration = (values['finished_at'] - values['started_at']).total_seconds()
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0:
            raise ValueError('backup of %s: duration_seconds must be a number of seconds, 0 or more, got %r'
                             % (host, duration))
        duration = float(duration)
    values['duration_seconds'] = duration
    for name in ('bytes', 'binlog_position'):
        value = values[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError('backup of %s: %s must be an integer, 0 or more, got %r' % (host, name, value))
    checksum = values['checksum']
    if checksum is not None and (not isinstance(checksum, str) or not _SHA256.fullmatch(checksum)):
        raise ValueError('backup of %s: checksum must be a SHA-256 hex digest (64 lowercase hex characters), got %r'
                         % (host, checksum))
    for name, length in (('path', None), ('binlog_file', NAME_LENGTH), ('gtid', None), ('error', None)):
        value = values[name]
        if value is not None and not isinstance(value, str):
            raise ValueError('backup of %s: %s must be a string, got %r' % (host, name, value))
        if value is not None and length is not None and len(value) > length:
            raise ValueError('backup of %s: %s is longer than %d characters' % (host, name, length))
    if values['error'] is not None and len(values['error']) > MAX_ERROR_LENGTH:
        values['error'] = values['error'][-MAX_ERROR_LENGTH:]
    return values


def _backup_dict(row: Backup) -> dict:
    return dict(id=row.id, host=row.host, method=row.method, status=row.status, started_at=row.started_at,
                finished_at=row.finished_at, duration_seconds=row.duration_seconds, bytes=row.bytes, path=row.path,
                checksum=row.checksum, binlog_file=row.binlog_file, binlog_position=row.binlog_position, gtid=row.gtid,
                error=row.error, created_at=row.created_at)
