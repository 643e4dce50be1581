"""The Store: dbfleet's system of record, reached part by part.

    store.hosts      hosts, and the fleet as the inventory plugin reads it   (hosts.py)
    store.facts      fact snapshots of each host                            (facts.py)
    store.tags       tag definitions, host tags, the tag trail              (tags.py)
    store.jobs       jobs, their dependencies, per-host results and runs    (jobs.py, job_lifecycle.py)
    store.events     the ansible-runner events of each job                  (events.py)
    store.audit      who did what through the API and the CLI               (audit.py)
    store.schedules  schedules and their slots                              (schedules.py)
    store.windows    maintenance windows                                    (windows.py)
    store.pools      concurrency pools and their leases                     (pools.py)
    store.templates  job templates                                          (templates.py)
    store.tokens     API tokens                                             (tokens.py)
    store.credentials  sealed secrets for job runs                          (credentials.py)
    store.notifications  notifiers, notifications and their deliveries    (notifications.py)
    store.backups    backup attempts                                        (backups.py)
    store.binlogs    the binary log archive of each host and its lag        (binlogs.py)
    store.copies     off-host copies of backups and binlog files            (copies.py)
    store.drills     restore drills: RTO, RPO, what each host last had tested (drills.py)
    store.cron       runs of bridged crontab entries                        (cron.py)
    store.metrics    the figures /metrics exposes, aggregated in SQL        (metrics.py)

Every part shares the Store's Transactions (transactions.py): each public method is one
short transaction, retried when it lost a race, and returns plain dicts and lists, so callers
(the action and inventory plugins, the API, the CLI) never hold ORM objects or sessions.
Datetimes go in as aware (any zone) or naive UTC and come out aware UTC.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import Engine

from dbfleet.store.audit import Audit
from dbfleet.store.backups import Backups
from dbfleet.store.binlogs import Binlogs
from dbfleet.store.copies import Copies
from dbfleet.store.drills import Drills
from dbfleet.store.credentials import Credentials
from dbfleet.store.cron import Cron
from dbfleet.store.errors import masked
from dbfleet.store.events import Events
from dbfleet.store.facts import DEFAULT_KEEP_SNAPSHOTS, Facts
from dbfleet.store.hosts import Hosts
from dbfleet.store.jobs import Jobs
from dbfleet.store.metrics import Metrics
from dbfleet.store.notifications import Notifications
from dbfleet.store.pools import Pools
from dbfleet.store.schedules import Schedules
from dbfleet.store.tags import Tags
from dbfleet.store.templates import Templates
from dbfleet.store.tokens import Tokens
from dbfleet.store.transactions import Transactions
from dbfleet.store.windows import Windows


class Store:
    """dbfleet's system of record, one part per concept. Build it with `open_store()`."""

    def __init__(self, engine: Engine, keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS):
        self.transactions = Transactions(engine)
        self.url = masked(engine.url)
        self._engine = engine
        self._pid = os.getpid()
        self.facts = Facts(self.transactions, keep_snapshots=keep_snapshots)
        self.hosts = Hosts(self.transactions)
        self.tags = Tags(self.transactions)
        self.jobs = Jobs(self.transactions)
        self.events = Events(self.transactions)
        self.audit = Audit(self.transactions)
        self.schedules = Schedules(self.transactions)
        self.windows = Windows(self.transactions)
        self.pools = Pools(self.transactions)
        self.templates = Templates(self.transactions)
        self.tokens = Tokens(self.transactions)
        self.backups = Backups(self.transactions)
        self.binlogs = Binlogs(self.transactions)
        self.copies = Copies(self.transactions)
        self.drills = Drills(self.transactions)
        self.cron = Cron(self.transactions)
        self.credentials = Credentials(self.transactions)
        self.metrics = Metrics(self.transactions)
        self.notifications = Notifications(self.transactions)

    def __repr__(self):
        return '<Store %s>' % self.url

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        # In a forked child the pool still holds the parent's connections: closing them
        # would end the parent's sessions, so the child only lets go of them.
        self._engine.dispose(close=os.getpid() == self._pid)

    def forked(self) -> 'Store':
        """This store for a process forked from the one that opened it (an RQ work horse): the
        same engine, already checked against the schema revision, minus the parent's pooled
        connections (left to the parent; the child opens its own)."""
        self._engine.dispose(close=False)
        return Store(self._engine, keep_snapshots=self.facts.keep_snapshots)
