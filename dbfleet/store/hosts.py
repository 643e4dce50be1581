"""Hosts: the database servers dbfleet knows, and the inventory view of them (each host with
its unexpired tags and chosen facts) that the `fleet` inventory plugin and the planner read."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Iterable

from sqlalchemy import and_, delete, select
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.facts import SUMMARY_FACT_PATHS, pick_facts
from dbfleet.store.host_rows import check_name, find_host, host_for_write
from dbfleet.store.models import FactSnapshot, Host, HostTag, Tag, as_json_value
from dbfleet.store.tags import drop_host_tags, live
from dbfleet.store.transactions import Transactions


class Hosts:
    """store.hosts: create, read and delete hosts; the whole fleet for the inventory."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def upsert(self, name: str, address: str | None = None, port: int | None = None,
               attributes: dict | None = None) -> dict:
        """Create or update a host. address/port None leave them as they are; attributes
        are merged into the stored ones, a key set to None is deleted."""
        check_name(name, 'host')
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise ValueError('port of host %s must be an integer from 1 to 65535, got %r' % (name, port))
        if attributes is not None and not isinstance(attributes, dict):
            raise ValueError('attributes of host %s must be a mapping, got %s' % (name, type(attributes).__name__))
        changes = as_json_value(attributes or {})

        def work(session: Session) -> dict:
            now = utcnow()
            host = host_for_write(session, name, now)
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

        return self._transactions.run(work, write=True)

    def get(self, name: str) -> dict | None:
        """{name, address, port, attributes, created_at, updated_at}, or None."""
        def work(session: Session) -> dict | None:
            host = find_host(session, name)
            return _host_dict(host) if host else None

        return self._transactions.run(work)

    def list(self) -> list[dict]:
        return self._transactions.run(lambda session: [_host_dict(host)
                                                       for host in session.scalars(select(Host).order_by(Host.name))])

    def delete(self, name: str, who: str = 'dbfleet') -> bool:
        """Delete a host with its facts and tags (each tag it had gets a 'removed' event).
        False when there was no such host."""
        def work(session: Session) -> bool:
            host = find_host(session, name, lock=True)
            if host is None:
                return False
            drop_host_tags(session, host, utcnow(), who)
            session.execute(delete(Host).where(Host.id == host.id))  # the database cascades to facts and tags
            return True

        return self._transactions.run(work, write=True)

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
                    select(HostTag.host_id, Tag.name).join(Tag, Tag.id == HostTag.tag_id).where(live(now))):
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

        return self._transactions.run(work)


def _host_dict(host: Host) -> dict:
    return dict(name=host.name, address=host.address, port=host.port, attributes=dict(host.attributes),
                created_at=host.created_at, updated_at=host.updated_at)
