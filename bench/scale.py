#!/usr/bin/env python3
"""Scale (issue 14, section 5): many jobs queued at once, the store on MariaDB.

The service (API, private Redis) runs on a store in a database of its own on this machine's
MariaDB (127.0.0.1:3306, dropped at the end). Measured:

1. accept: --jobs one-host jobs (default 10,000) POSTed from 8 client threads onto a queue no
   worker listens to yet: jobs accepted per second;
2. API latency as the queue grows: `GET /api/v1/jobs?status=queued` (first page) and
   `GET /api/v1/jobs/{id}`, p50 / p99 over --probes requests each, with 1 job queued, 1,000 and
   all of them; the goal is flat: p99 with all queued <= 1.5 x p99 with one;
3. memory per queued job: Redis' used_memory and the store's data + index bytes (InnoDB,
   after ANALYZE TABLE), growth / jobs;
4. throughput: 4 workers then take the queue; jobs per second over the first --run jobs
   (default 200), against the same playbook run --run times by bare ansible-runner 4 at a time
   (bench/runner.py's baseline). The rest of the queue is dropped with the database: running
   10,000 one-host plays takes about 1.4 CPU-seconds each, hours on this machine.

    .venv/bin/python bench/scale.py [--jobs 10000] [--run 200] [--probes 200]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pymysql
import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.report import record  # noqa: E402
from bench.runner import HELLO, many_bare, percentile  # noqa: E402
from devtools.service_harness import INVENTORY, Service  # noqa: E402

COMMAND = '.venv/bin/python bench/scale.py'
MARIADB = dict(host='127.0.0.1', port=3306, user='root', password='')
DATABASE = 'dbfleet_bench_scale'
QUEUE = 'scale'
CLIENTS = 8
WORKERS = 4
TERMINAL = ('successful', 'failed', 'canceled', 'timed_out', 'worker_lost', 'skipped')


def mariadb(database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(database=database, autocommit=True, **MARIADB)


def store_bytes() -> int:
    with mariadb(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute('SHOW TABLES')
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            cursor.execute('ANALYZE TABLE `%s`' % table)
            cursor.fetchall()
        cursor.execute('SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables '
                       'WHERE table_schema = %s', (DATABASE,))
        return int(cursor.fetchone()[0])


def job_counts() -> dict[str, int]:
    with mariadb(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute('SELECT status, COUNT(*) FROM jobs GROUP BY status')
        return dict(cursor.fetchall())


def post_jobs(service: Service, count: int) -> tuple[list[str], float]:
    """`count` jobs POSTed from CLIENTS threads; (their ids, seconds it took)."""
    body = {'playbook': HELLO, 'inventory': INVENTORY, 'limit': 'node1', 'queue': QUEUE}
    local = threading.local()
    failures: list[str] = []

    def one(_number: int) -> str | None:
        if not hasattr(local, 'client'):
            local.client = service.client('admin')
        response = local.client.post('/api/v1/jobs', json=body)
        if response.status_code != 201:
            failures.append('HTTP %d %s' % (response.status_code, response.text[:300]))
            return None
        return response.json()['id']

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        ids = list(pool.map(one, range(count)))
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit('bench/scale.py: %d POSTs refused, first: %s' % (len(failures), failures[0]))
    return [job_id for job_id in ids if job_id], seconds


def latency(service: Service, job_id: str, probes: int) -> dict[str, tuple[float, float]]:
    """p50 and p99 in ms of the two reads, `probes` each, one client."""
    figures = {}
    with service.client('viewer') as client:
        for name, path, params in (('list', '/api/v1/jobs', {'status': 'queued', 'limit': 50}),
                                   ('one', '/api/v1/jobs/%s' % job_id, None)):
            times = []
            for _ in range(probes):
                started = time.perf_counter()
                response = client.get(path, params=params)
                times.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit('bench/scale.py: GET %s: HTTP %d' % (path, response.status_code))
            figures[name] = (percentile(times, 0.5), percentile(times, 0.99))
    return figures


def throughput(service: Service, run: int) -> float:
    """Seconds the workers took for the first `run` jobs: from the first job's start to the
    `run`-th end, as the store recorded them (the workers' own start-up is not counted)."""
    started = time.perf_counter()
    for _ in range(WORKERS):
        service.start_worker(QUEUE)
    while sum(count for status, count in job_counts().items() if status in TERMINAL) < run:
        if time.perf_counter() - started > 3600:
            raise SystemExit('bench/scale.py: %d jobs not done within an hour: %s' % (run, job_counts()))
        time.sleep(0.5)
    with mariadb(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute('SELECT started_at, finished_at FROM jobs WHERE finished_at IS NOT NULL '
                       'ORDER BY finished_at LIMIT %s', (run,))
        rows = cursor.fetchall()
    return (max(end for _, end in rows) - min(start for start, _ in rows)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--jobs', type=int, default=10000)
    parser.add_argument('--run', type=int, default=200)
    parser.add_argument('--probes', type=int, default=200)
    args = parser.parse_args()
    if args.jobs < 1000 or args.run < 1 or args.run > args.jobs:
        parser.error('--jobs at least 1000, --run between 1 and --jobs')

    with mariadb() as connection, connection.cursor() as cursor:
        cursor.execute('DROP DATABASE IF EXISTS `%s`' % DATABASE)
        cursor.execute('CREATE DATABASE `%s`' % DATABASE)
    directory = Path(tempfile.mkdtemp(prefix='dbfleet-bench-scale-'))
    service = Service(directory, workers=0, store_url='mysql+pymysql://root@127.0.0.1:3306/%s' % DATABASE)
    try:
        service.start()
        redis_client = redis.Redis.from_url(service.redis.url)
        redis_before, store_before = redis_client.info('memory')['used_memory'], store_bytes()

        [first], _ = post_jobs(service, 1)
        at = {1: latency(service, first, args.probes)}
        _, seconds = post_jobs(service, 999)
        accepted = [(999, seconds)]
        at[1000] = latency(service, first, args.probes)
        _, seconds = post_jobs(service, args.jobs - 1000)
        accepted.append((args.jobs - 1000, seconds))
        at[args.jobs] = latency(service, first, args.probes)
        queued = job_counts().get('queued', 0)
        redis_after, store_after = redis_client.info('memory')['used_memory'], store_bytes()
        print('queued %d; latency %s' % (queued, at))

        wall = throughput(service, args.run)
        bare = many_bare(args.run, WORKERS)
    finally:
        service.stop()
        with mariadb() as connection, connection.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS `%s`' % DATABASE)
        shutil.rmtree(directory, ignore_errors=True)

    rate = sum(count for count, _ in accepted) / sum(seconds for _, seconds in accepted)
    service_rate, bare_rate = args.run / wall, args.run / bare['wall']
    flat = {name: at[args.jobs][name][1] / at[1][name][1] for name in ('list', 'one')}
    lines = [
        '%d one-host jobs (`%s`) POSTed by %d client threads onto a queue no worker listened to yet; store on '
        'MariaDB (127.0.0.1:3306), Redis private to the run. %d were queued at the end of it.'
        % (args.jobs, HELLO, CLIENTS, queued),
        '',
        '| Figure | Value |',
        '|---|---|',
        '| accepted | %.0f jobs/s (%d in %.1f s) |' % (rate, sum(count for count, _ in accepted),
                                                     sum(seconds for _, seconds in accepted)),
        '| Redis per queued job | %.0f bytes |' % ((redis_after - redis_before) / args.jobs),
        '| store per queued job (data + indexes) | %.0f bytes |' % ((store_after - store_before) / args.jobs),
        '',
        '| Queued | `GET /api/v1/jobs?status=queued` p50 / p99 | `GET /api/v1/jobs/{id}` p50 / p99 |',
        '|---|---|---|',
    ] + ['| %d | %.1f / %.1f ms | %.1f / %.1f ms |' % (count, *figures['list'], *figures['one'])
         for count, figures in sorted(at.items())] + [
        '',
        'p99 with %d queued / p99 with 1: list **%.2f**, one job **%.2f** (goal <= 1.5).'
        % (args.jobs, flat['list'], flat['one']),
        '',
        '| Throughput: the first %d jobs, %d at a time | Wall | Jobs/s |' % (args.run, WORKERS),
        '|---|---|---|',
        '| dbfleet, %d workers on the queue (first start to last end, from the store) | %.1f s | %.2f |'
        % (WORKERS, wall, service_rate),
        '| bare ansible-runner, %d processes (`bench/runner.py`\'s baseline) | %.1f s | %.2f |'
        % (WORKERS, bare['wall'], bare_rate),
        '',
        'dbfleet / bare: **%.2f** (goal >= 0.9). The remaining %d jobs were dropped with the database. Load average '
        'when it ended: %s (the machine is shared).'
        % (service_rate / bare_rate, args.jobs - args.run, ' '.join('%.1f' % value for value in os.getloadavg())),
    ]
    print('\n'.join(lines))
    record(key='scale', title='Scale: %d jobs queued at once (bench/scale.py)' % args.jobs, command=COMMAND,
           lines=lines)


if __name__ == '__main__':
    main()
