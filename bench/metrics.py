#!/usr/bin/env python3
"""A /metrics scrape on a busy MariaDB store (issue 15, section 4): its cost at 10,000 queued jobs.

A store in a database of its own on this machine's MariaDB (127.0.0.1:3306, dropped at the end)
is filled in bulk: --queued jobs waiting (default 10,000, over 3 queues), --recent jobs ended in the
last 24 h (default 50,000, over 20 templates), --old jobs ended before (default 200,000), --schedules
schedules with a slot a minute for two days, and 30 days of nightly backups of --hosts hosts. Then
the whole scrape is timed --scrapes times (default 20): the collector's figures from the store and
Redis (127.0.0.1:6379) and the text the API answers (`generate_latest`, as GET /metrics does).
The goal: a scrape far below Prometheus's default 10 s timeout, and not growing with the history kept.

    .venv/bin/python bench/metrics.py [--queued 10000] [--recent 50000] [--old 200000] [--scrapes 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.report import record  # noqa: E402
from bench.runner import percentile  # noqa: E402
from bench.scratch_database import scratch_database  # noqa: E402
from dbfleet.clock import utcnow  # noqa: E402
from dbfleet.settings import Settings  # noqa: E402
from dbfleet.store import open_store  # noqa: E402
from dbfleet.store.models import Backup, Job, Schedule, ScheduleSlot  # noqa: E402

COMMAND = '.venv/bin/python bench/metrics.py'
DATABASE = 'dbfleet_bench_metrics'
ROWS_PER_INSERT = 5000


def job_row(now: dt.datetime, number: int, status: str, created: dt.datetime, run_seconds: float | None) -> dict:
    started = created + dt.timedelta(seconds=5) if run_seconds is not None else None
    return dict(id=uuid.uuid4().hex, playbook='playbooks/backup.yml', inventory='inventories/local_fleet.yml',
                inventory_kind='file', extra_vars={}, check_mode=False, diff_mode=False, queue=('default', 'dc1',
                                                                                                  'dc2')[number % 3],
                priority=0, status=status, created_at=created, enqueued_at=created, started_at=started,
                finished_at=started + dt.timedelta(seconds=run_seconds) if started else None, attempt=1,
                max_retries=0, retry_backoff_seconds=0, cancel_requested=False,
                template='template-%d' % (number % 20) if number % 4 else None)


def bulk(store, model, rows) -> None:
    rows = list(rows)
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        store.transactions.run(lambda session: session.execute(insert(model), chunk), write=True)


def fill(store, args) -> float:
    began = time.perf_counter()
    now = utcnow()
    bulk(store, Job, (job_row(now, number, 'queued', now - dt.timedelta(seconds=number), None)
                      for number in range(args.queued)))
    bulk(store, Job, (job_row(now, number, ('successful', 'failed')[number % 10 == 0],
                              now - dt.timedelta(seconds=number * 86000 / args.recent), 30 + number % 3600)
                      for number in range(args.recent)))
    bulk(store, Job, (job_row(now, number, 'successful', now - dt.timedelta(days=2, seconds=number * 30), 60)
                      for number in range(args.old)))
    schedules = [dict(id=uuid.uuid4().hex, name='schedule-%d' % number, kind='cron', expression='* * * * *',
                      timezone='UTC', job={}, overlap='allow', misfire_grace_seconds=60, catch_up='skip',
                      jitter_seconds=0, paused=False, created_at=now, updated_at=now, window_policy='skip')
                 for number in range(args.schedules)]
    bulk(store, Schedule, schedules)
    minute = now.replace(second=0, microsecond=0)
    bulk(store, ScheduleSlot, (dict(schedule_id=schedule['id'], slot_at=minute - dt.timedelta(minutes=step),
                                    outcome='missed' if step % 97 == 0 else 'skipped',
                                    claimed_by=None if step % 97 == 0 else 'platform', recorded_at=now)
                               for schedule in schedules for step in range(2 * 1440)))
    bulk(store, Backup, (dict(host='db%d' % host, method='logical', status='ok',
                              started_at=now - dt.timedelta(days=day, hours=1), finished_at=now - dt.timedelta(days=day),
                              duration_seconds=3600.0, bytes=host * 2 ** 20, created_at=now)
                         for host in range(args.hosts) for day in range(30)))
    for pool in range(5):
        store.pools.set('pool-%d' % pool, 10)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--queued', type=int, default=10000)
    parser.add_argument('--recent', type=int, default=50000)
    parser.add_argument('--old', type=int, default=200000)
    parser.add_argument('--schedules', type=int, default=100)
    parser.add_argument('--hosts', type=int, default=500)
    parser.add_argument('--scrapes', type=int, default=20)
    args = parser.parse_args()

    from prometheus_client import generate_latest

    from runner_service.metrics.collector import fleet_registry
    from runner_service.runtime import Runtime

    with scratch_database(DATABASE) as store_url, open_store(store_url) as store:
        filled = fill(store, args)
        runtime = Runtime(settings=Settings(store_url=store_url, redis_url='redis://127.0.0.1:6379/0'),
                          store_override=store)
        registry = fleet_registry(runtime)
        generate_latest(registry)  # warm: connections, statement caches
        seconds, size = [], 0
        for _ in range(args.scrapes):
            began = time.perf_counter()
            size = len(generate_latest(registry))
            seconds.append(time.perf_counter() - began)
    slots = args.schedules * 2 * 1440
    lines = [
        '%d queued jobs (3 queues), %d jobs ended in the last 24 h (20 templates), %d ended before, %d schedules '
        'with %d slots over two days, %d backups of %d hosts, 5 pools: filled in bulk in %.0f s.'
        % (args.queued, args.recent, args.old, args.schedules, slots, args.hosts * 30, args.hosts, filled),
        '',
        '| scrapes | p50 | p90 | max | answer |',
        '|---|---|---|---|---|',
        '| %d | %.0f ms | %.0f ms | %.0f ms | %d KB |' % (args.scrapes, 1000 * statistics.median(seconds),
                                                       1000 * percentile(seconds, 0.9), 1000 * max(seconds),
                                                       size // 1024),
        '',
        'A scrape (the collector reading the store and Redis, and the text GET /metrics answers) takes '
        '**%.0f ms** at p50 on this store, against Prometheus\'s default scrape timeout of 10 s.'
        % (1000 * statistics.median(seconds)),
    ]
    print('\n'.join(lines))
    record('metrics', 'A /metrics scrape at 10,000 queued jobs (MariaDB store)', COMMAND, lines)


if __name__ == '__main__':
    main()
