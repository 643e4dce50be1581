"""Schedules and their slots in the store (`store.schedules`).

The scheduler works with three calls: `due(now)`, `record_slot(...)` (one record per
slot: the first writer wins, later ones get the record that is there; `claimed_by` says who took
the slot, the platform or crontab) and `advance(...)`, a
compare-and-set of next_fire_at, so two schedulers never move a schedule past a slot twice.
Checking triggers and job templates is the caller's job (runner_service.schedules.service).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.errors import StoreError
from dbfleet.store.models import SLOT_CLAIMANTS, Schedule, ScheduleSlot
from dbfleet.store.transactions import Transactions

SCHEDULE_FIELDS = ('name', 'kind', 'expression', 'timezone', 'job', 'secret_vars', 'overlap', 'misfire_grace_seconds',
                   'catch_up', 'jitter_seconds', 'paused', 'next_fire_at', 'source', 'created_by', 'notify')
UPDATABLE = tuple(field for field in SCHEDULE_FIELDS if field not in ('created_by',))
_COLUMNS = tuple(column.key for column in Schedule.__table__.columns if column.key != 'source_host')


def host_of_source(source: Any) -> str | None:
    """The host a schedule's source names (crontab entries), stored beside it for lookups."""
    host = source.get('host') if isinstance(source, dict) else None
    return host[:255] if isinstance(host, str) else None


class UnknownSchedule(StoreError, LookupError):
    def __init__(self, ref: str):
        super().__init__('no schedule %r in the store: `dbfleet schedules list` shows them' % ref)
        self.ref = ref


class Schedules:
    """store.schedules: schedules, and the record of each of their slots."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def create(self, **fields: Any) -> dict:
        unknown = sorted(set(fields) - set(SCHEDULE_FIELDS))
        if unknown:
            raise ValueError('schedule: unknown field %s' % ', '.join(unknown))

        def work(session: Session) -> dict:
            if session.scalar(select(Schedule.id).where(Schedule.name == fields['name'])) is not None:
                raise ValueError('a schedule named %r already exists: pick another name or change that one'
                                 % fields['name'])
            now = utcnow()
            schedule = Schedule(id=uuid.uuid4().hex, created_at=now, updated_at=now, last_fire_at=None,
                                last_job_id=None, source_host=host_of_source(fields.get('source')), **fields)
            session.add(schedule)
            session.flush()
            return _dict(schedule)

        return self._transactions.run(work, write=True)

    def get(self, ref: str) -> dict:
        """By id or by name; UnknownSchedule when neither matches."""
        def work(session: Session) -> dict:
            return _dict(_find(session, ref))

        return self._transactions.run(work)

    def list(self, source_host: str | None = None) -> list[dict]:
        """Every schedule by name; with source_host, those whose source names that host."""
        query = select(Schedule).order_by(Schedule.name)
        if source_host is not None:
            query = query.where(Schedule.source_host == source_host)
        return self._transactions.run(lambda session: [_dict(schedule) for schedule in session.scalars(query)])

    def update(self, ref: str, **fields: Any) -> dict:
        unknown = sorted(set(fields) - set(UPDATABLE))
        if unknown:
            raise ValueError('schedule: cannot change %s' % ', '.join(unknown))

        def work(session: Session) -> dict:
            schedule = _find(session, ref, lock=True)
            if 'name' in fields and fields['name'] != schedule.name and session.scalar(
                    select(Schedule.id).where(Schedule.name == fields['name'])) is not None:
                raise ValueError('a schedule named %r already exists' % fields['name'])
            for name, value in fields.items():
                setattr(schedule, name, value)
            if 'source' in fields:
                schedule.source_host = host_of_source(fields['source'])
            schedule.updated_at = utcnow()
            session.flush()
            return _dict(schedule)

        return self._transactions.run(work, write=True)

    def delete(self, ref: str) -> dict:
        def work(session: Session) -> dict:
            schedule = _find(session, ref, lock=True)
            gone = _dict(schedule)
            session.delete(schedule)
            return gone

        return self._transactions.run(work, write=True)

    # -- for the scheduler -----------------------------------------------------------------

    def due(self, now: dt.datetime) -> list[dict]:
        query = (select(Schedule).where(Schedule.paused.is_(False), Schedule.next_fire_at <= utc(now))
                 .order_by(Schedule.next_fire_at, Schedule.id))
        return self._transactions.run(lambda session: [_dict(schedule) for schedule in session.scalars(query)])

    def next_due_at(self) -> dt.datetime | None:
        """The earliest next_fire_at of an active schedule (the scheduler sleeps until then)."""
        return self._transactions.run(lambda session: session.scalar(
            select(func.min(Schedule.next_fire_at)).where(Schedule.paused.is_(False))))

    def advance(self, schedule_id: str, expected: dt.datetime, to: dt.datetime | None,
                fired_job: str | None = None, fired_at: dt.datetime | None = None,
                updated_at: dt.datetime | None = None) -> bool:
        """Move next_fire_at from `expected` to `to` (None: no more fires); False when another
        scheduler moved it first, or (given the schedule's updated_at as read) when the schedule
        was changed since: the next fire an edit stored is never overwritten by one computed
        from the trigger it replaced."""
        values: dict[str, Any] = {'next_fire_at': to}
        if fired_job is not None:
            values.update(last_job_id=fired_job, last_fire_at=fired_at)
        conditions = [Schedule.id == schedule_id, Schedule.next_fire_at == utc(expected)]
        if updated_at is not None:
            conditions.append(Schedule.updated_at == utc(updated_at))

        def work(session: Session) -> bool:
            result = session.execute(update(Schedule).where(*conditions).values(**values))
            return result.rowcount > 0

        return self._transactions.run(work, write=True)

    def record_slot(self, schedule_id: str, slot_at: dt.datetime, outcome: str, claimed_by: str | None,
                    job_id: str | None = None, reason: str | None = None) -> tuple[dict, bool]:
        """(the slot's record, whether this call wrote it). The first record of a slot stays.
        claimed_by: who took the slot (SLOT_CLAIMANTS), None exactly when it was missed."""
        if claimed_by not in SLOT_CLAIMANTS + (None,) or (claimed_by is None) != (outcome == 'missed'):
            raise ValueError('slot: claimed_by %r does not go with outcome %r' % (claimed_by, outcome))

        def work(session: Session) -> tuple[dict, bool]:
            existing = session.get(ScheduleSlot, (schedule_id, utc(slot_at)))
            if existing is not None:
                return _slot(existing), False
            slot = ScheduleSlot(schedule_id=schedule_id, slot_at=utc(slot_at), outcome=outcome, job_id=job_id,
                                reason=reason, claimed_by=claimed_by, recorded_at=utcnow())
            session.add(slot)
            session.flush()  # a racing scheduler's insert fails here, and the transaction runs again
            return _slot(slot), True

        return self._transactions.run(work, write=True)

    def settle_claim(self, schedule_id: str, slot_at: dt.datetime, outcome: str, job_id: str | None,
                     reason: str | None = None) -> dict:
        """Settle a slot the platform claimed before launching (is_launching): fired with its job,
        or skipped. A slot no longer launching (settled meanwhile) is returned as it is."""
        if outcome not in ('fired', 'skipped') or (outcome == 'fired') != (job_id is not None):
            raise ValueError('slot: a claim settles as fired with a job or skipped without one')

        def work(session: Session) -> dict:
            slot = session.get(ScheduleSlot, (schedule_id, utc(slot_at)), with_for_update=True)
            if slot is None:
                raise ValueError('slot %s of schedule %s was never claimed' % (slot_at.isoformat(), schedule_id))
            if is_launching(_slot(slot)):
                slot.outcome, slot.job_id, slot.reason = outcome, job_id, reason
                session.flush()
            return _slot(slot)

        return self._transactions.run(work, write=True)

    def slot(self, schedule_id: str, slot_at: dt.datetime) -> dict | None:
        def work(session: Session) -> dict | None:
            slot = session.get(ScheduleSlot, (schedule_id, utc(slot_at)))
            return _slot(slot) if slot is not None else None

        return self._transactions.run(work)

    def slots(self, schedule_id: str, limit: int = 50) -> list[dict]:
        """The schedule's most recent slot records, newest first."""
        query = (select(ScheduleSlot).where(ScheduleSlot.schedule_id == schedule_id)
                 .order_by(ScheduleSlot.slot_at.desc()).limit(limit))
        return self._transactions.run(lambda session: [_slot(slot) for slot in session.scalars(query)])


def _find(session: Session, ref: str, lock: bool = False) -> Schedule:
    if not isinstance(ref, str) or not ref:
        raise UnknownSchedule(str(ref))
    query = select(Schedule).where((Schedule.id == ref) | (Schedule.name == ref))
    if lock:
        query = query.with_for_update()
    schedule = session.scalar(query)
    if schedule is None:
        raise UnknownSchedule(ref)
    return schedule


def _dict(schedule: Schedule) -> dict:
    return {name: getattr(schedule, name) for name in _COLUMNS}


def is_launching(slot: dict) -> bool:
    """A slot the platform claimed and has not settled yet: its launch is under way (or its
    scheduler died before settling it, and the next pass launches it again, idempotently)."""
    return slot['claimed_by'] == 'platform' and slot['outcome'] == 'fired' and slot['job_id'] is None


def _slot(slot: ScheduleSlot) -> dict:
    return dict(schedule_id=slot.schedule_id, slot_at=slot.slot_at, outcome=slot.outcome, job_id=slot.job_id,
                reason=slot.reason, claimed_by=slot.claimed_by, recorded_at=slot.recorded_at)
