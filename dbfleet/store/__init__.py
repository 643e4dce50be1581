"""dbfleet's store: the system of record for hosts, facts, tags, jobs and API tokens (SQLAlchemy 2 + Alembic).

    from dbfleet.store import open_store
    store = open_store()            # DBFLEET_STORE_URL, default var/dbfleet.db under the repo
    store.facts.record('db1', facts)
    store.jobs.get(job_id)

`open_store` is the front door: it builds the engine, checks that the database is
reachable and at the schema revision this dbfleet needs (upgrading it on first use unless
told not to), and returns a Store whose parts (store.hosts, store.jobs, ...: see store.py)
run one short transaction per method.
"""

from __future__ import annotations

from dbfleet.settings import get_settings
from dbfleet.store.credentials import UnknownCredential
from dbfleet.store.engine import create_store_engine
from dbfleet.store.errors import StoreError, StoreNotMigrated, StoreUnavailable, UnknownHost, UnknownToken
from dbfleet.store.facts import DEFAULT_KEEP_SNAPSHOTS, SUMMARY_FACT_PATHS
from dbfleet.store.job_lifecycle import TERMINAL_STATUSES
from dbfleet.store.jobs import UnknownJob
from dbfleet.store.migrate import ensure_schema
from dbfleet.store.notifications import UnknownNotifier
from dbfleet.store.pools import UnknownPool
from dbfleet.store.schedules import UnknownSchedule, is_launching
from dbfleet.store.store import Store
from dbfleet.store.templates import UnknownTemplate
from dbfleet.store.tokens import LAST_USED_EVERY
from dbfleet.store.windows import WINDOW_POLICIES, UnknownWindow

__all__ = [
    'DEFAULT_KEEP_SNAPSHOTS', 'LAST_USED_EVERY', 'SUMMARY_FACT_PATHS', 'Store', 'StoreError', 'StoreNotMigrated',
    'StoreUnavailable', 'TERMINAL_STATUSES', 'UnknownCredential', 'UnknownHost', 'UnknownJob', 'UnknownNotifier', 'UnknownPool',
    'UnknownSchedule', 'UnknownTemplate', 'UnknownToken', 'UnknownWindow', 'WINDOW_POLICIES', 'is_launching', 'open_store',
]


def open_store(url: str | None = None, migrate: bool = True, keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS) -> Store:
    """The store at `url` (default: settings' store_url), ready to use.

    migrate=True upgrades an empty or older database to this dbfleet's schema (first use);
    migrate=False raises StoreNotMigrated naming the command to run instead. A database
    migrated by a newer dbfleet is always refused. StoreUnavailable when it cannot be reached.
    """
    engine = create_store_engine(url or get_settings().store_url)
    try:
        ensure_schema(engine, upgrade_if_needed=migrate)
        return Store(engine, keep_snapshots=keep_snapshots)
    except BaseException:
        engine.dispose()
        raise
