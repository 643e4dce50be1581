"""Tag definitions, the tags each host carries, and the tag trail that records every change.

A host tag comes from a rule (or a derived rule) evaluated on the host's facts, or is set by
hand (manual); a rule sync never removes a manual tag. A tag may expire: lapsed tags are
deleted, with an 'expired' event, before any change to the host's tags, so a lapsed tag is
never silently overwritten.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.host_rows import check_name, find_host, host_for_write, require_host
from dbfleet.store.models import TAG_KINDS, Host, HostTag, Tag, TagEvent, as_json_value
from dbfleet.store.transactions import Transactions

RULE_SOURCES = ('rule', 'derived')
EXPIRY_WHO = 'dbfleet:expiry'
DIMENSION_LENGTH = 64


class Tags:
    """store.tags: define tags, set and remove them on hosts, sync rule tags, read the tag trail."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    # -- tag definitions ---------------------------------------------------------------

    def define(self, definitions: Iterable[dict]) -> None:
        """Create or update tag definitions by name: [{name, dimension, description, kind}].
        Keys left out keep their stored value (a new tag's kind defaults to 'rule')."""
        definitions = [dict(definition) for definition in definitions]
        for definition in definitions:
            check_name(definition.get('name'), 'tag')
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

        self._transactions.run(work, write=True)

    def list(self, now: dt.datetime | None = None) -> list[dict]:
        """Every tag definition with `hosts`, the number of hosts tagged (unexpired) now."""
        now = utc(now) or utcnow()

        def work(session: Session) -> list[dict]:
            counts = (select(HostTag.tag_id, func.count().label('hosts')).where(live(now))
                      .group_by(HostTag.tag_id).subquery())
            rows = session.execute(
                select(Tag.name, Tag.dimension, Tag.description, Tag.kind, func.coalesce(counts.c.hosts, 0))
                .outerjoin(counts, counts.c.tag_id == Tag.id).order_by(Tag.name))
            return [dict(name=name, dimension=dimension, description=description, kind=kind, hosts=int(hosts))
                    for name, dimension, description, kind, hosts in rows]

        return self._transactions.run(work)

    # -- host tags ---------------------------------------------------------------------

    def of_host(self, host: str, now: dt.datetime | None = None) -> dict[str, dict]:
        """The host's unexpired tags: {tag: {dimension, kind, source, since, expires_at, evidence, set_by}}."""
        now = utc(now) or utcnow()

        def work(session: Session) -> dict[str, dict]:
            host_id = require_host(session, host).id
            rows = session.execute(
                select(Tag.name, Tag.dimension, Tag.kind, HostTag.source, HostTag.since, HostTag.expires_at,
                       HostTag.evidence, HostTag.set_by)
                .join(Tag, Tag.id == HostTag.tag_id).where(HostTag.host_id == host_id, live(now))
                .order_by(Tag.name))
            return {row.name: dict(dimension=row.dimension, kind=row.kind, source=row.source, since=row.since,
                                   expires_at=row.expires_at, evidence=row.evidence, set_by=row.set_by)
                    for row in rows}

        return self._transactions.run(work)

    def sync_rules(self, host: str, computed: dict[str, Any], who: str,
                   now: dt.datetime | None = None) -> dict[str, list[str]]:
        """Make the host's rule and derived tags exactly `computed` ({tag: evidence} of the
        rules true now); manual tags are left alone. Returns the sorted names that were
        'added', 'removed', 'kept', and of those kept, 'updated' (evidence changed, which
        is logged but is not a change: changed == bool(added or removed)).
        A tag the host already carries manually counts as kept and stays manual."""
        now = utc(now) or utcnow()
        computed = _check_computed(computed)
        check_name(who, 'who')

        def work(session: Session) -> dict[str, list[str]]:
            row = require_host(session, host, lock=True)
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

        return self._transactions.run(work, write=True)

    def preview_rules(self, host: str, computed: dict[str, Any],
                      now: dt.datetime | None = None) -> dict[str, list[str]]:
        """What sync_rules would do, writing nothing (check mode). A host not in the
        store yet previews as having no tags: that is what the real run will find once
        facts.record has created it."""
        now = utc(now) or utcnow()
        computed = _check_computed(computed)

        def work(session: Session) -> dict[str, list[str]]:
            row = find_host(session, host)
            if row is None:
                return _diff({}, computed)
            current = {tag_name: host_tag for host_tag, tag_name in _host_tag_rows(session, row.id)
                       if _is_live(host_tag, now)}
            return _diff(current, computed)

        return self._transactions.run(work)

    def add(self, host: str, tag: str, who: str, expires_at: dt.datetime | None = None, evidence: Any = None,
            dimension: str | None = None, description: str | None = None) -> bool:
        """Tag a host by hand (creating the host and the tag definition if needed). A tag
        the host has from a rule becomes manual (rules no longer remove it). True if
        anything changed; re-adding the same manual tag with the same expiry and evidence
        is not a change."""
        check_name(host, 'host')
        check_name(tag, 'tag')
        check_name(who, 'who')
        _check_definition(tag, {'dimension': dimension, 'description': description})
        now = utcnow()
        expires_at = utc(expires_at)
        if expires_at is not None and expires_at <= now:
            raise ValueError('tag %s on %s would expire at %s, which is already past: give a future time'
                             % (tag, host, expires_at.isoformat()))
        evidence = as_json_value(evidence)

        def work(session: Session) -> bool:
            row = host_for_write(session, host, now)
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

        return self._transactions.run(work, write=True)

    def remove(self, host: str, tag: str, who: str) -> bool:
        """Take a tag off a host, whatever set it (a rule that is still true puts it back at
        its next sync). False when the host did not have it, also when no such tag was ever
        defined: 'absent' is already true, as Ansible's state=absent expects."""
        check_name(who, 'who')

        def work(session: Session) -> bool:
            now = utcnow()
            row = require_host(session, host, lock=True)
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

        return self._transactions.run(work, write=True)

    def expire(self, now: dt.datetime | None = None) -> list[dict]:
        """Delete every host tag whose expires_at has passed; returns the 'expired' events written."""
        now = utc(now) or utcnow()

        def work(session: Session) -> list[dict]:
            candidates = session.scalars(select(HostTag.host_id).where(HostTag.expires_at <= now).distinct()).all()
            # Lock in id order, so two expiring processes cannot deadlock on each other.
            locked = session.scalars(select(Host.id).where(Host.id.in_(candidates)).order_by(Host.id)
                                     .with_for_update()).all() if candidates else []
            return [_event_dict(event) for event in _expire_rows(session, _expired_rows(session, now, locked), now)]

        return self._transactions.run(work, write=True)

    def events(self, host: str | None = None, tag: str | None = None, since: dt.datetime | None = None,
               limit: int = 100) -> list[dict]:
        """The tag trail, newest first: [{id, at, host, tag, action, old, new, who}]."""
        query = select(TagEvent).order_by(TagEvent.at.desc(), TagEvent.id.desc()).limit(limit)
        if host is not None:
            query = query.where(TagEvent.host == host)
        if tag is not None:
            query = query.where(TagEvent.tag == tag)
        if since is not None:
            query = query.where(TagEvent.at >= utc(since))
        return self._transactions.run(lambda session: [_event_dict(event) for event in session.scalars(query)])


def live(now: dt.datetime):
    """The condition a host tag that has not expired at `now` meets."""
    return or_(HostTag.expires_at.is_(None), HostTag.expires_at > now)


def drop_host_tags(session: Session, host: Host, now: dt.datetime, who: str) -> None:
    """Log the end of every tag of a host about to be deleted (its locked row): lapsed ones as
    'expired', the others as 'removed' by `who`. The rows go with the host (cascade)."""
    _expire_rows(session, _expired_rows(session, now, [host.id]), now)
    for host_tag, tag_name in _host_tag_rows(session, host.id):
        _record_event(session, now, host.name, tag_name, 'removed', _state(host_tag), None, who)


# -- helpers: validation ---------------------------------------------------------------

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
        check_name(name, 'tag')
    return {name: as_json_value(evidence) for name, evidence in computed.items()}


# -- helpers: rows -----------------------------------------------------------------------

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
    """A host tag as the tag trail records it (old/new of an event)."""
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
