"""Notifiers and the notification outbox in the store (`store.notifications`).

A notification is written once (its `key` says what it is about, so two watchers store it once)
together with one delivery row per notifier it goes to, in one transaction, before anything is
sent. A sender claims a due delivery with a conditional UPDATE (pending and due, or a claim that
expired: its sender died mid-send), so two senders never send the same delivery at once; it then
records the attempt: delivered, or pending again with the next attempt's time, or failed for
good. Notifier secrets arrive sealed (runner_service.notify); nothing here sees one in the clear.
Rows come out as plain dicts; bad input is a ValueError, an unknown notifier UnknownNotifier.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbfleet.clock import utcnow
from dbfleet.store.checks import check_datetime, check_limit, check_text
from dbfleet.store.errors import StoreError
from dbfleet.store.models import (NAME_LENGTH, Backup, NOTIFIER_KINDS, Job, Notification, NotificationDelivery, Notifier,
                                  CronRun, NotifyCursor, Schedule, ScheduleSlot)
from dbfleet.store.transactions import Transactions

_NOTIFIER_COLUMNS = tuple(column.key for column in Notifier.__table__.columns)
_NOTIFICATION_COLUMNS = tuple(column.key for column in Notification.__table__.columns)
_DELIVERY_COLUMNS = tuple(column.key for column in NotificationDelivery.__table__.columns)
ENDED = ('successful', 'failed', 'timed_out', 'worker_lost')
PRUNE_BATCH = 500  # notifications deleted per transaction: a sender waits for one batch at most
MAX_LOG = 20  # attempts kept per delivery: the first ones and the latest are what people read


class UnknownNotifier(StoreError, LookupError):
    def __init__(self, name: str):
        super().__init__('no notifier %r in the store: `dbfleet notifiers list` shows them' % (str(name)[:200],))
        self.name = name


class Notifications:
    """store.notifications: notifiers by name, notifications and their deliveries."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    # -- notifiers -----------------------------------------------------------------------

    def create_notifier(self, name: str, kind: str, public: dict, events: list[str], sealed: str | None,
                        created_by: str | None = None) -> dict:
        """ValueError when the name is taken (also when processes race to create it)."""
        check_text(name, 'notifier name', NAME_LENGTH)
        if kind not in NOTIFIER_KINDS:
            raise ValueError('notifier kind must be one of %s, got %r' % (', '.join(NOTIFIER_KINDS), kind))
        if sealed is not None:
            check_text(sealed, 'notifier sealed secret')

        def work(session: Session) -> dict:
            if session.scalar(select(Notifier.id).where(Notifier.name == name)) is not None:
                raise _taken(name)
            notifier = Notifier(name=name, kind=kind, public=public, events=list(events), sealed=sealed,
                                created_at=utcnow(), created_by=created_by)
            session.add(notifier)
            try:
                session.flush()
            except IntegrityError:
                raise _taken(name) from None
            return _row(notifier, _NOTIFIER_COLUMNS)

        return self._transactions.run(work, write=True)

    def notifier(self, name: str) -> dict:
        return self._transactions.run(lambda session: _row(_find(session, name), _NOTIFIER_COLUMNS))

    def notifiers(self) -> list[dict]:
        query = select(Notifier).order_by(Notifier.name)
        return self._transactions.run(lambda session: [_row(n, _NOTIFIER_COLUMNS) for n in session.scalars(query)])

    def delete_notifier(self, name: str) -> dict:
        def work(session: Session) -> dict:
            notifier = _find(session, name, lock=True)
            gone = _row(notifier, _NOTIFIER_COLUMNS)
            session.delete(notifier)
            return gone

        return self._transactions.run(work, write=True)

    # -- notifications -------------------------------------------------------------------

    def record(self, key: str, event: str, subject: str, payload: dict, notifiers: list[str],
               template: str | None = None, schedule: str | None = None, job_id: str | None = None,
               silenced_by: str | None = None, now: dt.datetime | None = None) -> dict | None:
        """Store a notification and its deliveries (silenced ones already settled); None when one
        with this key is stored already."""
        check_text(key, 'notification key', NAME_LENGTH)
        now = check_datetime(now or utcnow(), 'now')

        def work(session: Session) -> dict | None:
            if session.scalar(select(Notification.id).where(Notification.key == key)) is not None:
                return None
            notification = Notification(key=key, event=event, subject=subject, payload=payload, template=template,
                                        schedule=schedule, job_id=job_id, silenced_by=silenced_by, created_at=now)
            session.add(notification)
            try:
                session.flush()
            except IntegrityError:
                return None
            for name in dict.fromkeys(notifiers):
                session.add(NotificationDelivery(
                    notification_id=notification.id, notifier=name, status='silenced' if silenced_by else 'pending',
                    attempts=0, next_attempt_at=None if silenced_by else now, attempt_log=[], created_at=now))
            return _row(notification, _NOTIFICATION_COLUMNS)

        try:
            return self._transactions.run(work, write=True)
        except IntegrityError:  # another watcher stored the same key between our read and write
            return None

    def list(self, limit: int = 100, notifier: str | None = None, event: str | None = None,
             notification_id: int | None = None, before: int | None = None) -> list[dict]:
        """Notifications newest first, each with its deliveries (only those to `notifier` if given);
        `before`: only those older than that notification id (the next page)."""
        check_limit(limit)
        if before is not None and (isinstance(before, bool) or not isinstance(before, int) or before < 1):
            raise ValueError('before must be a notification id (a positive integer), got %r' % (before,))

        def work(session: Session) -> list[dict]:
            query = select(Notification).order_by(Notification.id.desc()).limit(limit)
            if event is not None:
                query = query.where(Notification.event == event)
            if notification_id is not None:
                query = query.where(Notification.id == notification_id)
            if before is not None:
                query = query.where(Notification.id < before)
            if notifier is not None:
                query = query.where(Notification.id.in_(
                    select(NotificationDelivery.notification_id).where(NotificationDelivery.notifier == notifier)))
            found = [_row(n, _NOTIFICATION_COLUMNS) for n in session.scalars(query)]
            deliveries = select(NotificationDelivery).where(
                NotificationDelivery.notification_id.in_([n['id'] for n in found])).order_by(NotificationDelivery.id)
            if notifier is not None:
                deliveries = deliveries.where(NotificationDelivery.notifier == notifier)
            by_notification: dict[int, list[dict]] = {}
            for delivery in session.scalars(deliveries):
                by_notification.setdefault(delivery.notification_id, []).append(_row(delivery, _DELIVERY_COLUMNS))
            for item in found:
                item['deliveries'] = by_notification.get(item['id'], [])
            return found

        return self._transactions.run(work)

    def previous_end(self, template: str, before: dt.datetime, job_id: str) -> str | None:
        """The status of the latest job of `template` that ended before `before` (not `job_id`)."""
        query = (select(Job.status).where(Job.template == template, Job.status.in_(ENDED), Job.id != job_id,
                                          Job.finished_at <= before)
                 .order_by(Job.finished_at.desc()).limit(1))
        return self._transactions.run(lambda session: session.scalar(query))

    def ended_jobs(self, since: dt.datetime, limit: int = 500) -> list[dict]:
        """Jobs that ended at or after `since`, oldest end first."""
        query = (select(Job.id, Job.status, Job.finished_at, Job.template, Job.playbook, Job.idempotency_key,
                        Job.status_reason, Job.attempt, Job.inventory, Job.inventory_kind, Job.plan)
                 .where(Job.status.in_(ENDED), Job.finished_at >= since)
                 .order_by(Job.finished_at, Job.id).limit(limit))
        return self._transactions.run(lambda session: [dict(row._mapping) for row in session.execute(query)])

    def running_planned(self) -> list[dict]:
        """Running jobs with a plan (few: they hold workers), as ended_jobs gives them, with their plan."""
        query = (select(Job.id, Job.status, Job.finished_at, Job.template, Job.playbook, Job.idempotency_key,
                        Job.status_reason, Job.attempt, Job.inventory, Job.inventory_kind, Job.plan)
                 .where(Job.status == 'running', Job.plan.is_not(None)))
        return self._transactions.run(lambda session: [dict(row._mapping) for row in session.execute(query)])

    def oldest_queued(self, queue: str) -> dict | None:
        """The job that has waited longest in `queue` (id, created_at, enqueued_at); None when none waits."""
        query = (select(Job.id, Job.created_at, Job.enqueued_at).where(Job.status == 'queued', Job.queue == queue)
                 .order_by(Job.created_at, Job.id).limit(1))
        return self._transactions.run(lambda session: next((dict(row._mapping) for row in session.execute(query)),
                                                           None))

    def unfired_slots(self, since: dt.datetime, limit: int = 500) -> list[dict]:
        """Schedule slots recorded missed or skipped at or after `since`, oldest first, with their
        schedule's name, launch (`job`: its template), source host (a crontab entry's) and subscriptions."""
        query = (select(ScheduleSlot.schedule_id, ScheduleSlot.slot_at, ScheduleSlot.outcome, ScheduleSlot.reason,
                        ScheduleSlot.recorded_at, Schedule.name, Schedule.job, Schedule.source_host, Schedule.notify)
                 .join(Schedule, Schedule.id == ScheduleSlot.schedule_id)
                 .where(ScheduleSlot.outcome.in_(('missed', 'skipped')), ScheduleSlot.recorded_at >= since)
                 .order_by(ScheduleSlot.recorded_at).limit(limit))
        return self._transactions.run(lambda session: [dict(row._mapping) for row in session.execute(query)])

    def failed_cron_runs(self, since: dt.datetime, limit: int = 500) -> list[dict]:
        """Runs of bridged crontab entries that failed, ended at or after `since`, oldest first,
        with their schedule's name and launch."""
        query = (select(CronRun.id, CronRun.schedule_id, CronRun.host, CronRun.slot_at, CronRun.started_at,
                        CronRun.finished_at, CronRun.exit_code, CronRun.duration_seconds, Schedule.name, Schedule.job)
                 .join(Schedule, Schedule.id == CronRun.schedule_id)
                 .where(CronRun.status == 'failed', CronRun.finished_at >= since)
                 .order_by(CronRun.finished_at).limit(limit))
        return self._transactions.run(lambda session: [dict(row._mapping) for row in session.execute(query)])

    def recorded_backups(self, since: dt.datetime, limit: int = 500) -> list[dict]:
        """Successful backups recorded at or after `since`, oldest first."""
        query = (select(Backup.id, Backup.host, Backup.method, Backup.started_at, Backup.duration_seconds,
                        Backup.bytes, Backup.created_at)
                 .where(Backup.status == 'ok', Backup.created_at >= since)
                 .order_by(Backup.created_at, Backup.id).limit(limit))
        return self._transactions.run(lambda session: [dict(row._mapping) for row in session.execute(query)])

    def backups_before(self, host: str, method: str, backup_id: int, last: int) -> list[dict]:
        """The host's `last` successful backups by `method` recorded before backup `backup_id`: its history."""
        query = (select(Backup.duration_seconds, Backup.bytes)
                 .where(Backup.host == host, Backup.method == method, Backup.status == 'ok', Backup.id < backup_id)
                 .order_by(Backup.id.desc()).limit(last))
        return self._transactions.run(lambda session: [dict(row._mapping) for row in session.execute(query)])

    # -- the watchers' cursors -----------------------------------------------------------

    def cursor(self, name: str) -> dt.datetime | None:
        return self._transactions.run(lambda session: session.scalar(
            select(NotifyCursor.position).where(NotifyCursor.name == name)))

    def move_cursor(self, name: str, position: dt.datetime) -> None:
        """Only forward: a slower watcher does not take another one's cursor back."""
        position = check_datetime(position, 'position')

        def work(session: Session) -> None:
            cursor = session.get(NotifyCursor, name, with_for_update=True)
            if cursor is None:
                session.add(NotifyCursor(name=name, position=position))
            elif cursor.position < position:
                cursor.position = position

        self._transactions.run(work, write=True)

    # -- deliveries ----------------------------------------------------------------------

    def due(self, now: dt.datetime, limit: int = 20) -> list[int]:
        """Ids of deliveries a sender may claim now: pending and due, or sending with an expired claim."""
        query = (select(NotificationDelivery.id)
                 .where(or_(and_(NotificationDelivery.status == 'pending', NotificationDelivery.next_attempt_at <= now),
                            and_(NotificationDelivery.status == 'sending', NotificationDelivery.claimed_until < now)))
                 .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id).limit(limit))
        return self._transactions.run(lambda session: list(session.scalars(query)))

    def claim(self, delivery_id: int, sender: str, now: dt.datetime, lease: dt.timedelta) -> dict | None:
        """The delivery with its notification, now this sender's until now + lease; None when
        another sender has it or it is no longer due."""
        def work(session: Session) -> dict | None:
            claimed = session.execute(
                update(NotificationDelivery)
                .where(NotificationDelivery.id == delivery_id,
                       or_(and_(NotificationDelivery.status == 'pending', NotificationDelivery.next_attempt_at <= now),
                           and_(NotificationDelivery.status == 'sending', NotificationDelivery.claimed_until < now)))
                .values(status='sending', claimed_by=sender, claimed_until=now + lease)
                .execution_options(synchronize_session=False))
            if claimed.rowcount != 1:
                return None
            delivery = session.get(NotificationDelivery, delivery_id)
            found = _row(delivery, _DELIVERY_COLUMNS)
            found['notification'] = _row(session.get(Notification, delivery.notification_id), _NOTIFICATION_COLUMNS)
            return found

        return self._transactions.run(work, write=True)

    def attempted(self, delivery_id: int, sender: str, now: dt.datetime, error: str | None,
                  next_attempt_at: dt.datetime | None) -> dict | None:
        """Record one attempt by the sender holding the claim: delivered (no error), pending again
        at next_attempt_at, or failed for good (an error and no next attempt). None: the claim was lost."""
        def work(session: Session) -> dict | None:
            delivery = session.get(NotificationDelivery, delivery_id, with_for_update=True)
            if delivery is None or delivery.status != 'sending' or delivery.claimed_by != sender:
                return None
            log = list(delivery.attempt_log or [])
            log.append({'at': now.isoformat(), 'sender': sender, 'ok': error is None, 'error': error})
            delivery.attempt_log = log[:MAX_LOG // 2] + log[-MAX_LOG // 2:] if len(log) > MAX_LOG else log
            delivery.attempts += 1
            delivery.last_error = error
            delivery.claimed_by = None
            delivery.claimed_until = None
            if error is None:
                delivery.status, delivery.delivered_at, delivery.next_attempt_at = 'delivered', now, None
            elif next_attempt_at is None:
                delivery.status, delivery.next_attempt_at = 'failed', None
            else:
                delivery.status, delivery.next_attempt_at = 'pending', next_attempt_at
            return _row(delivery, _DELIVERY_COLUMNS)

        return self._transactions.run(work, write=True)

    def prune(self, created_before: dt.datetime, batch: int = PRUNE_BATCH) -> int:
        """Delete the notifications stored before `created_before` with their deliveries, in
        batches: only those whose every delivery is over (delivered, failed or silenced) - one
        still pending or being sent stays until it is. The number deleted."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError('batch must be a positive integer, got %r' % (batch,))
        before = check_datetime(created_before, 'created_before')
        open_ = select(NotificationDelivery.notification_id).where(
            NotificationDelivery.status.in_(('pending', 'sending')))

        def delete_batch(session: Session) -> int:
            ids = list(session.scalars(select(Notification.id).where(
                Notification.created_at < before, Notification.id.not_in(open_))
                .order_by(Notification.id).limit(batch)))
            if ids:
                session.execute(delete(NotificationDelivery).where(NotificationDelivery.notification_id.in_(ids)))
                session.execute(delete(Notification).where(Notification.id.in_(ids)))
            return len(ids)

        removed, deleted = 0, batch
        while deleted == batch:
            deleted = self._transactions.run(delete_batch, write=True)
            removed += deleted
        return removed

    def delivery(self, delivery_id: int) -> dict:
        def work(session: Session) -> dict:
            delivery = session.get(NotificationDelivery, delivery_id)
            if delivery is None:
                raise LookupError('no delivery %r' % delivery_id)
            return _row(delivery, _DELIVERY_COLUMNS)
        return self._transactions.run(work)


def _taken(name: str) -> ValueError:
    return ValueError('a notifier named %s already exists: pick another name, or delete that one first' % name)


def _find(session: Session, name: str, lock: bool = False) -> Notifier:
    if not isinstance(name, str) or not name:
        raise UnknownNotifier(str(name))
    query = select(Notifier).where(Notifier.name == name)
    if lock:
        query = query.with_for_update()
    notifier = session.scalar(query)
    if notifier is None:
        raise UnknownNotifier(name)
    return notifier


def _row(row, columns: tuple[str, ...]) -> dict:
    return {name: getattr(row, name) for name in columns}
