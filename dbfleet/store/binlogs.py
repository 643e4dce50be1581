"""The binary log archive of each host, as the dbfleet.mysql.binlog_archive action plugin and `dbfleet
archive run` report it.

`store.binlogs` (Binlogs) has the Store's habits: every public method is one short transaction,
returns plain dicts, datetimes are aware UTC (naive ones are taken as UTC), bad input is a ValueError.

A file is {id, host, file, server_id, first_gtid, last_gtid, first_event_at, last_event_at, bytes,
sha256, path, gap, archived_at}; `gap` is the break in the chain just before the file, or None. The
state of a host's archive ({host, lag_seconds, current_file, gaps, checked_at}) is what its last pass
saw: the lag is the fact the tag rules read as facts.binlog_archive and /metrics exposes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dbfleet.clock import utc
from dbfleet.store.models import BINLOG_GAP_KINDS, NAME_LENGTH, Binlog, BinlogArchiveState
from dbfleet.store.transactions import Transactions

BINLOG_FIELDS = ('server_id', 'first_gtid', 'last_gtid', 'first_event_at', 'last_event_at', 'bytes', 'sha256', 'path',
                 'gap', 'archived_at')
MAX_LIST = 100000
MAX_GAPS = 100
_SHA256 = re.compile(r'[0-9a-f]{64}')
_BINLOG_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}\.\d{6,10}')


class Binlogs:
    """store.binlogs: record archived binary logs, list them per host, the newest per host, the lag."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def record(self, host: str, file: str, **fields: Any) -> dict:
        """Record one complete archived file of `host` (again: the same host and file replace the row, as
        a re-archived file after a server reset does). Required: first_event_at, last_event_at, bytes,
        sha256, archived_at; optional server_id, first_gtid, last_gtid, path, gap."""
        values = _check_binlog(host, file, fields)

        def work(session: Session) -> dict:
            row = session.scalar(select(Binlog).where(Binlog.host == host, Binlog.file == file))
            if row is None:
                row = Binlog(host=host, file=file, **values)
                session.add(row)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
            session.flush()
            return _binlog_dict(row)

        return self._transactions.run(work, write=True)

    def list(self, host: str, limit: int = 1000) -> list[dict]:
        """The archived files of `host`, oldest first (by last event, then file name)."""
        _check_host(host)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise ValueError('limit must be an integer from 1 to %d, got %r' % (MAX_LIST, limit))
        query = (select(Binlog).where(Binlog.host == host)
                 .order_by(Binlog.last_event_at.desc(), Binlog.file.desc()).limit(limit))
        return self._transactions.run(lambda session: [_binlog_dict(row) for row in session.scalars(query)][::-1])

    def forget(self, host: str, files: list[str]) -> int:
        """Take out of the catalog the archived files of `host` that retention removed from the disk (they
        can no longer be replayed); how many rows went."""
        _check_host(host)
        names = sorted({str(name) for name in files})
        if not names:
            return 0

        def work(session: Session) -> int:
            removed = 0
            for start in range(0, len(names), 500):
                removed += session.execute(delete(Binlog).where(Binlog.host == host, Binlog.file.in_(
                    names[start:start + 500]))).rowcount
            return removed

        return self._transactions.run(work, write=True)

    def newest_by_host(self) -> dict[str, dict]:
        """{host: its newest archived file}, for every host with an archive."""
        rank = func.row_number().over(partition_by=Binlog.host,
                                      order_by=(Binlog.last_event_at.desc(), Binlog.file.desc())).label('rank')
        ranked = select(Binlog.id, rank).subquery()
        query = select(Binlog).join(ranked, ranked.c.id == Binlog.id).where(ranked.c.rank == 1)
        return self._transactions.run(lambda session: {row.host: _binlog_dict(row) for row in session.scalars(query)})

    def record_pass(self, host: str, result: dict, checked_at: dt.datetime) -> list[dict]:
        """Record what one pass over `host`'s archive did and saw, given as the binlog_archive module
        returns it ({archived: [manifest...], gaps, lag_seconds, current_file, path}): every archived file
        with the gap just before it (several gaps before one file are told as one), then the state."""
        gaps = result.get('gaps') or []
        before: dict[str, dict] = {}
        for gap in gaps:
            if gap.get('file') in before:
                first = before[gap['file']]
                before[gap['file']] = dict(first, detail='%s; %s' % (first['detail'], gap['detail']))
            else:
                before[gap.get('file')] = gap
        recorded = []
        for manifest in result.get('archived') or []:
            recorded.append(self.record(host, manifest.get('file'), **manifest_fields(
                manifest, result.get('path'), before.get(manifest.get('file')))))
        self.set_state(host, result.get('lag_seconds'), result.get('current_file'), gaps, checked_at)
        return recorded

    def set_state(self, host: str, lag_seconds: float | None, current_file: str | None, gaps: list,
                  checked_at: dt.datetime) -> dict:
        """What the last pass over `host`'s archive saw."""
        _check_host(host)
        if lag_seconds is not None and (isinstance(lag_seconds, bool) or not isinstance(lag_seconds, (int, float))
                                        or lag_seconds < 0):
            raise ValueError('lag_seconds must be a number of seconds, 0 or more, or None, got %r' % (lag_seconds,))
        if current_file is not None and not _BINLOG_NAME.fullmatch(str(current_file)):
            raise ValueError('current_file must be a binary log name, got %r' % (current_file,))
        if not isinstance(gaps, list) or len(gaps) > MAX_GAPS:
            raise ValueError('gaps must be a list of at most %d gaps' % MAX_GAPS)
        for gap in gaps:
            _check_gap(gap)
        if not isinstance(checked_at, dt.datetime):
            raise ValueError('checked_at must be a datetime, got %r' % (checked_at,))

        def work(session: Session) -> dict:
            row = session.get(BinlogArchiveState, host)
            if row is None:
                row = BinlogArchiveState(host=host)
                session.add(row)
            row.lag_seconds = None if lag_seconds is None else float(lag_seconds)
            row.current_file = current_file
            row.gaps = list(gaps)
            row.checked_at = utc(checked_at)
            session.flush()
            return _state_dict(row)

        return self._transactions.run(work, write=True)

    def states(self) -> dict[str, dict]:
        """{host: the state of its archive}, for every host with one."""
        return self._transactions.run(
            lambda session: {row.host: _state_dict(row) for row in session.scalars(select(BinlogArchiveState))})

    def state(self, host: str) -> dict | None:
        _check_host(host)
        return self._transactions.run(lambda session: _state_dict(session.get(BinlogArchiveState, host)))


def _manifest_time(manifest: dict, name: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(manifest[name], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=dt.timezone.utc)
    except (KeyError, TypeError, ValueError):
        raise ValueError('binlog manifest of %r: %s must be a time YYYY-MM-DDTHH:MM:SSZ, got %r'
                         % (manifest.get('file'), name, manifest.get(name))) from None


def manifest_fields(manifest: dict, directory: str | None, gap: dict | None) -> dict:
    """record()'s fields for a file's manifest (<file>.json in the archive)."""
    return dict(server_id=manifest.get('server_id'), first_gtid=manifest.get('first_gtid'),
                last_gtid=manifest.get('last_gtid'), first_event_at=_manifest_time(manifest, 'first_event_at'),
                last_event_at=_manifest_time(manifest, 'last_event_at'), bytes=manifest.get('bytes'),
                sha256=manifest.get('sha256'), path='%s/%s' % (directory, manifest.get('file')) if directory else None,
                gap=gap, archived_at=_manifest_time(manifest, 'archived_at'))


def archive_fact(state: dict | None) -> dict | None:
    """What the tag rules see of a host's archive as facts.binlog_archive ({lag_seconds, current_file,
    gaps: their number, checked_at: epoch seconds}), None without one."""
    if state is None:
        return None
    return dict(lag_seconds=state['lag_seconds'], current_file=state['current_file'], gaps=len(state['gaps'] or []),
                checked_at=state['checked_at'].timestamp())


def _check_host(host: Any) -> str:
    if not isinstance(host, str) or not host or len(host) > NAME_LENGTH:
        raise ValueError('host must be a non-empty string of at most %d characters, got %r' % (NAME_LENGTH, host))
    return host


def _check_gap(gap: Any) -> None:
    if not isinstance(gap, dict) or gap.get('kind') not in BINLOG_GAP_KINDS or not isinstance(gap.get('detail'), str):
        raise ValueError('a gap is {kind: one of %s, detail: text, ...}, got %r' % (', '.join(BINLOG_GAP_KINDS),
                                                                                   str(gap)[:200]))


def _check_binlog(host: Any, file: Any, fields: dict) -> dict:
    _check_host(host)
    if not isinstance(file, str) or not _BINLOG_NAME.fullmatch(file):
        raise ValueError('binlog of %s: file must be a binary log name (base name, a dot, a number), got %r'
                         % (host, file))
    unknown = sorted(set(fields) - set(BINLOG_FIELDS))
    if unknown:
        raise ValueError('binlog %s of %s: unknown field(s) %s' % (file, host, ', '.join(unknown)))
    values = dict((name, fields.get(name)) for name in BINLOG_FIELDS)
    for name in ('first_event_at', 'last_event_at', 'archived_at'):
        if not isinstance(values[name], dt.datetime):
            raise ValueError('binlog %s of %s: %s must be a datetime, got %r' % (file, host, name, values[name]))
        values[name] = utc(values[name])
    if values['last_event_at'] < values['first_event_at']:
        raise ValueError('binlog %s of %s: last_event_at is before first_event_at' % (file, host))
    for name in ('bytes', 'server_id'):
        value = values[name]
        if (value is None and name == 'bytes') or (value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0)):
            raise ValueError('binlog %s of %s: %s must be an integer, 0 or more, got %r' % (file, host, name, value))
    if not isinstance(values['sha256'], str) or not _SHA256.fullmatch(values['sha256']):
        raise ValueError('binlog %s of %s: sha256 must be 64 lowercase hex characters' % (file, host))
    for name in ('first_gtid', 'last_gtid'):
        value = values[name]
        if value is not None and (not isinstance(value, str) or len(value) > NAME_LENGTH):
            raise ValueError('binlog %s of %s: %s must be a GTID text, got %r' % (file, host, name, value))
    if values['path'] is not None and not isinstance(values['path'], str):
        raise ValueError('binlog %s of %s: path must be a string' % (file, host))
    if values['gap'] is not None:
        _check_gap(values['gap'])
    return values


def _binlog_dict(row: Binlog) -> dict:
    return dict(id=row.id, host=row.host, file=row.file, server_id=row.server_id, first_gtid=row.first_gtid,
                last_gtid=row.last_gtid, first_event_at=utc(row.first_event_at), last_event_at=utc(row.last_event_at),
                bytes=row.bytes, sha256=row.sha256, path=row.path, gap=row.gap, archived_at=utc(row.archived_at))


def _state_dict(row: BinlogArchiveState | None) -> dict | None:
    if row is None:
        return None
    return dict(host=row.host, lag_seconds=row.lag_seconds, current_file=row.current_file, gaps=row.gaps or [],
                checked_at=utc(row.checked_at))
