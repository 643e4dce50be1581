"""One place that turns a store URL into a SQLAlchemy engine fit for dbfleet's workload.

The workload: many forked Ansible worker processes write to the same store at once.
- SQLite: WAL (readers never block the writer), a 30 s busy timeout (writers queue instead
  of failing), foreign keys on, and write transactions opened with BEGIN IMMEDIATE so a
  transaction that read first cannot lose the race to upgrade its lock.
- MySQL/MariaDB: utf8mb4, READ COMMITTED, pre-ping (servers drop idle connections), a
  connect timeout.
- Both: a pooled connection is never reused across fork(); the child opens its own,
  because two processes talking over one socket or one SQLite handle corrupt each other.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from dbfleet.paths import private_directory
from dbfleet.store.errors import StoreError, StoreUnavailable, masked
from dbfleet.store.models import dump_json

SQLITE_BUSY_TIMEOUT_MS = 30_000
MYSQL_CONNECT_TIMEOUT_S = 10
# Execution option that marks a connection whose transaction will write.
WRITE_OPTION = 'dbfleet_write'


def parse_url(url: str | URL) -> URL:
    try:
        return make_url(url)
    except exc.ArgumentError:
        # Do not echo the text: it may hold a password.
        raise StoreError('the store URL is not a valid SQLAlchemy URL: use sqlite:///path/to/dbfleet.db '
                         'or mysql+pymysql://user:password@host:3306/database (DBFLEET_STORE_URL)') from None


def create_store_engine(url: str | URL) -> Engine:
    """An engine for `url` (sqlite or mysql/mariadb). Creates a SQLite file's directory.
    Does not connect: the caller finds out about reachability on first use."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend == 'sqlite':
        engine = _sqlite_engine(parsed)
    elif backend in ('mysql', 'mariadb'):
        engine = _mysql_engine(parsed)
    else:
        raise StoreError('store %s uses the %s backend; dbfleet supports sqlite:///path and mysql+pymysql://...'
                         % (masked(parsed), backend))
    _discard_connections_across_fork(engine)
    return engine


def write_engine(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions are opened for writing."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ''
    in_memory = database in ('', ':memory:') or url.query.get('mode') == 'memory'
    if not in_memory and not database.startswith('file:'):
        directory = Path(database).expanduser().parent
        try:
            private_directory(directory, tighten_existing=False)
        except OSError as error:
            raise StoreUnavailable('store %s is unavailable: cannot create directory %s: %s'
                                   % (masked(url), directory, error.strerror or error)) from None
        try:
            _create_private(Path(database).expanduser())
        except OSError:  # SQLite says why when it opens it (a directory, no permission...)
            pass
    options = dict(json_serializer=dump_json, connect_args={'timeout': SQLITE_BUSY_TIMEOUT_MS / 1000})
    if in_memory:
        # One connection, or every checkout would see a different empty database.
        options.update(poolclass=StaticPool, connect_args={'check_same_thread': False})
    engine = create_engine(url, **options)
    event.listen(engine, 'connect', _sqlite_on_connect)
    event.listen(engine, 'begin', _sqlite_on_begin)
    return engine


def _create_private(database: Path) -> None:
    """The SQLite file, created 0600 before SQLite would create it world-readable (its WAL and
    shared-memory files take the same mode)."""
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _sqlite_on_connect(dbapi_connection, connection_record):
    # Take BEGIN away from the sqlite3 module (it skips it before SELECT and DDL); see _sqlite_on_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute('PRAGMA busy_timeout = %d' % SQLITE_BUSY_TIMEOUT_MS)
        cursor.execute('PRAGMA journal_mode = WAL')
        cursor.execute('PRAGMA synchronous = NORMAL')  # durable enough with WAL, far fewer fsyncs
        cursor.execute('PRAGMA foreign_keys = ON')
    finally:
        cursor.close()


def _sqlite_on_begin(connection):
    # IMMEDIATE takes the write lock up front (waiting up to the busy timeout); a DEFERRED
    # transaction that reads and then writes fails at once if another process wrote meanwhile.
    mode = 'IMMEDIATE' if connection.get_execution_options().get(WRITE_OPTION) else 'DEFERRED'
    connection.exec_driver_sql('BEGIN %s' % mode)


def _mysql_engine(url: URL) -> Engine:
    # Defaults go in connect_args, not the URL, so messages show the URL as the user wrote it.
    defaults = {'charset': 'utf8mb4', 'connect_timeout': MYSQL_CONNECT_TIMEOUT_S}
    connect_args = {key: value for key, value in defaults.items() if key not in url.query}
    # READ COMMITTED: writers serialise on the host's row lock and then read the latest
    # committed data; REPEATABLE READ's gap locks made concurrent inserts of different
    # hosts deadlock one another.
    return create_engine(url, pool_pre_ping=True, pool_recycle=3600, json_serializer=dump_json,
                         connect_args=connect_args, isolation_level='READ COMMITTED')


def _discard_connections_across_fork(engine: Engine) -> None:
    """The recipe from SQLAlchemy's pooling docs: a connection checked out in another
    process than the one that opened it is dropped (not closed: that would close the
    parent's) and replaced by a fresh one."""

    @event.listens_for(engine, 'connect')
    def remember_pid(dbapi_connection, connection_record):
        connection_record.info['pid'] = os.getpid()

    @event.listens_for(engine, 'checkout')
    def check_pid(dbapi_connection, connection_record, connection_proxy):
        if connection_record.info.get('pid') != os.getpid():
            connection_record.dbapi_connection = connection_proxy.dbapi_connection = None
            raise exc.DisconnectionError('connection opened by process %s, now in process %s'
                                         % (connection_record.info.get('pid'), os.getpid()))
