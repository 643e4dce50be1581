"""The Store: hosts, their fact snapshots, tag definitions, host tags and the tag audit trail;
the runner service's jobs come from the JobStore mixin (jobs.py), the API's tokens from
TokenStore (tokens.py).

Every public method is one short transaction and returns plain dicts and lists, so callers
(the action and inventory plugins, the API, the CLI) never hold ORM objects or sessions.
Datetimes go in as aware (any zone) or naive UTC and come out aware UTC.

Writers may run in many processes at once (forked Ansible workers). Each write locks the
host's row first (SELECT ... FOR UPDATE; SQLite's BEGIN IMMEDIATE serialises writers
anyway), and a transaction that loses a race on MySQL/MariaDB (deadlock, lock wait
timeout, two processes creating the same host or tag) is retried from the start.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import time
from collections import defaultdict
from typing import Any, Callable, Iterable, TypeVar

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from dbfleet.clock import utc, utcnow
from dbfleet.store.backups import BackupStore
from dbfleet.store.cron import CronStore
from dbfleet.store.engine import write_engine
from dbfleet.store.errors import UnknownHost, driver_reason, is_unreachable, masked, unavailable
from dbfleet.store.jobs import JobStore
from dbfleet.store.models import NAME_LENGTH, TAG_KINDS, FactSnapshot, Host, HostTag, Tag, TagEvent, as_json_value
from dbfleet.store.pools import PoolStore
from dbfleet.store.schedules import ScheduleStore
from dbfleet.store.templates import TemplateStore
from dbfleet.store.tokens import TokenStore
from dbfleet.store.windows import WindowStore

T = TypeVar('T')
log = logging.getLogger(__name__)

DEFAULT_KEEP_SNAPSHOTS = 50
# Copied into hosts.facts_summary by record_facts, so the inventory can serve these paths
# without reading full snapshots. Adding a path here needs a migration that recomputes
# the summaries from the latest snapshots (until then the path reads as missing).
SUMMARY_FACT_PATHS = (
    'server.flavour',
    'server.version.full',
    'server.uptime_seconds',
    'server.read_only',
    'replication.role',
    'replication.lag_seconds',
    'schemas.totals.total_bytes',
    'host.uptime_seconds',
)
RULE_SOURCES = ('rule', 'derived')
EXPIRY_WHO = 'dbfleet:expiry'
DIMENSION_LENGTH = 64

# MySQL/MariaDB errors that mean "this transaction lost a race, run it again": deadlock,
# lock wait timeout, duplicate key (another process created the same host or tag first).
_RETRY_MYSQL_CODES = {1213, 1205, 1062}
_RETRY_ATTEMPTS = 12


class Store(JobStore, TokenStore, ScheduleStore, PoolStore, BackupStore, WindowStore, CronStore, TemplateStore):
    """dbfleet's system of record for hosts, facts, tags, jobs and API tokens. Build it with `open_store()`."""

    def __init__(self, engine: Engine, keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS):
        if keep_snapshots < 1:
            raise ValueError('keep_snapshots must be at least 1 (the latest snapshot), got %r' % (keep_snapshots,))
        self._engine = engine
        self._reader = sessionmaker(engine, expire_on_commit=False)
        self._writer = sessionmaker(write_engine(engine), expire_on_commit=False)
        self.keep_snapshots = keep_snapshots
        self.url = masked(engine.url)
        self._pid = os.getpid()

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
        return Store(self._engine, keep_snapshots=self.keep_snapshots)

    # -- hosts -------------------------------------------------------------------------

    def upsert_host(self, name: str, address: str | None = None, port: int | None = None,
                    attributes: dict | None = None) -> dict:
        """Create or update a host. address/port None leave them as they are; attributes
        are merged into the stored ones, a key set to None is deleted."""
        _check_name(name, 'host')
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise ValueError('port of host %s must be an integer from 1 to 65535, got %r' % (name, port))
        if attributes is not None and not isinstance(attributes, dict):
            raise ValueError('attributes of host %s must be a mapping, got %s' % (name, type(attributes).__name__))
        changes = as_json_value(attributes or {})

        def work(session: Session) -> dict:
            now = utcnow()
            host = _host_for_write(session, name, now)
            merged = dict(host.attributes)
            for key, value in changes.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            changed = False
            for field, value in (('address', address), ('port', port), ('attributes', merged)):
                if value is not None and getattr(host, field) != value:
                    setattr(host, field, value)
                    changed = True
            if changed:
                host.updated_at = now
            return _host_dict(host)

        return self._run(work, write=True)

    def get_host(self, name: str) -> dict | None:
        """{name, address, port, attributes, created_at, updated_at}, or None."""
        def work(session: Session) -> dict | None:
            host = _host(session, name)
            return _host_dict(host) if host else None

        return self._run(work)

    def list_hosts(self) -> list[dict]:
        return self._run(lambda session: [_host_dict(host)
                                          for host in session.scalars(select(Host).order_by(Host.name))])

    def delete_host(self, name: str, who: str = 'dbfleet') -> bool:
        """Delete a host with its facts and tags (each tag it had gets a 'removed' event).
        False when there was no such host."""
        def work(session: Session) -> bool:
            now = utcnow()
            host = _host(session, name, lock=True)
            if host is None:
                return False
            _expire_rows(session, _expired_rows(session, now, [host.id]), now)
            for host_tag, tag_name in _host_tag_rows(session, host.id):
                _record_event(session, now, name, tag_name, 'removed', _state(host_tag), None, who)
            session.execute(delete(Host).where(Host.id == host.id))  # the database cascades to facts and tags
            return True

        return self._run(work, write=True)

    # -- facts -------------------------------------------------------------------------

    def record_facts(self, host: str, facts: dict, collected_at: dt.datetime | None = None) -> int:
        """Store a snapshot of a host's `ansible_facts.mysql` (creating the host if needed),
        keep the newest `keep_snapshots` per host, and return the snapshot's id."""
        _check_name(host, 'host')
        if not isinstance(facts, dict):
            raise ValueError('facts of host %s must be a mapping, got %s' % (host, type(facts).__name__))
        collected_at = utc(collected_at) or utcnow()
        facts = as_json_value(facts)
        summary = pick_facts(facts, SUMMARY_FACT_PATHS)

        def work(session: Session) -> int:
            row = _host_for_write(session, host, utcnow())
            snapshot = FactSnapshot(host_id=row.id, collected_at=collected_at, facts=facts)
            session.add(snapshot)
            session.flush()
            # A late-arriving older snapshot joins the history without becoming the latest.
            if row.facts_at is None or row.facts_at <= collected_at:
                row.facts_at = collected_at
                row.facts_summary = summary
            stale = session.scalars(
                select(FactSnapshot.id).where(FactSnapshot.host_id == row.id)
                .order_by(FactSnapshot.collected_at.desc(), FactSnapshot.id.desc())
                .offset(self.keep_snapshots)).all()
            if stale:
                session.execute(delete(FactSnapshot).where(FactSnapshot.id.in_(stale)))
            return snapshot.id

        return self._run(work, write=True)

    def latest_facts(self, host: str) -> dict | None:
        """{collected_at, facts} of the newest snapshot, None when none was recorded yet."""
        history = self.fact_history(host, limit=1)
        return history[0] if history else None

    def fact_history(self, host: str, limit: int = 20) -> list[dict]:
        """Up to `limit` snapshots, newest first: [{collected_at, facts}]."""
        def work(session: Session) -> list[dict]:
            host_id = _require_host(session, host).id
            rows = session.execute(
                select(FactSnapshot.collected_at, FactSnapshot.facts).where(FactSnapshot.host_id == host_id)
                .order_by(FactSnapshot.collected_at.desc(), FactSnapshot.id.desc()).limit(limit))
            return [{'collected_at': row.collected_at, 'facts': row.facts} for row in rows]

        return self._run(work)

    # -- tag definitions ---------------------------------------------------------------

    def define_tags(self, definitions: Iterable[dict]) -> None:
        """Create or update tag definitions by name: [{name, dimension, description, kind}].
        Keys left out keep their stored value (a new tag's kind defaults to 'rule')."""
        definitions = [dict(definition) for definition in definitions]
        for definition in definitions:
            _check_name(definition.get('name'), 'tag')
            _check_definition(definition.get('name'), definition)

        def work(session: Session) -> None:
            now = utcnow()
            names = [definition['name'] for definition in definitions]
            tags = _ensure_tags(session, names, kind='rule', now=now)
            for definition in definitions:
                tag = tags[definition['name']]
                for field in ('dimension', 'description', 'kind'):
                    if field in definition:
                        setattr(tag, field, definition[field])

        self._run(work, write=True)

    def list_tags(self, now: dt.datetime | None = None) -> list[dict]:
        """Every tag definition with `hosts`, the number of hosts tagged (unexpired) now."""
        now = utc(now) or utcnow()

        def work(session: Session) -> list[dict]:
            counts = (select(HostTag.tag_id, func.count().label('hosts')).where(_live(now))
                      .group_by(HostTag.tag_id).subquery())
            rows = session.execute(
                select(Tag.name, Tag.dimension, Tag.description, Tag.kind, func.coalesce(counts.c.hosts, 0))
                .outerjoin(counts, counts.c.tag_id == Tag.id).order_by(Tag.name))
            return [dict(name=name, dimension=dimension, description=description, kind=kind, hosts=int(hosts))
                    for name, dimension, description, kind, hosts in rows]

        return self._run(work)

    # -- host tags ---------------------------------------------------------------------

    def host_tags(self, host: str, now: dt.datetime | None = None) -> dict[str, dict]:
        """The host's unexpired tags: {tag: {dimension, kind, source, since, expires_at, evidence, set_by}}."""
        now = utc(now) or utcnow()

        def work(session: Session) -> dict[str, dict]:
            host_id = _require_host(session, host).id
            rows = session.execute(
                select(Tag.name, Tag.dimension, Tag.kind, HostTag.source, HostTag.since, HostTag.expires_at,
                       HostTag.evidence, HostTag.set_by)
                .join(Tag, Tag.id == HostTag.tag_id).where(HostTag.host_id == host_id, _live(now))
                .order_by(Tag.name))
            return {row.name: dict(dimension=row.dimension, kind=row.kind, source=row.source, since=row.since,
                                   expires_at=row.expires_at, evidence=row.evidence, set_by=row.set_by)
                    for row in rows}

        return self._run(work)

    def sync_rule_tags(self, host: str, computed: dict[str, Any], who: str,
                       now: dt.datetime | None = None) -> dict[str, list[str]]:
        """Make the host's rule and derived tags exactly `computed` ({tag: evidence} of the
        rules true now); manual tags are left alone. Returns the sorted names that were
        'added', 'removed', 'kept', and of those kept, 'updated' (evidence changed, which
        is logged but is not a change: changed == bool(added or removed)).
        A tag the host already carries manually counts as kept and stays manual."""
        now = utc(now) or utcnow()
        computed = _check_computed(computed)
        _check_name(who, 'who')

        def work(session: Session) -> dict[str, list[str]]:
            row = _require_host(session, host, lock=True)
            _expire_rows(session, _expired_rows(session, now, [row.id]), now)
            current = {tag_name: host_tag for host_tag, tag_name in _host_tag_rows(session, row.id)}
            diff = _diff(current, computed)
            for name in diff['removed']:
                _record_event(session, now, host, name, 'removed', _state(current[name]), None, who)
                session.delete(current[name])
            tags = _ensure_tags(session, diff['added'], kind='rule', now=now)
            for name in diff['added']:
                source = 'derived' if tags[name].kind == 'derived' else 'rule'
                host_tag = HostTag(host_id=row.id, tag_id=tags[name].id, source=source, since=now, expires_at=None,
                                   evidence=computed[name], set_by=who)
                session.add(host_tag)
                _record_event(session, now, host, name, 'added', None, _state(host_tag), who)
            for name in diff['updated']:
                host_tag = current[name]
                old = _state(host_tag)
                host_tag.evidence, host_tag.set_by = computed[name], who
                _record_event(session, now, host, name, 'updated', old, _state(host_tag), who)
            return diff

        return self._run(work, write=True)

    def preview_rule_tags(self, host: str, computed: dict[str, Any],
                          now: dt.datetime | None = None) -> dict[str, list[str]]:
        """What sync_rule_tags would do, writing nothing (check mode). A host not in the
        store yet previews as having no tags: that is what the real run will find once
        record_facts has created it."""
        now = utc(now) or utcnow()
        computed = _check_computed(computed)

        def work(session: Session) -> dict[str, list[str]]:
            row = _host(session, host)
            if row is None:
                return _diff({}, computed)
            current = {tag_name: host_tag for host_tag, tag_name in _host_tag_rows(session, row.id)
                       if _is_live(host_tag, now)}
            return _diff(current, computed)

        return self._run(work)

    def add_tag(self, host: str, tag: str, who: str, expires_at: dt.datetime | None = None, evidence: Any = None,
                dimension: str | None = None, description: str | None = None) -> bool:
        """Tag a host by hand (creating the host and the tag definition if needed). A tag
        the host has from a rule becomes manual (rules no longer remove it). True if
        anything changed; re-adding the same manual tag with the same expiry and evidence
        is not a change."""
        _check_name(host, 'host')
        _check_name(tag, 'tag')
        _check_name(who, 'who')
        _check_definition(tag, {'dimension': dimension, 'description': description})
        now = utcnow()
        expires_at = utc(expires_at)
        if expires_at is not None and expires_at <= now:
            raise ValueError('tag %s on %s would expire at %s, which is already past: give a future time'
                             % (tag, host, expires_at.isoformat()))
        evidence = as_json_value(evidence)

        def work(session: Session) -> bool:
            row = _host_for_write(session, host, now)
            _expire_rows(session, _expired_rows(session, now, [row.id]), now)
            tag_row = _ensure_tags(session, [tag], kind='manual', now=now, dimension=dimension,
                                   description=description)[tag]
            host_tag = session.get(HostTag, (row.id, tag_row.id))
            if host_tag is None:
                host_tag = HostTag(host_id=row.id, tag_id=tag_row.id, source='manual', since=now,
                                   expires_at=expires_at, evidence=evidence, set_by=who)
                session.add(host_tag)
                _record_event(session, now, host, tag, 'added', None, _state(host_tag), who)
                return True
            if (host_tag.source, host_tag.expires_at, host_tag.evidence) == ('manual', expires_at, evidence):
                return False
            old = _state(host_tag)
            host_tag.source, host_tag.expires_at, host_tag.evidence, host_tag.set_by = (
                'manual', expires_at, evidence, who)
            _record_event(session, now, host, tag, 'updated', old, _state(host_tag), who)
            return True

        return self._run(work, write=True)

    def remove_tag(self, host: str, tag: str, who: str) -> bool:
        """Take a tag off a host, whatever set it (a rule that is still true puts it back at
        its next sync). False when the host did not have it, also when no such tag was ever
        defined: 'absent' is already true, as Ansible's state=absent expects."""
        _check_name(who, 'who')

        def work(session: Session) -> bool:
            now = utcnow()
            row = _require_host(session, host, lock=True)
            tag_id = session.scalar(select(Tag.id).where(Tag.name == tag))
            if tag_id is None:
                return False
            _expire_rows(session, _expired_rows(session, now, [row.id]), now)
            host_tag = session.get(HostTag, (row.id, tag_id))
            if host_tag is None:
                return False
            _record_event(session, now, host, tag, 'removed', _state(host_tag), None, who)
            session.delete(host_tag)
            return True

        return self._run(work, write=True)

    def expire_tags(self, now: dt.datetime | None = None) -> list[dict]:
        """Delete every host tag whose expires_at has passed; returns the 'expired' events written."""
        now = utc(now) or utcnow()

        def work(session: Session) -> list[dict]:
            candidates = session.scalars(select(HostTag.host_id).where(HostTag.expires_at <= now).distinct()).all()
            # Lock in id order, so two expiring processes cannot deadlock on each other.
            locked = session.scalars(select(Host.id).where(Host.id.in_(candidates)).order_by(Host.id)
                                     .with_for_update()).all() if candidates else []
            return [_event_dict(event) for event in _expire_rows(session, _expired_rows(session, now, locked), now)]

        return self._run(work, write=True)

    def tag_events(self, host: str | None = None, tag: str | None = None, since: dt.datetime | None = None,
                   limit: int = 100) -> list[dict]:
        """The audit trail, newest first: [{id, at, host, tag, action, old, new, who}]."""
        query = select(TagEvent).order_by(TagEvent.at.desc(), TagEvent.id.desc()).limit(limit)
        if host is not None:
            query = query.where(TagEvent.host == host)
        if tag is not None:
            query = query.where(TagEvent.tag == tag)
        if since is not None:
            query = query.where(TagEvent.at >= utc(since))
        return self._run(lambda session: [_event_dict(event) for event in session.scalars(query)])

    # -- inventory ---------------------------------------------------------------------

    def inventory(self, now: dt.datetime | None = None, fact_paths: Iterable[str] | None = None) -> list[dict]:
        """Every host for the inventory plugin, in three set-based queries whatever the fleet size:
        [{name, address, port, attributes, tags: [sorted unexpired names], facts: {path: value}}].
        `fact_paths` (default SUMMARY_FACT_PATHS) are dotted paths into the latest facts; those in
        SUMMARY_FACT_PATHS are served from the per-host summary, others from the latest snapshot.
        Paths a host's facts do not have are left out."""
        now = utc(now) or utcnow()
        paths = list(SUMMARY_FACT_PATHS if fact_paths is None else fact_paths)
        full_paths = [path for path in paths if path not in SUMMARY_FACT_PATHS]

        def work(session: Session) -> list[dict]:
            connection = session.connection()  # Core rows: no ORM bookkeeping for 10,000s of them
            hosts = connection.execute(select(Host.id, Host.name, Host.address, Host.port, Host.attributes,
                                              Host.facts_summary).order_by(Host.name)).all()
            tags: dict[int, list[str]] = defaultdict(list)
            for host_id, tag_name in connection.execute(
                    select(HostTag.host_id, Tag.name).join(Tag, Tag.id == HostTag.tag_id).where(_live(now))):
                tags[host_id].append(tag_name)
            latest: dict[int, tuple[int, dict]] = {}
            if full_paths:
                for host_id, snapshot_id, facts in connection.execute(
                        select(FactSnapshot.host_id, FactSnapshot.id, FactSnapshot.facts)
                        .join(Host, and_(Host.id == FactSnapshot.host_id, Host.facts_at == FactSnapshot.collected_at))):
                    if host_id not in latest or snapshot_id > latest[host_id][0]:
                        latest[host_id] = (snapshot_id, facts)
            result = []
            for host in hosts:
                facts = dict(host.facts_summary or {})
                facts.update(pick_facts(latest.get(host.id, (None, {}))[1], full_paths))
                result.append(dict(name=host.name, address=host.address, port=host.port, attributes=host.attributes,
                                   tags=sorted(tags.get(host.id, ())),
                                   facts={path: facts[path] for path in paths if path in facts}))
            return result

        return self._run(work)

    # -- transactions ------------------------------------------------------------------

    def _run(self, work: Callable[[Session], T], write: bool = False) -> T:
        """Run `work` in one transaction (a write one if `write`), again from the start when it
        lost a race; a store that cannot be reached raises StoreUnavailable."""
        sessions = self._writer if write else self._reader
        attempt = 0
        while True:
            attempt += 1
            try:
                with sessions.begin() as session:
                    return work(session)
            except DBAPIError as error:
                if is_unreachable(error):
                    raise unavailable(self._engine.url, error) from None
                if attempt >= _RETRY_ATTEMPTS or not _lost_a_race(error):
                    raise
                log.debug('store transaction lost a race (%s); running it again (attempt %d)',
                         driver_reason(error), attempt + 1)
                time.sleep(random.uniform(0, 0.02 * attempt))


# -- helpers: validation ---------------------------------------------------------------

def _check_name(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value or len(value) > NAME_LENGTH:
        raise ValueError('%s must be a non-empty string of at most %d characters, got %r'
                         % (what if what == 'who' else what + ' name', NAME_LENGTH, value))


def _check_definition(name: str, definition: dict) -> None:
    kind = definition.get('kind')
    if kind is not None and kind not in TAG_KINDS:
        raise ValueError('tag %s: kind must be one of %s, got %r' % (name, ', '.join(TAG_KINDS), kind))
    dimension = definition.get('dimension')
    if dimension is not None and (not isinstance(dimension, str) or len(dimension) > DIMENSION_LENGTH):
        raise ValueError('tag %s: dimension must be a string of at most %d characters, got %r'
                         % (name, DIMENSION_LENGTH, dimension))
    description = definition.get('description')
    if description is not None and not isinstance(description, str):
        raise ValueError('tag %s: description must be a string, got %r' % (name, description))


def _check_computed(computed: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(computed, dict):
        raise ValueError('computed tags must be a mapping of tag name to evidence, got %s' % type(computed).__name__)
    for name in computed:
        _check_name(name, 'tag')
    return {name: as_json_value(evidence) for name, evidence in computed.items()}


def _lost_a_race(error: DBAPIError) -> bool:
    # SQLite never gets here: BEGIN IMMEDIATE queues its writers on the busy timeout.
    args = getattr(error.orig, 'args', ())
    return bool(args) and args[0] in _RETRY_MYSQL_CODES


# -- helpers: facts ----------------------------------------------------------------------

_MISSING = object()


def fact_value(facts: Any, path: str) -> Any:
    """The value at a dotted path ('server.version.full') in nested dicts, or _MISSING."""
    value = facts
    for key in path.split('.'):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def pick_facts(facts: Any, paths: Iterable[str]) -> dict[str, Any]:
    """{path: value} for the paths present in `facts` (a present null stays, a missing key is left out)."""
    picked = {}
    for path in paths:
        value = fact_value(facts, path)
        if value is not _MISSING:
            picked[path] = value
    return picked


# -- helpers: rows -----------------------------------------------------------------------

def _host(session: Session, name: str, lock: bool = False) -> Host | None:
    query = select(Host).where(Host.name == name)
    return session.scalar(query.with_for_update() if lock else query)


def _require_host(session: Session, name: str, lock: bool = False) -> Host:
    host = _host(session, name, lock)
    if host is None:
        raise UnknownHost(name)
    return host


def _host_for_write(session: Session, name: str, now: dt.datetime) -> Host:
    """The host's row, locked, created first if missing."""
    host = _host(session, name, lock=True)
    if host is None:
        host = Host(name=name, attributes={}, created_at=now, updated_at=now)
        session.add(host)
        session.flush()
    return host


def _host_dict(host: Host) -> dict:
    return dict(name=host.name, address=host.address, port=host.port, attributes=dict(host.attributes),
                created_at=host.created_at, updated_at=host.updated_at)


def _ensure_tags(session: Session, names: Iterable[str], kind: str, now: dt.datetime, dimension: str | None = None,
                 description: str | None = None) -> dict[str, Tag]:
    """Tag rows by name; missing ones are created with `kind` (a definition that already
    exists keeps its kind, and only gains a dimension or description it lacked)."""
    names = sorted(set(names))
    if not names:
        return {}
    tags = {tag.name: tag for tag in session.scalars(select(Tag).where(Tag.name.in_(names)))}
    for name in names:
        tag = tags.get(name)
        if tag is None:
            tag = tags[name] = Tag(name=name, kind=kind, dimension=dimension, description=description, created_at=now)
            session.add(tag)
        else:
            tag.dimension = tag.dimension or dimension
            tag.description = tag.description or description
    session.flush()
    return tags


def _host_tag_rows(session: Session, host_id: int) -> list[tuple[HostTag, str]]:
    return list(session.execute(select(HostTag, Tag.name).join(Tag, Tag.id == HostTag.tag_id)
                                .where(HostTag.host_id == host_id).order_by(Tag.name)))


def _live(now: dt.datetime):
    return or_(HostTag.expires_at.is_(None), HostTag.expires_at > now)


def _is_live(host_tag: HostTag, now: dt.datetime) -> bool:
    return host_tag.expires_at is None or host_tag.expires_at > now


def _expired_rows(session: Session, now: dt.datetime, host_ids: Iterable[int]) -> list[tuple[HostTag, str, str]]:
    """The expired tags of hosts whose rows this transaction has locked (so no other writer
    is changing their tags, and under READ COMMITTED this read sees the latest state)."""
    host_ids = list(host_ids)
    if not host_ids:
        return []
    return list(session.execute(
        select(HostTag, Host.name, Tag.name).join(Host, Host.id == HostTag.host_id).join(Tag, Tag.id == HostTag.tag_id)
        .where(HostTag.expires_at <= now, HostTag.host_id.in_(host_ids)).order_by(Host.name, Tag.name)))


def _expire_rows(session: Session, rows: list[tuple[HostTag, str, str]], now: dt.datetime) -> list[TagEvent]:
    """Delete expired host tags, one 'expired' event each. Runs before any change to a host's
    tags, so a lapsed tag is never silently overwritten."""
    events = []
    for host_tag, host_name, tag_name in rows:
        events.append(_record_event(session, now, host_name, tag_name, 'expired', _state(host_tag), None,
                                    EXPIRY_WHO))
        session.delete(host_tag)
    if rows:
        session.flush()
    return events


def _diff(current: dict[str, HostTag], computed: dict[str, Any]) -> dict[str, list[str]]:
    """The one definition of what a rule sync changes; sync and preview both use it."""
    by_rule = {name: host_tag for name, host_tag in current.items() if host_tag.source in RULE_SOURCES}
    kept = sorted(name for name in computed if name in current)
    return dict(
        added=sorted(name for name in computed if name not in current),
        removed=sorted(name for name in by_rule if name not in computed),
        kept=kept,
        updated=[name for name in kept if name in by_rule and by_rule[name].evidence != computed[name]],
    )


def _state(host_tag: HostTag) -> dict:
    """A host tag as the audit trail records it (old/new of an event)."""
    expires_at = utc(host_tag.expires_at)
    return dict(source=host_tag.source, expires_at=expires_at.isoformat() if expires_at else None,
                evidence=host_tag.evidence, set_by=host_tag.set_by)


def _record_event(session: Session, at: dt.datetime, host: str, tag: str, action: str, old: dict | None,
                  new: dict | None, who: str) -> TagEvent:
    event = TagEvent(at=at, host=host, tag=tag, action=action, old=old, new=new, who=who)
    session.add(event)
    return event


def _event_dict(event: TagEvent) -> dict:
    return dict(id=event.id, at=event.at, host=event.host, tag=event.tag, action=event.action, old=event.old,
                new=event.new, who=event.who)
