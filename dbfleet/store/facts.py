"""Fact snapshots: what the mysql_facts module found on a host, kept as a short history.

The newest snapshot's most used paths are also copied into the host's row (facts_summary),
so the inventory serves them without reading snapshots.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.host_rows import check_name, host_for_write, require_host
from dbfleet.store.models import FactSnapshot, as_json_value
from dbfleet.store.transactions import Transactions

DEFAULT_KEEP_SNAPSHOTS = 50
# Copied into hosts.facts_summary by record, so the inventory can serve these paths
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


class Facts:
    """store.facts: record a host's facts, read the latest or the history."""

    def __init__(self, transactions: Transactions, keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS):
        if keep_snapshots < 1:
            raise ValueError('keep_snapshots must be at least 1 (the latest snapshot), got %r' % (keep_snapshots,))
        self._transactions = transactions
        self.keep_snapshots = keep_snapshots

    def record(self, host: str, facts: dict, collected_at: dt.datetime | None = None) -> int:
        """Store a snapshot of a host's `ansible_facts.mysql` (creating the host if needed),
        keep the newest `keep_snapshots` per host, and return the snapshot's id."""
        check_name(host, 'host')
        if not isinstance(facts, dict):
            raise ValueError('facts of host %s must be a mapping, got %s' % (host, type(facts).__name__))
        collected_at = utc(collected_at) or utcnow()
        facts = as_json_value(facts)
        summary = pick_facts(facts, SUMMARY_FACT_PATHS)

        def work(session: Session) -> int:
            row = host_for_write(session, host, utcnow())
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

        return self._transactions.run(work, write=True)

    def latest(self, host: str) -> dict | None:
        """{collected_at, facts} of the newest snapshot, None when none was recorded yet."""
        history = self.history(host, limit=1)
        return history[0] if history else None

    def history(self, host: str, limit: int = 20) -> list[dict]:
        """Up to `limit` snapshots, newest first: [{collected_at, facts}]."""
        def work(session: Session) -> list[dict]:
            host_id = require_host(session, host).id
            rows = session.execute(
                select(FactSnapshot.collected_at, FactSnapshot.facts).where(FactSnapshot.host_id == host_id)
                .order_by(FactSnapshot.collected_at.desc(), FactSnapshot.id.desc()).limit(limit))
            return [{'collected_at': row.collected_at, 'facts': row.facts} for row in rows]

        return self._transactions.run(work)


_MISSING = object()


def _fact_value(facts: Any, path: str) -> Any:
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
        value = _fact_value(facts, path)
        if value is not _MISSING:
            picked[path] = value
    return picked
