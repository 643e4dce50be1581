"""The store's tables as SQLAlchemy ORM classes: hosts, fact snapshots, tags, host tags, tag events;
and the runner service's jobs, job dependencies, job events, per-host results and audit log.

The same schema runs on SQLite and MySQL/MariaDB, so types are chosen to mean the same on
both: datetimes are stored as naive UTC with microseconds (MySQL's DATETIME drops them
unless asked) and come back timezone-aware; text keys have lengths (MySQL cannot index
unbounded text) and compare case-sensitively (utf8mb4_bin), as they do in SQLite.

The tables are created by the Alembic migrations in `migrations/versions`, never by
`metadata.create_all`; tests check that the two stay identical.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    column,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import conv
from sqlalchemy.types import TypeDecorator

from dbfleet.clock import utc

TAG_KINDS = ('manual', 'rule', 'derived')
NAME_LENGTH = 255
JOB_STATUSES = ('queued', 'waiting', 'running', 'successful', 'failed', 'canceled', 'timed_out', 'dependency_failed',
                'worker_lost', 'awaiting_approval', 'rejected', 'expired')
INVENTORY_KINDS = ('file', 'tags')
DEPENDENCY_CONDITIONS = ('success', 'failure', 'always')
SCHEDULE_KINDS = ('cron', 'interval', 'once')
OVERLAP_POLICIES = ('allow', 'forbid', 'replace')
CATCH_UP_POLICIES = ('skip', 'once')
SLOT_OUTCOMES = ('fired', 'skipped', 'missed')
# Who took a slot: the scheduler (fired or skipped it) or crontab (ran it); a missed slot, nobody.
SLOT_CLAIMANTS = ('platform', 'crontab')
WINDOW_KINDS = ('recurring', 'absolute')
CREDENTIAL_KINDS = ('ssh', 'mysql', 'vault', 'become', 'age_identity')
TOKEN_ROLES = ('viewer', 'operator', 'admin', 'agent')  # the first three ranked; agent stands apart
RANKED_ROLES = TOKEN_ROLES[:3]  # viewer < operator < admin: each may do what the ones before it may
HOST_RESULT_COUNTS = ('ok', 'changed', 'failed', 'unreachable', 'skipped', 'rescued', 'ignored')
JOB_ID_LENGTH = 32  # uuid4().hex
PATH_LENGTH = 512

# Constraint names are spelled out so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    'ix': 'ix_%(table_name)s_%(column_0_N_name)s',
    'uq': 'uq_%(table_name)s_%(column_0_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}
MYSQL_TABLE_OPTIONS = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return str(value)


def dump_json(value: Any) -> str:
    """JSON text for a column value; datetimes, decimals and sets become plain JSON values
    (rule evidence and facts may hold them) instead of failing the whole write."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(',', ':'))


def as_json_value(value: Any) -> Any:
    """The value as it will read back from a JSON column, so 'did it change?' compares like with like."""
    return json.loads(dump_json(value))


class UTCDateTime(TypeDecorator):
    """Naive UTC in the database (portable), aware UTC in Python (unambiguous)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ('mysql', 'mariadb'):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError('expected a datetime, got %r' % (value,))
        return utc(value).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return utc(value)


# 64-bit ids where rows churn (snapshots are pruned, events accumulate); SQLite only
# auto-increments a column declared INTEGER.
BigId = BigInteger().with_variant(Integer(), 'sqlite')
NullableJSON = JSON(none_as_null=True)
# MySQL's TEXT stops at 64 KB, and one task's output can be more.
LongText = Text().with_variant(mysql.MEDIUMTEXT(), 'mysql', 'mariadb')


def _in(name: str, values: tuple[str, ...]):
    """`name IN (values)` for a CHECK constraint, quoted by the dialect (job_dependencies.on is a keyword)."""
    return column(name).in_(values)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict: JSON()}


class Host(Base):
    __tablename__ = 'hosts'
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    address: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    port: Mapped[int | None] = mapped_column(Integer)
    attributes: Mapped[dict] = mapped_column(JSON())
    # Copied from the newest snapshot at facts.record time so the inventory reads one
    # small JSON per host instead of every host's full facts.
    facts_at: Mapped[dt.datetime | None] = mapped_column()
    facts_summary: Mapped[dict | None] = mapped_column(NullableJSON)
    created_at: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column()


class FactSnapshot(Base):
    __tablename__ = 'fact_snapshots'
    __table_args__ = (Index(None, 'host_id', 'collected_at'), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey('hosts.id', ondelete='CASCADE'))
    collected_at: Mapped[dt.datetime] = mapped_column()
    facts: Mapped[dict] = mapped_column(JSON())


class Tag(Base):
    __tablename__ = 'tags'
    __table_args__ = (CheckConstraint("kind IN ('manual', 'rule', 'derived')", name='kind'), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    dimension: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column()


class HostTag(Base):
    __tablename__ = 'host_tags'
    __table_args__ = (
        CheckConstraint("source IN ('manual', 'rule', 'derived')", name='source'),
        Index(None, 'tag_id'),
        Index(None, 'expires_at'),
        MYSQL_TABLE_OPTIONS,
    )

    host_id: Mapped[int] = mapped_column(ForeignKey('hosts.id', ondelete='CASCADE'), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey('tags.id', ondelete='CASCADE'), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    since: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    evidence: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    set_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


class TagEvent(Base):
    """The tag trail. Host and tag are kept by name, so history outlives deleted hosts."""

    __tablename__ = 'tag_events'
    __table_args__ = (
        CheckConstraint("action IN ('added', 'removed', 'expired', 'updated')", name='action'),
        Index(None, 'at'),
        Index(None, 'host', 'at'),
        Index(None, 'tag', 'at'),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column()
    host: Mapped[str] = mapped_column(String(NAME_LENGTH))
    tag: Mapped[str] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(16))
    old: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    new: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    who: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


# -- the runner service's jobs -------------------------------------------------------------

class Job(Base):
    """One playbook run as the API accepted it, and where it is now. extra_vars arrive already redacted."""

    __tablename__ = 'jobs'
    __table_args__ = (
        CheckConstraint(_in('status', JOB_STATUSES), name='status'),
        CheckConstraint(_in('inventory_kind', INVENTORY_KINDS), name='inventory_kind'),
        # Each filter comes with the listing's newest-first order.
        Index(None, 'status', 'created_at'),
        Index(None, 'status', 'enqueued_at'),  # the reconciler's recently queued jobs
        Index(None, 'status', 'deadline'),  # the reconciler's overdue jobs
        Index(None, 'created_at', 'id'),
        Index(None, 'playbook', 'created_at'),
        Index(None, 'relaunch_of'),
        Index(None, 'template', 'created_at'),
        Index(None, 'finished_at'),  # the notifier reads the jobs that ended since its last pass
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[str] = mapped_column(String(JOB_ID_LENGTH), primary_key=True)
    playbook: Mapped[str] = mapped_column(String(PATH_LENGTH))
    inventory: Mapped[str] = mapped_column(Text)
    inventory_kind: Mapped[str] = mapped_column(String(8))
    limit_pattern: Mapped[str | None] = mapped_column(Text)
    extra_vars: Mapped[dict] = mapped_column(JSON())
    check_mode: Mapped[bool] = mapped_column(Boolean)
    diff_mode: Mapped[bool] = mapped_column(Boolean)
    forks: Mapped[int | None] = mapped_column(Integer)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    deadline: Mapped[dt.datetime | None] = mapped_column()
    queue: Mapped[str] = mapped_column(String(64), default='default')
    priority: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(NAME_LENGTH), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column()
    enqueued_at: Mapped[dt.datetime | None] = mapped_column()
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    worker: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    retry_backoff_seconds: Mapped[int] = mapped_column(Integer, default=0)
    return_code: Mapped[int | None] = mapped_column(Integer)
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    relaunch_of: Mapped[str | None] = mapped_column(ForeignKey('jobs.id', ondelete='SET NULL'))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    plan: Mapped[Any] = mapped_column(NullableJSON, nullable=True)  # lanes / rolling / pool (runner_service.jobs.planner)
    # Extra vars whose names look secret, encrypted (runner_service.secret_box); never sent out.
    secret_vars: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column()
    runner_host: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    runner_pid: Mapped[int | None] = mapped_column(Integer)
    # The job template that launched it (runner_service.templates.service); None: a bare playbook.
    template: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    # The names of the credentials its run gets (the template's at launch); None: none.
    credentials: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    # The git commit the job's last run used (DBFLEET_PROJECT_URL); None: a local project directory.
    project_revision: Mapped[str | None] = mapped_column(String(40))
    # A job of a template that requires approval: how long it may wait for one (None: no approval
    # needed), until when, and the admin who approved or rejected it.
    approval_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    approval_expires_at: Mapped[dt.datetime | None] = mapped_column()
    approval_decided_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    approval_decided_at: Mapped[dt.datetime | None] = mapped_column()


class JobDependency(Base):
    """job_id runs once depends_on_id has ended as `on` asks (success, failure, always)."""

    __tablename__ = 'job_dependencies'
    __table_args__ = (
        CheckConstraint(_in('on', DEPENDENCY_CONDITIONS), name='on'),
        Index(None, 'depends_on_id'),
        MYSQL_TABLE_OPTIONS,
    )

    job_id: Mapped[str] = mapped_column(ForeignKey('jobs.id', ondelete='CASCADE'), primary_key=True)
    # No cascade: a job others wait for cannot be deleted from under them.
    depends_on_id: Mapped[str] = mapped_column(ForeignKey('jobs.id'), primary_key=True)
    on: Mapped[str] = mapped_column(String(8))


class JobEvent(Base):
    """One ansible-runner event; seq is the runner's counter, uuid its event id (duplicates are dropped)."""

    __tablename__ = 'job_events'
    __table_args__ = (
        UniqueConstraint('job_id', 'uuid', name=conv('uq_job_events_job_id_uuid')),
        Index(None, 'job_id', 'seq'),
        Index(None, 'job_id', 'host'),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey('jobs.id', ondelete='CASCADE'))
    seq: Mapped[int] = mapped_column(Integer)
    uuid: Mapped[str | None] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    task: Mapped[str | None] = mapped_column(Text)
    play: Mapped[str | None] = mapped_column(Text)
    changed: Mapped[bool | None] = mapped_column(Boolean)
    failed: Mapped[bool | None] = mapped_column(Boolean)
    created: Mapped[dt.datetime] = mapped_column()
    stdout: Mapped[str] = mapped_column(LongText)
    data: Mapped[dict] = mapped_column(JSON())


class JobHostResult(Base):
    """A job's per-host recap counts (ansible's PLAY RECAP)."""

    __tablename__ = 'job_host_results'
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    job_id: Mapped[str] = mapped_column(ForeignKey('jobs.id', ondelete='CASCADE'), primary_key=True)
    host: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    ok: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    unreachable: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    rescued: Mapped[int] = mapped_column(Integer, default=0)
    ignored: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """Who launched, canceled, relaunched what. The target is kept by name or id, so history outlives it."""

    __tablename__ = 'audit_log'
    __table_args__ = (
        Index(None, 'at'),
        Index(None, 'actor', 'at'),
        Index(None, 'action', 'at'),
        Index(None, 'target', 'at'),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(NAME_LENGTH))
    detail: Mapped[Any] = mapped_column(NullableJSON, nullable=True)


class JobTag(Base):
    """A tag that a tag-expression job names, so jobs can be listed by tag."""

    __tablename__ = 'job_tags'
    __table_args__ = (Index(None, 'tag'), MYSQL_TABLE_OPTIONS)

    job_id: Mapped[str] = mapped_column(ForeignKey('jobs.id', ondelete='CASCADE'), primary_key=True)
    tag: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)


class ApiToken(Base):
    """A bearer token for the API: only its SHA-256 is kept, the token itself is shown once."""

    __tablename__ = 'api_tokens'
    __table_args__ = (CheckConstraint(_in('role', TOKEN_ROLES), name='role'), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    # The job templates this token may launch (and nothing else); None: any its role allows.
    templates: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    # An agent token's host: the only host it may report runs for and read entries of.
    host: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    expires_at: Mapped[dt.datetime | None] = mapped_column()


class Template(Base):
    """What an operator may launch: an admin-defined playbook, inventory, defaults and survey
    (runner_service.templates.service checks the definition; the store keeps it as given)."""

    __tablename__ = 'job_templates'
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    definition: Mapped[dict] = mapped_column(JSON())
    created_at: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    updated_at: Mapped[dt.datetime] = mapped_column()
    updated_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


class Credential(Base):
    """A secret a job's run needs (an SSH key, a MySQL login, a vault or become password): the
    secret sealed with the service key, beside what may be shown (runner_service.credentials)."""

    __tablename__ = 'credentials'
    __table_args__ = (CheckConstraint(_in('kind', CREDENTIAL_KINDS), name='kind'), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    # What the API shows: username, vault id, become method and user; never a secret.
    public: Mapped[dict] = mapped_column(JSON())
    fingerprint: Mapped[str] = mapped_column(String(128))
    # The secret fields, sealed (Fernet with the service key, runner_service.secret_box).
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


class Schedule(Base):
    """A trigger, the policies for its slots, and the job each slot launches (extra vars masked;
    secret ones sealed in secret_vars, as for jobs)."""

    __tablename__ = 'schedules'
    __table_args__ = (
        CheckConstraint(_in('kind', SCHEDULE_KINDS), name='kind'),
        CheckConstraint(_in('overlap', OVERLAP_POLICIES), name='overlap'),
        CheckConstraint(_in('catch_up', CATCH_UP_POLICIES), name='catch_up'),
        Index(None, 'paused', 'next_fire_at'),
        Index(None, 'source_host'),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[str] = mapped_column(String(JOB_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    expression: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64))
    job: Mapped[dict] = mapped_column(JSON())
    secret_vars: Mapped[str | None] = mapped_column(Text)
    overlap: Mapped[str] = mapped_column(String(8))
    misfire_grace_seconds: Mapped[int] = mapped_column(Integer)
    catch_up: Mapped[str] = mapped_column(String(8))
    jitter_seconds: Mapped[int] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean)
    next_fire_at: Mapped[dt.datetime | None] = mapped_column()
    last_fire_at: Mapped[dt.datetime | None] = mapped_column()
    last_job_id: Mapped[str | None] = mapped_column(String(JOB_ID_LENGTH))
    source: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    # source['host'], kept by the store so that one host's schedules (its crontab entries) are an
    # index lookup: each bridged host's agent asks for them every minute.
    source_host: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    window_policy: Mapped[str] = mapped_column(String(8), server_default='skip')
    # {event: [notifier, ...]}: who hears of its slots and its jobs (runner_service.notify); None: nobody.
    notify: Mapped[Any] = mapped_column(NullableJSON, nullable=True)


class ScheduleSlot(Base):
    """What one slot of a schedule did. The key (schedule, slot time) admits one record per slot.
    claimed_by says who took it (SLOT_CLAIMANTS; None: missed). A platform claim that is still
    'fired' with no job is a launch under way (crontab-bridged schedules claim before launching)."""

    __tablename__ = 'schedule_slots'
    __table_args__ = (CheckConstraint(_in('outcome', SLOT_OUTCOMES), name='outcome'),
                      CheckConstraint(_in('claimed_by', SLOT_CLAIMANTS), name='claimed_by'),
                      Index(None, 'recorded_at'),  # the notifier reads the slots recorded since its last pass
                      MYSQL_TABLE_OPTIONS)

    schedule_id: Mapped[str] = mapped_column(ForeignKey('schedules.id', ondelete='CASCADE'), primary_key=True)
    slot_at: Mapped[dt.datetime] = mapped_column(primary_key=True)
    outcome: Mapped[str] = mapped_column(String(8))
    job_id: Mapped[str | None] = mapped_column(String(JOB_ID_LENGTH))
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(8))


class JobHostRun(Base):
    """When one host of a planned job ran, in which lane or batch: the job's timeline."""

    __tablename__ = 'job_host_runs'
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    job_id: Mapped[str] = mapped_column(ForeignKey('jobs.id', ondelete='CASCADE'), primary_key=True)
    host: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    lane: Mapped[int | None] = mapped_column(Integer)
    batch: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    estimate_seconds: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    detail: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


class Pool(Base):
    """A named concurrency limit shared by every job and schedule."""

    __tablename__ = 'pools'
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column()


class PoolLease(Base):
    """A slot of a pool held by `holder` (job:host); it expires unless renewed."""

    __tablename__ = 'pool_leases'
    __table_args__ = (UniqueConstraint('pool', 'holder'), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pool: Mapped[str] = mapped_column(ForeignKey('pools.name', ondelete='CASCADE'))
    holder: Mapped[str] = mapped_column(String(NAME_LENGTH))
    acquired_at: Mapped[dt.datetime] = mapped_column()
    renewed_at: Mapped[dt.datetime] = mapped_column()


class MaintenanceWindow(Base):
    """A blackout period: recurring (start is a cron expression) or absolute (an ISO time), lasting
    duration_seconds, in a time zone; tags (an expression) limits it to the schedules whose hosts match."""

    __tablename__ = 'maintenance_windows'
    __table_args__ = (CheckConstraint(_in('kind', WINDOW_KINDS), name='kind'), MYSQL_TABLE_OPTIONS)

    id: Mapped[str] = mapped_column(String(JOB_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    start: Mapped[str] = mapped_column(String(255))
    duration_seconds: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    tags: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


# -- backups ------------------------------------------------------------------------------

BACKUP_METHODS = ('logical', 'physical')
BACKUP_STATUSES = ('ok', 'failed')
RESTORE_TEST_STATUSES = ('ok', 'failed')


class Backup(Base):
    """One backup attempt of a host (dbfleet.mysql.mysql_backup), successful or not. The host is kept
    by name, so history outlives it; durations of successful ones feed the planner's estimates."""

    __tablename__ = 'backups'
    __table_args__ = (
        CheckConstraint(_in('method', BACKUP_METHODS), name='method'),
        CheckConstraint(_in('status', BACKUP_STATUSES), name='status'),
        CheckConstraint(_in('restore_test_status', RESTORE_TEST_STATUSES), name='restore_test_status'),
        Index(None, 'host', 'started_at'),
        Index(None, 'host', 'pinned'),  # the action plugin reads a host's pinned backups before each run
        Index(None, 'started_at'),
        Index(None, 'created_at'),  # the notifier reads the backups recorded since its last pass
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    host: Mapped[str] = mapped_column(String(NAME_LENGTH))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[dt.datetime] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    # DOUBLE: MySQL's FLOAT keeps 7 digits, too few for a long backup timed to the millisecond.
    duration_seconds: Mapped[float | None] = mapped_column(Double)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    path: Mapped[str | None] = mapped_column(Text)
    checksum: Mapped[str | None] = mapped_column(String(64))
    binlog_file: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    binlog_position: Mapped[int | None] = mapped_column(BigInteger)
    gtid: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column()
    # Never removed by retention (`dbfleet backups keep ID`); when retention removed it (the row stays).
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[dt.datetime | None] = mapped_column()
    # A failed attempt's partial directory: where it was (removed) or is (kept_partial, for debugging).
    partial_path: Mapped[str | None] = mapped_column(Text)
    kept_partial: Mapped[bool] = mapped_column(Boolean, default=False)
    # Filled by restore drills.
    restore_tested_at: Mapped[dt.datetime | None] = mapped_column()
    restore_test_status: Mapped[str | None] = mapped_column(String(8))
    # prefer=replica: the replica the backup was taken from (host:port) and the GTID position it had reached.
    source_replica: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    source_gtid: Mapped[str | None] = mapped_column(Text)


BINLOG_GAP_KINDS = ('purged', 'gtid', 'server')


class Binlog(Base):
    """One complete binary log of a host in its archive (dbfleet.mysql.binlog_archive, `dbfleet archive
    run`): what it covers (first/last GTID and event time), where it is and its SHA-256. `gap` is the
    break in the chain just before this file ({kind, detail, previous, at, missing}), null when the file
    follows the previous one without one: a restorable window never spans a file with a gap."""

    __tablename__ = 'binlogs'
    __table_args__ = (
        UniqueConstraint('host', 'file'),
        Index(None, 'host', 'last_event_at'),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    host: Mapped[str] = mapped_column(String(NAME_LENGTH))
    file: Mapped[str] = mapped_column(String(NAME_LENGTH))
    server_id: Mapped[int | None] = mapped_column(BigInteger)
    first_gtid: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    last_gtid: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    first_event_at: Mapped[dt.datetime] = mapped_column()
    last_event_at: Mapped[dt.datetime] = mapped_column()
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(Text)
    gap: Mapped[dict | None] = mapped_column(NullableJSON)
    archived_at: Mapped[dt.datetime] = mapped_column()


class BinlogArchiveState(Base):
    """The archive of one host as its last pass saw it: how far behind the server (lag_seconds, null
    before anything is archived), the server's current file, the gaps it reported; a fact the tag rules
    read (facts.binlog_archive) and /metrics exposes."""

    __tablename__ = 'binlog_archive_state'
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    host: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    lag_seconds: Mapped[float | None] = mapped_column(Double)
    current_file: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    gaps: Mapped[dict | None] = mapped_column(NullableJSON)
    checked_at: Mapped[dt.datetime] = mapped_column()


COPY_STATUSES = ('ok', 'failed')


class BackupCopy(Base):
    """One file (a backup's archive, or an archived binlog file) copied to one repository, and
    whether its SHA-256 there was checked against the manifest's."""

    __tablename__ = 'backup_copies'
    __table_args__ = (
        CheckConstraint(_in('status', COPY_STATUSES), name='status'),
        Index(None, 'backup_id'),
        Index(None, 'host', 'binlog_file'),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    backup_id: Mapped[int | None] = mapped_column(BigId, ForeignKey('backups.id', ondelete='CASCADE'))
    host: Mapped[str] = mapped_column(String(NAME_LENGTH))
    binlog_file: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    repository: Mapped[str] = mapped_column(String(NAME_LENGTH))
    location: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))
    verified_at: Mapped[dt.datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column()


DRILL_STATUSES = ('ok', 'failed')


class Drill(Base):
    """One restore drill of a host: its newest backup restored into a sandbox and replayed to a point
    of its restorable window (dbfleet.mysql.restore_drill). rto_seconds: the measured recovery time
    (restore, replay and verification); restored_to: the instant the restored data is at; rpo_seconds:
    how old that data was when the drill started (what a restore then would have lost)."""

    __tablename__ = 'drills'
    __table_args__ = (
        CheckConstraint(_in('status', DRILL_STATUSES), name='status'),
        Index(None, 'host', 'started_at'),
        Index(None, 'started_at'),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    host: Mapped[str] = mapped_column(String(NAME_LENGTH))
    backup_id: Mapped[int | None] = mapped_column(BigId, ForeignKey('backups.id', ondelete='SET NULL'))
    job_id: Mapped[str | None] = mapped_column(String(JOB_ID_LENGTH))
    status: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[dt.datetime] = mapped_column()
    finished_at: Mapped[dt.datetime] = mapped_column()
    rto_seconds: Mapped[float | None] = mapped_column(Double)
    restored_to: Mapped[dt.datetime | None] = mapped_column()
    restored_gtid: Mapped[str | None] = mapped_column(Text)
    rpo_seconds: Mapped[float | None] = mapped_column(Double)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Seconds per phase (sandbox, load, replay, verify...) and what the verification compared.
    detail: Mapped[Any] = mapped_column(NullableJSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)


CRON_RUN_STATUSES = ('running', 'ok', 'failed', 'skipped')
CRON_RUN_VIA = ('observe', 'fallback')


class CronRun(Base):
    """One run of a crontab entry as its wrapper (`dbfleet cron exec`) reported it: crontab fired
    it (observe), or fired it while the platform was away (fallback), or asked and was told the
    platform runs that slot (skipped). The id comes from the wrapper, so a report delivered twice
    (spooled, then sent again) is the same row."""

    __tablename__ = 'cron_runs'
    __table_args__ = (
        CheckConstraint(_in('status', CRON_RUN_STATUSES), name='status'),
        CheckConstraint(_in('via', CRON_RUN_VIA), name='via'),
        Index(None, 'schedule_id', 'started_at'),
        Index(None, 'schedule_id', 'slot_at'),
        Index(None, 'status', 'finished_at'),  # the notifier reads the runs that failed since its last pass
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[str] = mapped_column(String(JOB_ID_LENGTH), primary_key=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey('schedules.id', ondelete='CASCADE'))
    host: Mapped[str] = mapped_column(String(NAME_LENGTH))
    via: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8))
    slot_at: Mapped[dt.datetime | None] = mapped_column()
    started_at: Mapped[dt.datetime] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    exit_code: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[float | None] = mapped_column(Double)
    output_tail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column()


NOTIFIER_KINDS = ('webhook', 'email', 'slack')
DELIVERY_STATUSES = ('pending', 'sending', 'delivered', 'failed', 'silenced')


class Notifier(Base):
    """Where notifications go (a webhook, an SMTP mailbox, a Slack-compatible incoming webhook):
    what may be shown, and its secrets (HMAC key, SMTP password, the Slack URL) sealed with the
    service key (runner_service.notify). `events` are the notifier-wide events it takes."""

    __tablename__ = 'notifiers'
    __table_args__ = (CheckConstraint(_in('kind', NOTIFIER_KINDS), name='kind'), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    public: Mapped[dict] = mapped_column(JSON())
    events: Mapped[Any] = mapped_column(JSON())
    sealed: Mapped[str | None] = mapped_column(Text)  # None: a notifier without secrets (mail without AUTH)
    created_at: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


class Notification(Base):
    """Something worth telling (a job failed, recovered, timed out; a worker lost...), stored once
    (its `key` says what it is about) before anything is sent; silenced by a maintenance window
    (`silenced_by` names it) it is kept all the same."""

    __tablename__ = 'notifications'
    __table_args__ = (Index(None, 'created_at'), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSON())
    template: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    schedule: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    job_id: Mapped[str | None] = mapped_column(String(JOB_ID_LENGTH))
    silenced_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column()


class NotificationDelivery(Base):
    """One notification to one notifier: the outbox row a sender claims (a conditional UPDATE),
    sends, and retries with backoff; every attempt is kept in `attempt_log`, never a secret."""

    __tablename__ = 'notification_deliveries'
    __table_args__ = (
        CheckConstraint(_in('status', DELIVERY_STATUSES), name='status'),
        Index(None, 'status', 'next_attempt_at'),
        Index(None, 'notifier', 'created_at'),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey('notifications.id', ondelete='CASCADE'), index=True)
    notifier: Mapped[str] = mapped_column(String(NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    claimed_until: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    attempt_log: Mapped[Any] = mapped_column(JSON())
    delivered_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column()


class NotifyCursor(Base):
    """How far a watcher has read a source of events (job ends), so a restart reads on from there."""

    __tablename__ = 'notify_cursors'
    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[dt.datetime] = mapped_column()
