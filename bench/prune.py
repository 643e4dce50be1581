#!/usr/bin/env python3
"""Events retention (issue 14, section 5): 1M events pruned by age beside a live writer, store on MariaDB.

A store in a database of its own on this machine's MariaDB (127.0.0.1:3306, dropped at the
end) gets --events events (default 1,000,000) of --jobs ended jobs (default 200), written
through the store as a worker writes them. A running job's writer then stores a batch of
--batch events (default 50) every 50 ms, as a busy play's EventWriter does, and times each
INSERT: first for --seconds alone (the baseline), then while `store.events.prune` deletes every
event of the ended jobs (DBFLEET_KEEP_EVENTS_DAYS's pass, `dbfleet store prune-events`).
Reported: events pruned per second, and the writer's batch latency p50 / p99 / max during the
prune against the baseline; the goal is a writer not blocked (p99 within a few times the
baseline, no batch waiting on the whole prune). The running job's events are all kept.

    .venv/bin/python bench/prune.py [--events 1000000] [--jobs 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.report import record  # noqa: E402
from bench.runner import percentile  # noqa: E402
from bench.scratch_database import scratch_database  # noqa: E402
from dbfleet.clock import utcnow  # noqa: E402
from dbfleet.store import open_store  # noqa: E402

COMMAND = '.venv/bin/python bench/prune.py'
DATABASE = 'dbfleet_bench_prune'
JOB = {'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/local_fleet.yml'}
WRITE_EVERY = 0.05


def event(seq: int, host: str) -> dict:
    """A runner_on_ok of a backup task, about the size of a real one."""
    return {'seq': seq, 'uuid': str(uuid.uuid4()), 'event': 'runner_on_ok', 'host': host, 'task': 'Back up',
            'play': 'Nightly backup', 'changed': True, 'failed': False,
            'stdout': 'changed: [%s] => {"path": "/var/backups/dbfleet/%s/20261205T010203Z"}' % (host, host),
            'data': {'host': host, 'task': 'Back up', 'res': {'changed': True, 'bytes': 123456789,
                                                               'sha256': uuid.uuid4().hex * 2}}}


def ended_job(store, events: int, batch: int = 5000) -> None:
    job, _ = store.jobs.create(dict(JOB))
    store.jobs.transition(job['id'], 'running', expect='queued', worker='bench/1')
    for start in range(0, events, batch):
        store.events.add(job['id'], [event(seq, 'db%d' % (seq % 500)) for seq in
                                     range(start + 1, min(events, start + batch) + 1)])
    store.jobs.transition(job['id'], 'successful', expect='running')


class Writer:
    """A running job's events, a batch every WRITE_EVERY seconds, each INSERT timed."""

    def __init__(self, store, batch: int):
        self.store = store
        self.batch = batch
        self.job, _ = store.jobs.create(dict(JOB))
        store.jobs.transition(self.job['id'], 'running', expect='queued', worker='bench/2')
        self.seq = 0
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rows = [event(self.seq + index + 1, 'live') for index in range(self.batch)]
            started = time.perf_counter()
            self.store.events.add(self.job['id'], rows)
            self.latencies.append(time.perf_counter() - started)
            self.seq += self.batch
            self.stop.wait(max(0.0, WRITE_EVERY - (time.perf_counter() - started)))

    def window(self, action) -> tuple[list[float], float, object]:
        """Latencies while `action()` runs (or for `action` seconds): (them, the wall, what action returned)."""
        self.latencies = []
        self.stop.clear()
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        started = time.perf_counter()
        result = action() if callable(action) else time.sleep(action)
        wall = time.perf_counter() - started
        self.stop.set()
        thread.join()
        return list(self.latencies), wall, result


def summary(latencies: list[float]) -> tuple[float, float, float]:
    ms = sorted(value * 1000 for value in latencies)
    return statistics.median(ms), percentile(ms, 0.99), ms[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--events', type=int, default=1_000_000)
    parser.add_argument('--jobs', type=int, default=200)
    parser.add_argument('--batch', type=int, default=50)
    parser.add_argument('--seconds', type=float, default=20.0)
    args = parser.parse_args()
    if args.jobs < 1 or args.events < args.jobs or args.batch < 1 or args.seconds <= 0:
        parser.error('--events at least --jobs, --jobs, --batch and --seconds positive')

    with scratch_database(DATABASE) as store_url:
        with open_store(store_url) as store:
            started = time.perf_counter()
            for _ in range(args.jobs):
                ended_job(store, args.events // args.jobs)
            loaded = time.perf_counter() - started
            print('loaded %d events of %d ended jobs in %.0f s' % (args.events, args.jobs, loaded), flush=True)
            writer = Writer(store, args.batch)
            alone, _, _ = writer.window(args.seconds)
            cutoff = utcnow()
            beside, wall, (jobs, pruned) = writer.window(lambda: store.events.prune(cutoff))
            kept = store.events.last_seq(writer.job['id'])
            live = len(store.events.list(writer.job['id'], limit=1000)['events'])
            left = sum(len(store.events.list(job['id'], limit=10)['events'])
                       for job in store.jobs.list(limit=args.jobs + 1)['jobs'] if job['id'] != writer.job['id'])

    assert pruned == args.events // args.jobs * args.jobs and jobs == args.jobs, (jobs, pruned)
    assert left == 0 and kept == writer.seq and live > 0, (left, kept, writer.seq)
    base, during = summary(alone), summary(beside)
    lines = [
        '%d events of %d ended jobs (%d each, written through the store in %.0f s: %.0f events/s), then a running '
        "job's writer storing %d events every %d ms, each INSERT timed: %.0f s alone, then while "
        '`store.events.prune` deletes every event of the ended jobs (2,000 per transaction).'
        % (pruned, jobs, args.events // args.jobs, loaded, args.events / loaded, args.batch, WRITE_EVERY * 1000,
           args.seconds),
        '',
        '| | batches | writer INSERT p50 / p99 / max |',
        '|---|---|---|',
        '| alone (baseline) | %d | %.1f / %.1f / %.1f ms |' % ((len(alone),) + base),
        '| during the prune | %d | %.1f / %.1f / %.1f ms |' % ((len(beside),) + during),
        '',
        'Pruned **%d events in %.1f s (%.0f events/s)**; the writer went on: p99 **%.2f x** the baseline, its '
        'slowest batch %.0f ms against a prune of %.0f s (not blocked). The running job kept all %d of its events; '
        'the ended jobs kept none.' % (pruned, wall, pruned / wall, during[1] / base[1], during[2], wall, kept),
    ]
    print('\n'.join(lines))
    record('prune', 'Events retention: 1M events pruned beside a live writer (MariaDB store)', COMMAND, lines)


if __name__ == '__main__':
    main()
