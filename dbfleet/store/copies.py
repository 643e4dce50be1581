"""Off-host copies of backups and archived binlog files, as dbfleet.mysql.backup_copy reports them.

`store.copies` (Copies): one row per file and repository and attempt - {id, backup_id, host,
binlog_file, repository, location, sha256, status ('ok' | 'failed'), verified_at, error,
created_at} - ok only once the remote file's SHA-256 was found equal to the manifest's. A
backup's copies are listed with it in the catalog (`copies_of`); a binlog file's by host and
file name (the binlog archive keeps its own table). What retention removed from a repository
leaves it (`forget`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import Any, Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.models import COPY_STATUSES, NAME_LENGTH, Backup, BackupCopy
from dbfleet.store.transactions import Transactions

MAX_ERROR_LENGTH = 4000
_SHA256 = re.compile(r'[0-9a-f]{64}')
_CHUNK = 500


class Copies:
    """store.copies: record a copy of a backup or of a binlog file, list them."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def record(self, host: str, repository: str, location: str, status: str, backup_id: int | None = None,
               binlog_file: str | None = None, sha256: str | None = None, verified_at: dt.datetime | None = None,
               error: str | None = None) -> dict:
        """Record one copy. Exactly one of backup_id (a backup of `host`) and binlog_file."""
        for name, value in (('host', host), ('repository', repository)):
            if not isinstance(value, str) or not value or len(value) > NAME_LENGTH:
                raise ValueError('copy: %s must be a non-empty string of at most %d characters' % (name, NAME_LENGTH))
        if not isinstance(location, str) or not location:
            raise ValueError('copy: location must be a non-empty string')
        if status not in COPY_STATUSES:
            raise ValueError('copy: status must be one of %s, got %r' % (', '.join(COPY_STATUSES), status))
        if (backup_id is None) == (binlog_file is None):
            raise ValueError('copy: give a backup_id or a binlog_file (one of them)')
        if backup_id is not None and (isinstance(backup_id, bool) or not isinstance(backup_id, int)):
            raise ValueError('copy: backup_id must be an integer, got %r' % (backup_id,))
        if binlog_file is not None and (not isinstance(binlog_file, str) or not binlog_file
                                        or len(binlog_file) > NAME_LENGTH):
            raise ValueError('copy: binlog_file must be a file name of at most %d characters' % NAME_LENGTH)
        if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.fullmatch(sha256)):
            raise ValueError('copy: sha256 must be 64 lowercase hex characters, got %r' % (sha256,))
        if verified_at is not None and not isinstance(verified_at, dt.datetime):
            raise ValueError('copy: verified_at must be a datetime')
        if error is not None and not isinstance(error, str):
            raise ValueError('copy: error must be a string')

        def work(session: Session) -> dict:
            if backup_id is not None:
                backup = session.get(Backup, backup_id)
                if backup is None or backup.host != host:
                    raise ValueError('copy: no backup %d of host %s' % (backup_id, host))
            row = BackupCopy(host=host, backup_id=backup_id, binlog_file=binlog_file, repository=repository,
                             location=location, sha256=sha256, status=status, verified_at=utc(verified_at),
                             error=error[-MAX_ERROR_LENGTH:] if error else None, created_at=utcnow())
            session.add(row)
            session.flush()
            return copy_dict(row)

        return self._transactions.run(work, write=True)

    def forget(self, host: str, repositories: Iterable[str], backup_paths: Iterable[str] = (),
               binlog_files: Iterable[str] = ()) -> int:
        """Drop the rows of the copies retention removed from `repositories`: those of the host's backups
        at `backup_paths` and of its `binlog_files`. Returns how many rows went."""
        repositories, paths, files = sorted(set(repositories)), sorted(set(backup_paths)), sorted(set(binlog_files))
        if not repositories or not (paths or files):
            return 0

        def work(session: Session) -> int:
            gone = 0
            for start in range(0, len(paths), _CHUNK):
                ids = select(Backup.id).where(Backup.host == host, Backup.path.in_(paths[start:start + _CHUNK]))
                gone += session.execute(delete(BackupCopy).where(
                    BackupCopy.host == host, BackupCopy.repository.in_(repositories),
                    BackupCopy.backup_id.in_(ids)).execution_options(synchronize_session=False)).rowcount
            for start in range(0, len(files), _CHUNK):
                gone += session.execute(delete(BackupCopy).where(
                    BackupCopy.host == host, BackupCopy.repository.in_(repositories),
                    BackupCopy.binlog_file.in_(files[start:start + _CHUNK])).execution_options(
                        synchronize_session=False)).rowcount
            return gone

        return self._transactions.run(work, write=True)

    def of_binlogs(self, host: str) -> list[dict]:
        """The copies of a host's archived binlog files, newest first."""
        query = (select(BackupCopy).where(BackupCopy.host == host, BackupCopy.binlog_file.is_not(None))
                 .order_by(BackupCopy.created_at.desc(), BackupCopy.id.desc()))
        return self._transactions.run(lambda session: [copy_dict(row) for row in session.scalars(query)])


def copies_of(session: Session, backup_ids: Iterable[int]) -> dict[int, list[dict]]:
    """{backup id: its copies, oldest first} for the catalog (every id a key)."""
    ids = sorted(set(backup_ids))
    found: dict[int, list[dict]] = defaultdict(list)
    for start in range(0, len(ids), _CHUNK):
        query = (select(BackupCopy).where(BackupCopy.backup_id.in_(ids[start:start + _CHUNK]))
                 .order_by(BackupCopy.created_at, BackupCopy.id))
        for row in session.scalars(query):
            found[row.backup_id].append(copy_dict(row))
    return {backup_id: found.get(backup_id, []) for backup_id in ids}


def copy_dict(row: BackupCopy) -> dict[str, Any]:
    return dict(id=row.id, backup_id=row.backup_id, host=row.host, binlog_file=row.binlog_file,
                repository=row.repository, location=row.location, sha256=row.sha256, status=row.status,
                verified_at=row.verified_at, error=row.error, created_at=row.created_at)
