"""What GET /metrics answers: the fleet's figures in the Prometheus format, read at scrape time
from the store (store.metrics, aggregated in SQL) and from Redis (the workers listening to each
queue), never counted in this process. Several API processes behind a load balancer therefore
answer the same, and workers and schedulers on other machines need no endpoint of their own.

Figures about the past (ended jobs, durations, schedule slots) cover the last WINDOW (said in
each HELP): the store keeps history for ever, and a scrape must stay a few indexed queries.
Times of events are exposed as Unix timestamps, not ages (Prometheus's advice): an alert says
`time() - dbfleet_backup_last_success_timestamp_seconds > 26 * 3600`.

A part that cannot be read (the store, Redis) is left out and `dbfleet_up{component}` says 0:
a scrape never fails because one source is away.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from dbfleet.clock import utcnow
from dbfleet.store.pools import LEASE_TTL_SECONDS
from runner_service.runtime import Runtime
from runner_service.schedules.provenance import CRONTAB_ORIGIN

log = logging.getLogger(__name__)

WINDOW = dt.timedelta(hours=24)
WINDOW_TEXT = 'the last 24 h'
# From a one-task play to a night's backup run.
DURATION_BOUNDS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)
# The cron loop passes every second; jitter and a busy store make more.
LATENESS_BOUNDS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class FleetCollector:
    """A prometheus_client custom collector over one process's Runtime; `now` is the clock
    (the window's start, which pool leases still count)."""

    def __init__(self, runtime: Runtime, now: Callable[[], dt.datetime] = utcnow):
        self.runtime = runtime
        self.now = now

    def describe(self) -> list:
        # Registering asks for the names; an empty answer spares it a whole collect().
        return []

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily('dbfleet_up', 'Whether this scrape could read each source of the figures: '
                               'store, redis (1 yes, 0 no: its figures are missing)', labels=['component'])
        figures = self._read('store', up, self._store_figures)
        listening = self._read('redis', up, self.runtime.queue.listening)
        if figures is not None:
            yield from store_families(figures)
        if listening is not None:
            yield workers_family(listening, figures['queues'] if figures is not None else {})
        yield up
        scrape = GaugeMetricFamily('dbfleet_metrics_scrape_duration_seconds',
                                   'How long this API process took to read the figures of this scrape')
        scrape.add_metric([], time.perf_counter() - started)
        yield scrape

    def _store_figures(self) -> dict:
        now = self.now()
        return self.runtime.store.metrics.figures(now=now, since=now - WINDOW, duration_bounds=DURATION_BOUNDS,
                                                  lateness_bounds=LATENESS_BOUNDS, lease_ttl=LEASE_TTL_SECONDS,
                                                  crontab_origin=CRONTAB_ORIGIN)

    @staticmethod
    def _read(component: str, up: GaugeMetricFamily, read: Callable):
        try:
            value = read()
        except Exception as exc:  # the source away: the other figures are still worth a scrape
            log.warning('/metrics: %s unreadable (%s)', component, type(exc).__name__)
            up.add_metric([component], 0)
            return None
        up.add_metric([component], 1)
        return value


def fleet_registry(runtime: Runtime, now: Callable[[], dt.datetime] = utcnow) -> CollectorRegistry:
    """A registry of its own holding only the fleet's figures (none of this process's own)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(runtime, now))
    return registry


def store_families(figures: dict) -> Iterable[Metric]:
    jobs = GaugeMetricFamily('dbfleet_jobs', 'Jobs by status and template (empty: a bare playbook): every job '
                             'queued, waiting or running, and those created in %s that have ended' % WINDOW_TEXT,
                             labels=['status', 'template'])
    for status, template, count in sorted(figures['jobs'], key=lambda row: (row[0], row[1] or '')):
        jobs.add_metric([status, template or ''], count)
    yield jobs

    durations = GaugeHistogramMetricFamily('dbfleet_job_duration_seconds', 'Run time (start to end) of the jobs '
                                           'created in %s that ran and ended, by template' % WINDOW_TEXT,
                                           labels=['template'])
    for template, histogram in sorted(figures['durations'].items(), key=lambda item: item[0] or ''):
        add_histogram(durations, [template or ''], histogram, DURATION_BOUNDS)
    yield durations

    waiting = GaugeMetricFamily('dbfleet_queue_waiting_jobs', 'Jobs queued for a worker, by queue',
                                labels=['queue'])
    oldest = GaugeMetricFamily('dbfleet_queue_oldest_waiting_job_timestamp_seconds', 'When the job waiting '
                               'longest in each queue was queued (Unix time)', labels=['queue'])
    for queue, (count, enqueued_at) in sorted(figures['queues'].items()):
        waiting.add_metric([queue], count)
        if enqueued_at is not None:
            oldest.add_metric([queue], enqueued_at.timestamp())
    yield waiting
    yield oldest

    lateness = GaugeHistogramMetricFamily('dbfleet_schedule_lateness_seconds', 'From a schedule slot\'s time to '
                                          'the creation of the job the scheduler fired for it (jitter included), '
                                          'for the slots of %s' % WINDOW_TEXT)
    add_histogram(lateness, [], figures['lateness'], LATENESS_BOUNDS)
    yield lateness

    slots = GaugeMetricFamily('dbfleet_schedule_slots', 'Schedule slots of %s by what became of them: fired, '
                              'skipped (a window, overlap, a launch refused) or missed (nobody ran it)' % WINDOW_TEXT,
                              labels=['schedule', 'outcome'])
    for schedule, outcome, count in sorted(figures['slots']):
        slots.add_metric([schedule, outcome], count)
    yield slots

    pool_slots = GaugeMetricFamily('dbfleet_pool_slots', 'Slots of each pool', labels=['pool'])
    in_use = GaugeMetricFamily('dbfleet_pool_slots_in_use', 'Slots of each pool held by a running host (a '
                               'lease renewed in the last %d s)' % LEASE_TTL_SECONDS, labels=['pool'])
    for pool, size, held in figures['pools']:
        pool_slots.add_metric([pool], size)
        in_use.add_metric([pool], held)
    yield pool_slots
    yield in_use

    events = CounterMetricFamily('dbfleet_job_events_stored', 'Job events stored since the store was created '
                                 '(the highest event id: one per event, and ids a rolled-back write took)')
    events.add_metric([], figures['events_stored'])
    yield events

    backup_at = GaugeMetricFamily('dbfleet_backup_last_success_timestamp_seconds', 'When the last successful '
                                  'backup of each host with a backup attempt ended (Unix time; 0: none succeeded)',
                                  labels=['host'])
    backup_bytes = GaugeMetricFamily('dbfleet_backup_last_size_bytes', 'Size of the last successful backup of '
                                     'each host', labels=['host'])
    for host, ended, size in figures['backups']:
        backup_at.add_metric([host], ended.timestamp() if ended is not None else 0)
        if size is not None:
            backup_bytes.add_metric([host], size)
    yield backup_at
    yield backup_bytes

    archive_lag = GaugeMetricFamily('dbfleet_binlog_archive_lag_seconds', 'Seconds the binlog archive of each host '
                                    'is behind its server, at the archive\'s last pass (0: streamed up to the '
                                    'server\'s position)', labels=['host'])
    for host, seconds in figures['archive_lag']:
        archive_lag.add_metric([host], seconds)
    yield archive_lag

    tested = GaugeMetricFamily('dbfleet_backup_restore_tested_timestamp_seconds', 'When the last successful restore '
                               'drill of each host with a backup ended (Unix time; 0: never drilled)', labels=['host'])
    recovery = GaugeMetricFamily('dbfleet_drill_recovery_seconds', 'Measured recovery time (RTO) of each host\'s last '
                                 'successful restore drill: restore, replay and verification', labels=['host'])
    data_age = GaugeMetricFamily('dbfleet_drill_data_age_seconds', 'Age of the data each host\'s last successful '
                                 'restore drill got back, when it started (RPO)', labels=['host'])
    failing = GaugeMetricFamily('dbfleet_drill_last_failed', '1 when the newest restore drill of the host failed',
                                labels=['host'])
    for host, tested_at, rto, rpo, last_failed in figures['drills']:
        tested.add_metric([host], tested_at.timestamp() if tested_at is not None else 0)
        if rto is not None:
            recovery.add_metric([host], rto)
        if rpo is not None:
            data_age.add_metric([host], rpo)
        failing.add_metric([host], 1 if last_failed else 0)
    yield tested
    yield recovery
    yield data_age
    yield failing

    crontab = GaugeMetricFamily('dbfleet_crontab_entries', 'Crontab entries bridged to the platform, by host and '
                                'mode: observe (crontab runs it), takeover (the platform does), reverted',
                                labels=['host', 'mode'])
    for host, mode, count in sorted(figures['crontab']):
        crontab.add_metric([host, mode], count)
    yield crontab

    deliveries = GaugeMetricFamily('dbfleet_notification_deliveries', 'Notification deliveries made in the last '
                                   '24 h, by notifier and status: pending, sending, delivered, failed (every '
                                   'attempt spent), silenced (a maintenance window)', labels=['notifier', 'status'])
    for notifier, status, count in sorted(figures['deliveries']):
        deliveries.add_metric([notifier, status], count)
    yield deliveries


def workers_family(listening: dict, queues: dict) -> Metric:
    """Workers listening to each queue: every queue a worker listens to, and every queue with jobs
    waiting (0 there is what the `no worker on a queue` alert looks for)."""
    workers = GaugeMetricFamily('dbfleet_queue_workers', 'Live workers listening to each queue (0: jobs wait in '
                                'it and no worker takes them)', labels=['queue'])
    for queue in sorted(set(listening) | set(queues)):
        workers.add_metric([queue], listening.get(queue, 0))
    return workers


def add_histogram(family: GaugeHistogramMetricFamily, labels: list[str], histogram: dict,
                  bounds: tuple[float, ...]) -> None:
    buckets = [(floatToGoString(bound), count) for bound, count in zip(bounds, histogram['buckets'])]
    family.add_metric(labels, buckets + [('+Inf', histogram['count'])], histogram['sum'])
