"""Making Redis and the running processes agree with the store, which is the system of record.

One pass (`reconcile`), run when the API starts and then every DBFLEET_RECONCILE_SECONDS:
- waiting jobs whose dependencies have all ended are queued or failed (a caller may have
  died between ending a job and releasing its dependents);
- waiting or queued jobs whose deadline passed are timed_out;
- running jobs whose worker stopped writing heartbeats are worker_lost (their ansible
  processes killed when they run on this machine) and retried as their policy says;
- queued jobs that Redis does not hold (it was flushed or restarted) are enqueued again.
  Checking every queued job costs the API process tens of milliseconds with 10,000 queued, so
  a Reconciler checks them all only at its first pass, every DBFLEET_RECONCILE_FULL_SECONDS,
  and as soon as Redis may have lost data (its run id or dbfleet's epoch key changed: a
  restart, a failover, a flush); between, it checks the jobs queued since its last good pass
  (a launch whose enqueue Redis refused), a minute of overlap for clocks and late commits,
  less those it already found in Redis at the same enqueue.
Every move is a compare-and-set in the store, so two reconcilers at once do no harm.
Once an hour the loop also prunes: with DBFLEET_KEEP_EVENTS_DAYS, the events of jobs ended longer
ago than that (`prune_events`; `dbfleet store prune-events` does it by hand); the notifications
older than DBFLEET_KEEP_NOTIFICATIONS_DAYS (90) whose deliveries are over (`dbfleet store
prune-notifications`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from dbfleet.clock import utcnow
from runner_service.jobs import lifecycle
from runner_service.runtime import Runtime

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600.0
# A recent pass checks jobs queued this long before the previous pass began: store writers on
# other machines have their own clocks, and a transaction commits a little after its `now`.
RECENT_OVERLAP = dt.timedelta(seconds=60)


class Presence:
    """What the last pass checked of the queued jobs: which of them the next pass must check."""

    def __init__(self, full_seconds: float, clock=time.monotonic):
        self.full_seconds = full_seconds
        self.clock = clock
        self.epoch: tuple[str, str] | None = None
        self.checked_since: dt.datetime | None = None  # the start of the last good pass
        self.next_full = 0.0
        # Job id -> the enqueue Redis was found holding: not asked again until a full check.
        self.confirmed: dict[str, dt.datetime | None] = {}

    def since(self, epoch: tuple[str, str]) -> dt.datetime | None:
        """None: check every queued job; else the enqueue time from which to check."""
        if self.checked_since is None or epoch != self.epoch or self.clock() >= self.next_full:
            return None
        return self.checked_since - RECENT_OVERLAP

    def to_check(self, queued: list[tuple], full: bool) -> list[tuple]:
        """Of the queued jobs read, those to look for in Redis: all at a full check, else those
        not already found there at their current enqueue."""
        return queued if full else [item for item in queued if self.confirmed.get(item[0], _NONE) != item[2]]

    def checked(self, epoch: tuple[str, str], started: dt.datetime, full: bool, queued: list[tuple],
                missing: set[str]) -> None:
        self.epoch, self.checked_since = epoch, started
        self.confirmed = {job_id: enqueued_at for job_id, _, enqueued_at in queued if job_id not in missing}
        if full:
            self.next_full = self.clock() + self.full_seconds


_NONE = object()


def reconcile(runtime: Runtime, presence: Presence | None = None) -> dict[str, int]:
    """One pass. Without `presence`, every queued job is checked against Redis."""
    started = utcnow()
    store = runtime.store
    counts = {'released': 0, 'timed_out': 0, 'lost': 0, 'enqueued': 0, 'expired': 0}
    released = store.jobs.ready_dependents()
    lifecycle.enqueue(runtime, released)
    counts['released'] = len(released)
    for job in store.jobs.expire_approvals():
        store.audit.record('dbfleet', 'job.expire', job['id'], {'template': job['template'],
                                                                'launched_by': job['created_by']})
        lifecycle.released(runtime, job['id'])
        counts['expired'] += 1
    for job in store.jobs.overdue():
        if lifecycle.finish(runtime, job['id'], 'timed_out', expect=('waiting', 'queued', 'awaiting_approval'),
                            status_reason='deadline passed before the job could start') is not None:
            counts['timed_out'] += 1
    for job in store.jobs.stale_running(runtime.settings.lost_after_seconds):
        reason = 'no heartbeat from worker %s for %.0f s' % (job['worker'], runtime.settings.lost_after_seconds)
        if lifecycle.lose(runtime, job, reason) is not None:
            counts['lost'] += 1
    epoch = runtime.queue.epoch() if presence is not None else None
    since = presence.since(epoch) if presence is not None else None
    queued = store.jobs.pending(enqueued_since=since)
    checking = presence.to_check(queued, full=since is None) if presence is not None else queued
    held = runtime.queue.present(checking)
    missing = {job_id for job_id, _, _ in checking if job_id not in held}
    for job_id, _, _ in checking:
        if job_id in missing:
            job = store.jobs.get(job_id)
            if job is not None and job['status'] == 'queued':  # not started or ended meanwhile
                lifecycle.enqueue(runtime, [job])
                counts['enqueued'] += 1
    if presence is not None:
        presence.checked(epoch, started, full=since is None, queued=queued, missing=missing)
    return counts


def prune_events(runtime: Runtime, days: float, now: dt.datetime | None = None) -> tuple[int, int]:
    """Delete the events of jobs that ended more than `days` days ago: (jobs, events)."""
    return runtime.store.events.prune((now or utcnow()) - dt.timedelta(days=days))


def prune(runtime: Runtime, now: dt.datetime | None = None) -> None:
    """The hourly pruning: events of long-ended jobs (when DBFLEET_KEEP_EVENTS_DAYS is set), old
    notifications whose deliveries are over. A store that is away is tried again next hour."""
    now = now or utcnow()
    days = runtime.settings.keep_events_days
    try:
        if days is not None:
            jobs, events = prune_events(runtime, days, now)
            if events:
                log.info('pruned %d events of %d jobs ended more than %g days ago', events, jobs, days)
        days = runtime.settings.keep_notifications_days
        if days is not None:
            removed = runtime.store.notifications.prune(now - dt.timedelta(days=days))
            if removed:
                log.info('pruned %d notifications stored more than %g days ago', removed, days)
    except Exception as exc:  # noqa: BLE001 - the store away: next hour
        log.warning('pruning failed: %s', exc)


class Reconciler:
    """reconcile() now and then every `interval` seconds on a daemon thread, until stopped."""

    def __init__(self, runtime: Runtime, interval: float | None = None):
        self.runtime = runtime
        self.interval = interval or runtime.settings.reconcile_seconds
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name='dbfleet-reconciler', daemon=True)
        self.next_prune = time.monotonic()
        self.presence = Presence(runtime.settings.reconcile_full_seconds)

    def start(self) -> 'Reconciler':
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            try:
                counts = reconcile(self.runtime, self.presence)
                if any(counts.values()):
                    log.info('reconciled: %s', counts)
            except Exception as exc:  # Redis or the store away: try again next time
                log.warning('reconcile pass failed: %s', exc)
            if time.monotonic() >= self.next_prune:
                self.next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                prune(self.runtime)
            if self.stopped.wait(self.interval):
                return
