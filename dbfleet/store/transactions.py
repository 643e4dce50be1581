"""How every part of the Store talks to the database: one short transaction per call.

Writers may run in many processes at once (forked Ansible workers). Each write locks the
rows it changes first (SELECT ... FOR UPDATE; SQLite's BEGIN IMMEDIATE serialises writers
anyway), and a transaction that loses a race on MySQL/MariaDB (deadlock, lock wait
timeout, two processes creating the same row) is run again from the start, so the work
passed in must be safe to repeat: it reads what it needs inside the transaction.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, Sequence, TypeVar

from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from dbfleet.store.engine import write_engine
from dbfleet.store.errors import driver_reason, is_unreachable, unavailable

T = TypeVar('T')
log = logging.getLogger(__name__)

# MySQL/MariaDB errors that mean "this transaction lost a race, run it again": deadlock,
# lock wait timeout, duplicate key (another process created the same host or tag first).
_RETRY_MYSQL_CODES = {1213, 1205, 1062}
_RETRY_ATTEMPTS = 12
# Rows per IN (...) list: far below SQLite's 32,766 parameters and MySQL's packet size.
_CHUNK = 500


class Transactions:
    """The sessions of one engine, shared by every part of a Store."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.reader = sessionmaker(engine, expire_on_commit=False)
        self.writer = sessionmaker(write_engine(engine), expire_on_commit=False)

    def run(self, work: Callable[[Session], T], write: bool = False) -> T:
        """Run `work` in one transaction (a write one if `write`), again from the start when it
        lost a race; a store that cannot be reached raises StoreUnavailable."""
        sessions = self.writer if write else self.reader
        attempt = 0
        while True:
            attempt += 1
            try:
                with sessions.begin() as session:
                    return work(session)
            except DBAPIError as error:
                if is_unreachable(error):
                    raise unavailable(self.engine.url, error) from None
                if attempt >= _RETRY_ATTEMPTS or not _lost_a_race(error):
                    raise
                log.debug('store transaction lost a race (%s); running it again (attempt %d)',
                          driver_reason(error), attempt + 1)
                time.sleep(random.uniform(0, 0.02 * attempt))


def _lost_a_race(error: DBAPIError) -> bool:
    # SQLite never gets here: BEGIN IMMEDIATE queues its writers on the busy timeout.
    args = getattr(error.orig, 'args', ())
    return bool(args) and args[0] in _RETRY_MYSQL_CODES


def chunked(values: list, query: Callable[[list], Any], session: Session, rows: bool = False) -> list:
    """The results of `query(chunk)` over `values` in IN-list-sized chunks (scalars, or rows)."""
    result = []
    for start in range(0, len(values), _CHUNK):
        statement = query(values[start:start + _CHUNK])
        result.extend(session.execute(statement).all() if rows else session.scalars(statement).all())
    return result


def upsert(session: Session, table, rows: list[dict], update: Sequence[str]) -> None:
    """Insert rows, replacing the `update` columns of those whose primary key exists: the
    one statement differs by dialect, and this is the only place that knows it."""
    connection = session.connection()
    if connection.dialect.name == 'sqlite':
        statement = sqlite.insert(table)
        statement = statement.on_conflict_do_update(index_elements=[column.name for column in table.primary_key],
                                                    set_={name: statement.excluded[name] for name in update})
    else:
        statement = mysql.insert(table)
        statement = statement.on_duplicate_key_update({name: statement.inserted[name] for name in update})
    connection.execute(statement, rows)
