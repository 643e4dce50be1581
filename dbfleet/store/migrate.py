"""Schema migrations: Alembic, configured in code (no alembic.ini), run on dbfleet's own engine.

`ensure_schema` is what `open_store` calls: a first use upgrades an empty or older store on
its own, and a store this dbfleet cannot serve is refused with the command that fixes it.
Concurrent first uses (forked Ansible workers) are serialised: SQLite by the write
transaction the upgrade runs in, MySQL/MariaDB by a named lock, since its DDL is not
transactional.
"""

from __future__ import annotations

import contextlib
import time
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError

from dbfleet.store.engine import create_store_engine, write_engine
from dbfleet.store.errors import StoreError, StoreNotMigrated, driver_reason, is_unreachable, masked, unavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / 'migrations'
MYSQL_LOCK_NAME = 'dbfleet_store_migrate'
MYSQL_LOCK_TIMEOUT_S = 300
UPGRADE_COMMAND = 'dbfleet store upgrade'
SQLITE_LOCKED_RETRY_S = 30


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for dbfleet's migrations. Our env.py runs them on `connection`
    (the URL never goes through the ini parser, where a '%' in a password would break it)."""
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS_DIR).replace('%', '%%'))
    config.attributes['connection'] = connection
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The revision this dbfleet needs."""
    return _scripts().get_current_head()


def current(url: str | URL | Engine) -> str | None:
    """The store's revision, None when it has never been migrated."""
    with _connected(url) as engine:
        try:
            return _while_sqlite_locked(engine, lambda: _read_current(engine))
        except DBAPIError as error:
            raise unavailable(engine.url, error) from None


def _read_current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _current(connection)


def _sqlite_locked(engine: Engine, error: DBAPIError) -> bool:
    """SQLite answered 'database is locked' without waiting its busy timeout. It does that to a
    new file's first connections while another process turns it to WAL or migrates it (processes
    opening a fresh store at once): worth asking again shortly."""
    return engine.dialect.name == 'sqlite' and 'database is locked' in str(error.orig)


def _while_sqlite_locked(engine: Engine, work):
    """work(), asked again for up to SQLITE_LOCKED_RETRY_S while SQLite answers 'database is locked'
    (another process is opening or migrating the store: then there is nothing left to do)."""
    deadline = time.monotonic() + SQLITE_LOCKED_RETRY_S
    while True:
        try:
            return work()
        except DBAPIError as error:
            if not (_sqlite_locked(engine, error) and time.monotonic() < deadline):
                raise
        time.sleep(0.05)


def upgrade(url: str | URL | Engine, revision: str = 'head') -> None:
    """alembic upgrade `revision` (default head); a no-op on a store already there."""
    with _connected(url) as engine:
        _while_sqlite_locked(engine, lambda: _upgrade(engine, revision))


def _upgrade(engine: Engine, revision: str) -> None:
    try:
        with write_engine(engine).connect() as connection, _migration_lock(connection), \
                sqlite_foreign_keys_off(connection):
            with connection.begin():
                command.upgrade(alembic_config(connection), revision)
    except DBAPIError as error:
        if _sqlite_locked(engine, error):
            raise
        if is_unreachable(error):
            raise unavailable(engine.url, error) from None
        raise StoreError('store %s could not be upgraded to %s: %s'
                         % (masked(engine.url), revision, driver_reason(error))) from None
    except CommandError as error:
        raise StoreNotMigrated('store %s cannot be upgraded to %s: %s' % (masked(engine.url), revision, error)) \
            from None


def ensure_schema(engine: Engine, upgrade_if_needed: bool = True) -> None:
    """Make sure the store is at head: upgrade it (first use, older dbfleet) or raise
    StoreNotMigrated saying what to do; StoreUnavailable when it cannot be reached."""
    revision = current(engine)
    wanted = head()
    if revision == wanted:
        return
    if revision is not None and not _known(revision):
        raise StoreNotMigrated(
            'store %s is at revision %s, which is newer than this dbfleet (it knows up to %s): '
            'upgrade dbfleet, or point DBFLEET_STORE_URL at another store' % (masked(engine.url), revision, wanted))
    if not upgrade_if_needed:
        shown = '%s (empty)' % revision if revision is None else revision
        raise StoreNotMigrated("store %s is at revision %s, dbfleet needs %s: run '%s'"
                               % (masked(engine.url), shown, wanted, UPGRADE_COMMAND))
    upgrade(engine)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


@contextlib.contextmanager
def _connected(url: str | URL | Engine):
    """The engine passed in, or a temporary one for a URL (disposed afterwards)."""
    if isinstance(url, Engine):
        yield url
        return
    engine = create_store_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def sqlite_foreign_keys_off(connection: Connection):
    """On SQLite, foreign keys off around a migration (outside its transaction, where the pragma
    has no effect), as SQLite's documentation asks for schema changes: a migration that rebuilds a
    table (Alembic's batch mode: copy, drop, rename) would otherwise cascade the drop into every
    row that refers to it (dropping `jobs` deletes the jobs' events, host runs, results). The
    references are checked before the connection goes back with them on."""
    if connection.dialect.name != 'sqlite':
        yield
        return
    raw = connection.connection.dbapi_connection  # autocommit (isolation_level None, engine.py)
    raw.execute('PRAGMA foreign_keys = OFF')
    try:
        yield
        broken = raw.execute('PRAGMA foreign_key_check').fetchall()
        if broken:
            raise StoreError('the migration left %d rows referring to rows that do not exist (first: %r)'
                             % (len(broken), broken[0]))
    finally:
        raw.execute('PRAGMA foreign_keys = ON')


@contextlib.contextmanager
def _migration_lock(connection: Connection):
    """On MySQL/MariaDB, one migrating process at a time (the others then find nothing to do)."""
    if connection.dialect.name not in ('mysql', 'mariadb'):
        yield
        return
    got = connection.execute(text('SELECT GET_LOCK(:name, :timeout)'),
                             {'name': MYSQL_LOCK_NAME, 'timeout': MYSQL_LOCK_TIMEOUT_S}).scalar()
    connection.commit()
    if got != 1:
        raise StoreError('store %s: another process has been migrating it for %d s; try again later'
                         % (masked(connection.engine.url), MYSQL_LOCK_TIMEOUT_S))
    try:
        yield
    finally:
        connection.execute(text('SELECT RELEASE_LOCK(:name)'), {'name': MYSQL_LOCK_NAME})
        connection.commit()

