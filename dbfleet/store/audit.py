"""The audit log: who did what to which object through the API or the CLI (launch, cancel,
token.create, ...), kept apart from the tag trail, which records tag changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.checks import check_limit, check_text
from dbfleet.store.models import NAME_LENGTH, AuditEntry
from dbfleet.store.transactions import Transactions

ACTION_LENGTH = 32


class Audit:
    """store.audit: record an action, read the log."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def record(self, actor: str, action: str, target: str, detail: Any = None) -> None:
        """Record that `actor` (a token's name) did `action` (launch, cancel, relaunch, ...) to `target`."""
        check_text(actor, 'actor', NAME_LENGTH)
        check_text(action, 'action', ACTION_LENGTH)
        check_text(target, 'target', NAME_LENGTH)

        def work(session: Session) -> None:
            session.add(AuditEntry(at=utcnow(), actor=actor, action=action, target=target, detail=detail))

        self._transactions.run(work, write=True)

    def list(self, limit: int = 100, actor: str | None = None, action: str | None = None,
             target: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
             before: int | None = None) -> list[dict]:
        """The audit log, newest first (by the order entries were recorded): [{id, at, actor,
        action, target, detail}]. Filters: exact actor, action (or a prefix ending in '.', e.g.
        'token.'), target; at >= since, at < until; id < before (the last id of a page, to read
        the next one)."""
        check_limit(limit)
        if before is not None and (not isinstance(before, int) or isinstance(before, bool) or before < 1):
            raise ValueError('before must be a positive entry id, got %r' % (before,))
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        if action is not None:
            query = query.where(AuditEntry.action.startswith(action, autoescape=True) if action.endswith('.')
                                else AuditEntry.action == action)
        if target is not None:
            query = query.where(AuditEntry.target == target)
        if since is not None:
            query = query.where(AuditEntry.at >= utc(since))
        if until is not None:
            query = query.where(AuditEntry.at < utc(until))
        if before is not None:
            query = query.where(AuditEntry.id < before)
        return self._transactions.run(lambda session: [
            dict(id=entry.id, at=entry.at, actor=entry.actor, action=entry.action, target=entry.target,
                 detail=entry.detail) for entry in session.scalars(query)])

