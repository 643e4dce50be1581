"""Maintenance windows in the store (`store.windows`), and the one schedule
column they add: window_policy, what a schedule's slot inside a window does (skip or defer).

Checking a window's start, time zone and tags is the caller's job (runner_service.schedules.windows).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dbfleet.clock import utcnow
from dbfleet.store.errors import StoreError
from dbfleet.store.models import WINDOW_KINDS, MaintenanceWindow, Schedule
from dbfleet.store.schedules import UnknownSchedule
from dbfleet.store.transactions import Transactions

WINDOW_FIELDS = ('name', 'kind', 'start', 'duration_seconds', 'timezone', 'tags', 'description', 'created_by')
WINDOW_POLICIES = ('skip', 'defer')
_COLUMNS = tuple(column.key for column in MaintenanceWindow.__table__.columns)


class UnknownWindow(StoreError, LookupError):
    def __init__(self, ref: str):
        super().__init__('no maintenance window %r in the store: GET /api/v1/windows lists them' % ref)
        self.ref = ref


class Windows:
    """store.windows: maintenance windows, and the policy a schedule follows inside one."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def create(self, **fields: Any) -> dict:
        unknown = sorted(set(fields) - set(WINDOW_FIELDS))
        if unknown:
            raise ValueError('window: unknown field %s' % ', '.join(unknown))
        if fields.get('kind') not in WINDOW_KINDS:
            raise ValueError('window: kind must be one of %s, got %r' % (', '.join(WINDOW_KINDS), fields.get('kind')))

        def work(session: Session) -> dict:
            if session.scalar(select(MaintenanceWindow.id).where(MaintenanceWindow.name == fields['name'])) is not None:
                raise ValueError('a maintenance window named %r already exists: pick another name, or delete that '
                                 'one first' % fields['name'])
            window = MaintenanceWindow(id=uuid.uuid4().hex, created_at=utcnow(), **fields)
            session.add(window)
            session.flush()
            return _dict(window)

        return self._transactions.run(work, write=True)

    def get(self, ref: str) -> dict:
        """By id or by name; UnknownWindow when neither matches."""
        return self._transactions.run(lambda session: _dict(_find(session, ref)))

    def list(self) -> list[dict]:
        return self._transactions.run(lambda session: [_dict(window) for window in
                                          session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.name))])

    def delete(self, ref: str) -> dict:
        def work(session: Session) -> dict:
            window = _find(session, ref, lock=True)
            gone = _dict(window)
            session.delete(window)
            return gone

        return self._transactions.run(work, write=True)

    def set_policy(self, schedule_id: str, policy: str) -> None:
        """What the schedule's slots inside a maintenance window do: 'skip' or 'defer'."""
        if policy not in WINDOW_POLICIES:
            raise ValueError('window_policy must be one of %s, got %r' % (', '.join(WINDOW_POLICIES), policy))

        def work(session: Session) -> None:
            result = session.execute(update(Schedule).where(Schedule.id == schedule_id)
                                     .values(window_policy=policy, updated_at=utcnow()))
            if result.rowcount == 0:
                raise UnknownSchedule(schedule_id)

        self._transactions.run(work, write=True)


def _find(session: Session, ref: str, lock: bool = False) -> MaintenanceWindow:
    if not isinstance(ref, str) or not ref:
        raise UnknownWindow(str(ref))
    query = select(MaintenanceWindow).where((MaintenanceWindow.id == ref) | (MaintenanceWindow.name == ref))
    if lock:
        query = query.with_for_update()
    window = session.scalar(query)
    if window is None:
        raise UnknownWindow(ref)
    return window


def _dict(window: MaintenanceWindow) -> dict:
    return {name: getattr(window, name) for name in _COLUMNS}
