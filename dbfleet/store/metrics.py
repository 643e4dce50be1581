"""The figures a Prometheus scrape of the runner service reads (runner_service.metrics), each
aggregated in SQL, all in one short read transaction: a scrape costs a handful of indexed
queries whatever the number of jobs, events or slots kept.

Jobs that have ended, job durations and schedule slots are counted over a window (`since`, the
collector's 24 h): their tables grow for ever, and the window is what keeps the queries on
indexes (jobs by created_at, slots by their schedule's primary key range).
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from dbfleet.clock import utc
from dbfleet.store.drills import drill_states
from dbfleet.store.elapsed import elapsed_seconds
from dbfleet.store.job_lifecycle import TERMINAL_STATUSES
from dbfleet.store.models import (Backup, BinlogArchiveState, Job, JobEvent, NotificationDelivery, Pool, PoolLease,
                                   Schedule, ScheduleSlot)
from dbfleet.store.transactions import Transactions

LIVE_STATUSES = ('queued', 'waiting', 'running')


class Metrics:
    """store.metrics: what /metrics exposes, read at scrape time (every API process answers the same)."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def figures(self, now: dt.datetime, since: dt.datetime, duration_bounds: Sequence[float],
                lateness_bounds: Sequence[float], lease_ttl: float, crontab_origin: str) -> dict:
        """{jobs: [(status, template, count)], queues: {queue: (waiting, oldest enqueued_at)},
        durations: {template: histogram}, lateness: histogram, slots: [(schedule, outcome, count)],
        pools: [(pool, slots, in use)], events_stored: int, backups: [(host, last ok at, its bytes)],
        crontab: [(host, mode, count)], deliveries: [(notifier, status, count)], archive_lag: [(host, seconds
        behind)] of each binlog archive that has a file, drills: [(host, last ok drill's end or None, its RTO, its
        RPO, whether the newest drill failed)] of each host with a successful backup}; a histogram is
        {count, sum, buckets: [count <= bound]}."""
        now, since = utc(now), utc(since)

        def work(session: Session) -> dict:
            jobs, durations = _jobs(session, since, duration_bounds)
            return dict(jobs=jobs, queues=_queues(session), durations=durations,
                        lateness=_lateness(session, since, lateness_bounds), slots=_slots(session, since),
                        pools=_pools(session, now - dt.timedelta(seconds=lease_ttl)),
                        events_stored=session.scalar(select(func.max(JobEvent.id))) or 0,
                        backups=_backups(session), crontab=_crontab(session, crontab_origin),
                        deliveries=_deliveries(session, since), archive_lag=_archive_lag(session),
                        drills=_drills(session))

        return self._transactions.run(work)


def _jobs(session: Session, since: dt.datetime, bounds: Sequence[float]) -> tuple[list, dict]:
    """([(status, template, count)], {template: histogram of run times}): every job not ended yet
    (index (status, ...)), and the ended ones created since `since`, counted and their run times
    (started to finished, of those that ran) summed in the same pass over the window."""
    live = select(Job.status, Job.template, func.count()).where(Job.status.in_(LIVE_STATUSES))
    run_time = elapsed_seconds(Job.started_at, Job.finished_at)
    ended = (select(Job.status, Job.template, func.count(), *_histogram_columns(run_time, bounds))
             .where(Job.status.in_(sorted(TERMINAL_STATUSES)), Job.created_at >= since))
    counts = [(status, template, count) for status, template, count in
              session.execute(live.group_by(Job.status, Job.template))]
    durations: dict[str | None, dict] = {}
    for status, template, count, *histogram in session.execute(ended.group_by(Job.status, Job.template)):
        counts.append((status, template, count))
        if histogram[0]:
            durations[template] = _added(durations.get(template), _histogram(histogram))
    return counts, durations


def _queues(session: Session) -> dict[str, tuple[int, dt.datetime | None]]:
    query = (select(Job.queue, func.count(), func.min(Job.enqueued_at)).where(Job.status == 'queued')
             .group_by(Job.queue))
    return {queue: (count, utc(oldest)) for queue, count, oldest in session.execute(query)}


def _histogram_columns(value, bounds: Sequence[float]) -> list:
    """count, sum and cumulative buckets of `value` where it is not NULL."""
    return [func.count(value), func.coalesce(func.sum(value), 0.0),
            *(func.coalesce(func.sum(case((value <= bound, 1), else_=0)), 0) for bound in bounds)]


def _histogram(row) -> dict:
    count, total, *buckets = row
    return dict(count=int(count), sum=float(total), buckets=[int(bucket) for bucket in buckets])


def _added(first: dict | None, second: dict) -> dict:
    if first is None:
        return second
    return dict(count=first['count'] + second['count'], sum=first['sum'] + second['sum'],
                buckets=[one + other for one, other in zip(first['buckets'], second['buckets'])])


def _lateness(session: Session, since: dt.datetime, bounds: Sequence[float]) -> dict:
    """From each slot's time to the creation of the job the platform fired for it, jitter included,
    for the slots since `since` (each schedule's primary key range)."""
    late = elapsed_seconds(ScheduleSlot.slot_at, Job.created_at)
    query = (select(*_histogram_columns(late, bounds))
             .select_from(Schedule)
             .join(ScheduleSlot, and_(ScheduleSlot.schedule_id == Schedule.id, ScheduleSlot.slot_at >= since))
             .join(Job, Job.id == ScheduleSlot.job_id)
             .where(ScheduleSlot.outcome == 'fired', ScheduleSlot.claimed_by == 'platform'))
    return _histogram(session.execute(query).one())


def _slots(session: Session, since: dt.datetime) -> list[tuple[str, str, int]]:
    query = (select(Schedule.name, ScheduleSlot.outcome, func.count())
             .select_from(Schedule)
             .join(ScheduleSlot, and_(ScheduleSlot.schedule_id == Schedule.id, ScheduleSlot.slot_at >= since))
             .group_by(Schedule.name, ScheduleSlot.outcome))
    return [(name, outcome, count) for name, outcome, count in session.execute(query)]


def _pools(session: Session, renewed_after: dt.datetime) -> list[tuple[str, int, int]]:
    """Each pool's slots and the leases on it still renewed (one nobody renewed is a dead holder's)."""
    held = (select(PoolLease.pool, func.count().label('held')).where(PoolLease.renewed_at >= renewed_after)
            .group_by(PoolLease.pool).subquery())
    query = (select(Pool.name, Pool.slots, func.coalesce(held.c.held, 0))
             .outerjoin(held, held.c.pool == Pool.name).order_by(Pool.name))
    return [(name, slots, in_use) for name, slots, in_use in session.execute(query)]


def _archive_lag(session: Session) -> list[tuple[str, float]]:
    """Each host's binlog archive lag at its last pass (hosts with nothing archived yet left out)."""
    query = (select(BinlogArchiveState.host, BinlogArchiveState.lag_seconds)
             .where(BinlogArchiveState.lag_seconds.is_not(None)).order_by(BinlogArchiveState.host))
    return [(host, float(lag)) for host, lag in session.execute(query)]


def _drills(session: Session) -> list[tuple[str, dt.datetime | None, float | None, float | None, bool]]:
    """Each host with a successful backup: its newest successful drill's end, RTO and RPO (None when never),
    and whether its newest drill failed."""
    found = []
    for host, state in sorted(drill_states(session).items()):
        good, last = state['last_ok'], state['last']
        found.append((host, state['last_ok_at'], good['rto_seconds'] if good else None,
                      good['rpo_seconds'] if good else None, bool(last is not None and last['status'] == 'failed')))
    return found


def _backups(session: Session) -> list[tuple[str, dt.datetime | None, int | None]]:
    """Each host with a backup attempt: when its last successful backup ended and its size
    (None, None when none succeeded). Index (host, started_at)."""
    last = (select(Backup.host, func.max(Backup.started_at).label('started_at')).where(Backup.status == 'ok')
            .group_by(Backup.host).subquery())
    hosts = select(Backup.host).distinct().subquery()
    query = (select(hosts.c.host, func.coalesce(Backup.finished_at, Backup.started_at), Backup.bytes)
             .outerjoin(last, last.c.host == hosts.c.host)
             .outerjoin(Backup, and_(Backup.host == last.c.host, Backup.started_at == last.c.started_at,
                                     Backup.status == 'ok'))
             .order_by(hosts.c.host))
    found: dict[str, tuple[str, dt.datetime | None, int | None]] = {}
    for host, ended, size in session.execute(query):  # two ok attempts started in the same microsecond: one
        found.setdefault(host, (host, utc(ended), size))
    return list(found.values())


def _crontab(session: Session, origin: str) -> list[tuple[str, str, int]]:
    """Bridged crontab entries (schedules whose source has `origin`) by host and mode."""
    mode = Schedule.source['mode'].as_string()
    query = (select(Schedule.source_host, mode, func.count())
             .where(Schedule.source_host.is_not(None), Schedule.source['origin'].as_string() == origin)
             .group_by(Schedule.source_host, mode))
    return [(host, mode, count) for host, mode, count in session.execute(query) if mode]


def _deliveries(session: Session, since: dt.datetime) -> list[tuple[str, str, int]]:
    """Notification deliveries made in the window, by notifier and where they stand (pending,
    sending, delivered, failed, silenced)."""
    query = (select(NotificationDelivery.notifier, NotificationDelivery.status, func.count())
             .where(NotificationDelivery.created_at >= since)
             .group_by(NotificationDelivery.notifier, NotificationDelivery.status))
    return [tuple(row) for row in session.execute(query)]
