"""Backup attempts, as the dbfleet.mysql.mysql_backup action plugin reports them.

`store.backups` (Backups) has the Store's habits: every public method is one short
transaction, returns plain dicts {id, host, method, status, started_at, finished_at,
duration_seconds, bytes, path, checksum, binlog_file, binlog_position, gtid, error, created_at,
pinned, removed_at, partial_path, kept_partial, restore_tested_at, restore_test_status, source_replica,
source_gtid, copies (its off-host copies, dbfleet.store.copies)},
datetimes are aware UTC (naive ones are taken as UTC), and bad input is a ValueError.

Failed attempts are kept too (status 'failed' with the error, and the partial directory it left),
so a host's history shows them; only successful ones count in `durations`, which the planner uses
to estimate how long a host's next backup will take. A backup that retention removed keeps its
row (removed_at); a pinned one is handed to the module as one it must never remove.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import Any, Iterable

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.checks import check_datetime, check_limit
from dbfleet.store.copies import copies_of
from dbfleet.store.cursors import page_cursor, parse_page_cursor
from dbfleet.store.models import (BACKUP_METHODS, BACKUP_STATUSES, NAME_LENGTH, RESTORE_TEST_STATUSES, Backup,
                                  JobHostRun)
from dbfleet.store.transactions import Transactions

BACKUP_FIELDS = ('method', 'status', 'started_at', 'finished_at', 'duration_seconds', 'bytes', 'path', 'checksum',
                 'binlog_file', 'binlog_position', 'gtid', 'error', 'partial_path', 'kept_partial', 'source_replica',
                 'source_gtid')
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
            return dict(_backup_dict(row), copies=[])  # as list() and catalog() give it: none yet

        return self._transactions.run(work, write=True)

    def list(self, host: str | None = None, limit: int = 50) -> list[dict]:
        """Backup attempts, newest first (by start), of one host or of every host."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise ValueError('limit must be an integer from 1 to %d, got %r' % (MAX_LIST, limit))
        query = select(Backup).order_by(Backup.started_at.desc(), Backup.id.desc()).limit(limit)
        if host is not None:
            query = query.where(Backup.host == host)
        return self._transactions.run(lambda session: _with_copies(session, list(session.scalars(query))))

    def get(self, backup_id: int) -> dict | None:
        """One attempt by id, or None."""
        backup_id = _check_id(backup_id)
        return self._transactions.run(lambda session: _maybe_dict(session, session.get(Backup, backup_id)))

    def set_pinned(self, backup_id: int, pinned: bool) -> dict | None:
        """Pin (retention never removes it) or unpin a backup; the row after, or None when there is
        no such attempt. ValueError for a failed attempt or a backup retention already removed."""
        backup_id = _check_id(backup_id)
        if not isinstance(pinned, bool):
            raise ValueError('pinned must be true or false, got %r' % (pinned,))

        def work(session: Session) -> dict | None:
            row = session.get(Backup, backup_id, with_for_update=True)
            if row is None:
                return None
            if pinned and row.status != 'ok':
                raise ValueError('backup %d is a failed attempt: there is nothing to keep' % backup_id)
            if pinned and row.removed_at is not None:
                raise ValueError('backup %d was removed by retention at %s: there is nothing left to keep'
                                 % (backup_id, utc(row.removed_at).isoformat()))
            row.pinned = pinned
            session.flush()
            return _with_copies(session, [row])[0]

        return self._transactions.run(work, write=True)

    def pinned_paths(self, host: str) -> list[str]:
        """The directories of `host`'s pinned backups that still exist, for the module's keep_paths."""
        query = select(Backup.path).where(Backup.host == _check_host(host), Backup.pinned.is_(True),
                                          Backup.removed_at.is_(None), Backup.path.is_not(None)).order_by(Backup.id)
        return self._transactions.run(lambda session: list(session.scalars(query)))

    def mark_removed(self, host: str, paths: Iterable[str], at: dt.datetime | None = None) -> int:
        """Mark the successful backups of `host` at these directories removed (by retention) at `at`
        (default now); rows stay. Returns how many were marked."""
        _check_host(host)
        paths = sorted({path for path in paths if isinstance(path, str) and path})
        at = check_datetime(at, 'at') if at is not None else utcnow()

        def work(session: Session) -> int:
            marked = 0
            for start in range(0, len(paths), _CHUNK):
                marked += session.execute(
                    update(Backup).where(Backup.host == host, Backup.status == 'ok', Backup.removed_at.is_(None),
                                         Backup.path.in_(paths[start:start + _CHUNK]))
                    .values(removed_at=at).execution_options(synchronize_session=False)).rowcount
            return marked

        return self._transactions.run(work, write=True)

    def set_restore_test(self, backup_id: int, status: str, at: dt.datetime | None = None) -> dict | None:
        """Record a restore test of a backup ('ok' | 'failed', at `at`, default now); the row after or None."""
        backup_id = _check_id(backup_id)
        if status not in RESTORE_TEST_STATUSES:
            raise ValueError('restore test status must be one of %s, got %r' % (', '.join(RESTORE_TEST_STATUSES),
                                                                                status))
        at = check_datetime(at, 'at') if at is not None else utcnow()

        def work(session: Session) -> dict | None:
            row = session.get(Backup, backup_id, with_for_update=True)
            if row is None:
                return None
            row.restore_tested_at, row.restore_test_status = at, status
            session.flush()
            return _with_copies(session, [row])[0]

        return self._transactions.run(work, write=True)

    def catalog(self, host: str | None = None, method: str | None = None, status: str | None = None,
                since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 50,
                cursor: str | None = None, pinned: bool | None = None, include_removed: bool = False) -> dict:
        """{'backups': [...], 'next_cursor': str | None}: attempts newest first (by start), filtered by
        host, method, status, started at or after `since` and before `until`, pinned or not; backups
        retention removed only with `include_removed`. The cursor marks the last attempt of a page
        by (started_at, id), so later pages neither repeat nor skip any."""
        check_limit(limit)
        query = select(Backup).order_by(Backup.started_at.desc(), Backup.id.desc()).limit(limit + 1)
        if pinned is not None:
            if not isinstance(pinned, bool):
                raise ValueError('pinned must be true or false, got %r' % (pinned,))
            query = query.where(Backup.pinned.is_(pinned))
        if not include_removed:
            query = query.where(Backup.removed_at.is_(None))
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
            return {'backups': _with_copies(session, rows),
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


def _check_id(backup_id: Any) -> int:
    if isinstance(backup_id, bool) or not isinstance(backup_id, int) or not 1 <= backup_id < 2 ** 63:
        raise ValueError('a backup id is a positive integer up to %d, got %r' % (2 ** 63 - 1, backup_id))
    return backup_id


def _maybe_dict(session: Session, row: Backup | None) -> dict | None:
    return None if row is None else _with_copies(session, [row])[0]


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
    for name, length in (('path', None), ('binlog_file', NAME_LENGTH), ('gtid', None), ('error', None),
                         ('source_replica', NAME_LENGTH), ('source_gtid', None)):
        value = values[name]
        if value is not None and not isinstance(value, str):
            raise ValueError('backup of %s: %s must be a string, got %r' % (host, name, value))
        if value is not None and length is not None and len(value) > length:
            raise ValueError('backup of %s: %s is longer than %d characters' % (host, name, length))
    if values['error'] is not None and len(values['error']) > MAX_ERROR_LENGTH:
        values['error'] = values['error'][-MAX_ERROR_LENGTH:]
    if values['partial_path'] is not None and not isinstance(values['partial_path'], str):
        raise ValueError('backup of %s: partial_path must be a string, got %r' % (host, values['partial_path']))
    if values['kept_partial'] is None:
        values['kept_partial'] = False
    if not isinstance(values['kept_partial'], bool):
        raise ValueError('backup of %s: kept_partial must be true or false, got %r' % (host, values['kept_partial']))
    if values['kept_partial'] and values['partial_path'] is None:
        raise ValueError('backup of %s: kept_partial needs the partial_path it was kept at' % host)
    if values['status'] == 'ok' and values['partial_path'] is not None:
        raise ValueError('backup of %s: a successful backup has no partial directory' % host)
    return values


def _backup_dict(row: Backup) -> dict:
    return dict(id=row.id, host=row.host, method=row.method, status=row.status, started_at=row.started_at,
                finished_at=row.finished_at, duration_seconds=row.duration_seconds, bytes=row.bytes, path=row.path,
                checksum=row.checksum, binlog_file=row.binlog_file, binlog_position=row.binlog_position, gtid=row.gtid,
                error=row.error, created_at=row.created_at, pinned=bool(row.pinned), removed_at=row.removed_at,
                partial_path=row.partial_path, kept_partial=bool(row.kept_partial),
                restore_tested_at=row.restore_tested_at, restore_test_status=row.restore_test_status,
                source_replica=row.source_replica, source_gtid=row.source_gtid)


def _with_copies(session: Session, rows: list[Backup]) -> list[dict]:
    """The backups' dicts, each with `copies` (its off-host copies, dbfleet.store.copies)."""
    copies = copies_of(session, [row.id for row in rows])
    return [dict(_backup_dict(row), copies=copies[row.id]) for row in rows]
