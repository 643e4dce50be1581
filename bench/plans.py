"""Lanes and schedules, in one run (issue 5's figures):

1. planner only: 10,000 hosts with skewed sizes into 5 lanes: makespan / lower bound for dbfleet's
   lanes, AWX-style round-robin slicing, and Ansible `serial: 100`; time to plan;
2. a real run: N hosts (default 500) of a local inventory, each doing "work" of a skewed length,
   backed up by the runner in 5 lanes: finishing time / lower bound max(longest host, total / 5),
   from the measured per-host run times; the baselines get the same measured times;
3. scheduler lateness: a per-second schedule over 100 slots with 2 workers: slot -> job enqueued,
   slot -> playbook started, p50 / p99; and 100 per-second schedules at once: slot -> job enqueued.

    .venv/bin/python bench/plans.py [--hosts 500] [--slots 100] [--schedules 100]

With --accuracy, only how the estimates hold (section plan-accuracy): a real backup of the local
fleet's 3 servers in 3 lanes, 3 times, and N work hosts (--hosts) in 5 lanes, twice; each run's
estimate (made when it ran, stored with its host runs) against what it took, as the plan preview
reports it, and what the estimate would have been without the measured start-up cost.

    .venv/bin/python bench/plans.py --accuracy --hosts 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / 'collections')]

import yaml  # noqa: E402

from bench.report import record  # noqa: E402
from dbfleet.store import open_store  # noqa: E402
from runner_service.jobs import planner  # noqa: E402
from devtools.service_harness import PLAYBOOKS, Service  # noqa: E402

LANES = 5


def skewed_seconds(rng: random.Random, count: int, median: float, cap: float) -> list[float]:
    return [min(cap, max(0.05, rng.lognormvariate(0, 1.3) * median)) for _ in range(count)]


def serial_makespan(durations: list[float], batch: int) -> float:
    """Ansible serial: batches in order, each as long as its slowest host (forks >= batch)."""
    return sum(max(durations[start:start + batch]) for start in range(0, len(durations), batch))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def simulate(count: int = 10000) -> list[str]:
    rng = random.Random(4711)
    sizes = [min(50 * 2**30, max(500 * 2**20, rng.lognormvariate(0, 1.5) * 4 * 2**30)) for _ in range(count)]
    hosts = ['db%05d' % index for index in range(count)]
    started = time.perf_counter()
    estimates = planner.estimate(hosts, {}, dict(zip(hosts, sizes)), 100 * 2**20)
    plan = planner.lanes(estimates, LANES)
    planning = time.perf_counter() - started
    bound = planner.lower_bound(estimates, LANES)
    lanes = max(lane.seconds for lane in plan)
    sliced = max(lane.seconds for lane in planner.round_robin(estimates, LANES))
    serial = serial_makespan([item.seconds for item in estimates], 100)
    print('simulation: %d hosts, bound %.0f s: lanes %.4f, round-robin %.3f, serial:100 %.3f; planned in %.0f ms'
          % (count, bound, lanes / bound, sliced / bound, serial / bound, planning * 1000))
    return ['| planner only: %d hosts, sizes 500 MB..50 GB (log-normal), 100 MB/s | %.0f s | **%.4f** | %.3f | '
            '%.3f | %.0f ms |' % (count, bound, lanes / bound, sliced / bound, serial / bound, planning * 1000)]


def real_run(service: Service, count: int) -> list[str]:
    rng = random.Random(1234)
    work = skewed_seconds(rng, count, median=0.4, cap=12.0)
    names = ['bench%03d' % index for index in range(count)]
    directory = ROOT / 'var' / 'bench'
    directory.mkdir(parents=True, exist_ok=True)
    inventory = directory / 'lanes_hosts.yml'
    inventory.write_text(yaml.safe_dump({'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable},
        'hosts': {name: {'work_seconds': round(seconds, 2)} for name, seconds in zip(names, work)}}}))
    overhead = 1.5  # Ansible's start-up per host run, part of every host's time
    with open_store(service.store_url) as store:
        for name, seconds in zip(names, work):  # the history the planner estimates from
            started = dt.datetime.now(dt.timezone.utc)
            store.backups.record(name, method='logical', status='ok', started_at=started,
                                 finished_at=started + dt.timedelta(seconds=seconds + overhead),
                                 duration_seconds=seconds + overhead, bytes=int(seconds * 100 * 2**20),
                                 path='/bench/%s' % name)
    job = service.launch('work.yml', inventory=str(inventory.relative_to(ROOT)), plan={'lanes': LANES})
    done = service.wait(job['id'], timeout=7200)
    with service.client('viewer') as client:
        runs = client.get('/api/v1/jobs/%s/runs' % job['id']).json()
    spans = {run['host']: (dt.datetime.fromisoformat(run['started_at']), dt.datetime.fromisoformat(run['finished_at']))
             for run in runs if run['started_at'] and run['finished_at']}
    measured = [(end - start).total_seconds() for start, end in spans.values()]
    first = min(start for start, _ in spans.values())
    last = max(end for _, end in spans.values())
    finish = (last - first).total_seconds()
    bound = max(max(measured), sum(measured) / LANES)
    by_name = {name: (spans[name][1] - spans[name][0]).total_seconds() for name in names if name in spans}
    ordered = [by_name[name] for name in names if name in by_name]
    sliced = max(sum(ordered[lane::LANES]) for lane in range(LANES))
    serial = serial_makespan(ordered, 100)
    ok = sum(1 for run in runs if run['status'] == 'ok')
    print('real run: %d hosts (%d ok, job %s), finish %.1f s, bound %.1f s: lanes %.3f, round-robin %.3f, '
          'serial:100 %.3f' % (count, ok, done['status'], finish, bound, finish / bound, sliced / bound,
                               serial / bound))
    return ['| runner, real run: %d local hosts, work 0.05..12 s (log-normal) + Ansible start-up each, '
            'estimates from recorded history | %.1f s | **%.3f** | %.3f | %.3f | job %s, %d/%d hosts ok |'
            % (count, bound, finish / bound, sliced / bound, serial / bound, done['status'], ok, count)]


def _accuracy_rows(service: Service, body: dict, label: str) -> tuple[list[str], dict]:
    """The plan preview's accuracy report for `body` (playbook + inventory), as table rows."""
    with service.client('viewer') as client:
        preview = client.post('/api/v1/plans/preview', json=body)
    assert preview.status_code == 200, preview.text
    accuracy = preview.json()['accuracy']
    rows = []
    for number, run in enumerate(reversed(accuracy['runs']), start=1):
        with service.client('viewer') as client:
            runs = client.get('/api/v1/jobs/%s/runs' % run['job_id']).json()
        per_host = [item['estimate_seconds'] for item in runs]
        ratios = [lane['ratio'] for lane in run['lanes']]
        rows.append('| %s, run %d | %.1f s | %.1f s | **%.2f** | %.2f..%.2f | %.1f..%.1f s |'
                    % (label, number, run['estimated_seconds'], run['actual_seconds'], run['ratio'],
                       min(ratios), max(ratios), min(per_host), max(per_host)))
    return rows, preview.json()


def accuracy(service: Service, count: int) -> list[str]:
    """Estimate against actual: the local fleet's real backups, then `count` work hosts."""
    lines = ['Each run\'s estimate is the one made when it ran (its longest lane by the planner\'s per-host',
             'estimates, stored with the job), against its run time (started to finished): ratio = actual /',
             'estimated, 1.00 is exact, above 1 slower than estimated; per lane the same. Run 1 of each has no',
             'start-up measured yet (the default 3 s per host); later runs add each host\'s measured start-up',
             '(its last runs\' wall time minus their backups\' own duration). Before this, an estimate was the',
             'backup\'s own duration alone: the "work only" column. Run 1 of the work hosts has no start-up of',
             'its own yet and takes the fleet\'s recent median: the local fleet\'s backups just before, which cost',
             'more to start than a `sleep` (hence its low ratio); run 2 has its own.', '',
             '| plan | estimated | took | ratio | lane ratios | per-host estimate |', '|---|---|---|---|---|---|']
    dest = ROOT / 'var' / 'bench' / 'accuracy-backups'
    dest.mkdir(parents=True, exist_ok=True)
    body = {'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/local_fleet.yml', 'lanes': 3}
    for _ in range(3):
        with service.client('admin') as admin:
            job = admin.post('/api/v1/jobs', json={
                'playbook': body['playbook'], 'inventory': body['inventory'], 'plan': {'lanes': 3},
                'extra_vars': {'dbfleet_backup_dest': str(dest), 'dbfleet_backup_retention_count': 2}}).json()
        done = service.wait(job['id'], timeout=1800)
        print('local fleet backup: %s in %.1f s' % (done['status'], done['timings']['run_seconds']))
    rows, preview = _accuracy_rows(service, body, 'local fleet backup, 3 hosts in 3 lanes')
    lines += rows
    work_only = [host['estimate_seconds'] - host['overhead_seconds'] for lane in preview['lanes']
                 for host in lane['hosts']]
    lines += ['| local fleet backup, next run (preview) | %.1f s | | | | %.1f..%.1f s (work only %.1f..%.1f s) |'
              % (max(lane['seconds'] for lane in preview['lanes']),
                 min(host['estimate_seconds'] for lane in preview['lanes'] for host in lane['hosts']),
                 max(host['estimate_seconds'] for lane in preview['lanes'] for host in lane['hosts']),
                 min(work_only), max(work_only))]

    rng = random.Random(1234)
    work = skewed_seconds(rng, count, median=0.4, cap=12.0)
    names = ['acc%03d' % index for index in range(count)]
    directory = ROOT / 'var' / 'bench'
    inventory = directory / 'accuracy_hosts.yml'
    inventory.write_text(yaml.safe_dump({'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable},
        'hosts': {name: {'work_seconds': round(seconds, 2)} for name, seconds in zip(names, work)}}}))
    with open_store(service.store_url) as store:
        for name, seconds in zip(names, work):  # the backups' own durations the planner starts from
            started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
            store.backups.record(name, method='logical', started_at=started, duration_seconds=round(seconds, 2))
    relative = str(inventory.relative_to(ROOT))
    for number in (1, 2):
        job = service.launch('work.yml', inventory=relative, plan={'lanes': LANES})
        done = service.wait(job['id'], timeout=7200)
        print('work hosts, run %d: %s in %.1f s' % (number, done['status'], done['timings']['run_seconds']))
        with service.client('viewer') as client:
            runs = client.get('/api/v1/jobs/%s/runs' % job['id']).json()
        with open_store(service.store_url) as store:  # what a backup records inside each host's run
            for run in runs:
                if run['started_at']:
                    store.backups.record(run['host'], method='logical', duration_seconds=round(
                        work[names.index(run['host'])], 2), started_at=dt.datetime.fromisoformat(
                        run['started_at']) + dt.timedelta(milliseconds=1))
    rows, preview = _accuracy_rows(service, {'playbook': PLAYBOOKS + '/work.yml', 'inventory': relative,
                                             'lanes': LANES}, '%d work hosts in 5 lanes' % count)
    lines += rows
    load = ' '.join('%.1f' % value for value in __import__('os').getloadavg())
    lines += ['', 'Load average at the end: %s (2 cores, shared with other work).' % load]
    return lines


def lateness(service: Service, slots: int, every: int = 1) -> list[str]:
    name = 'bench-lateness-%ds' % every
    expression = '* * * * * *' if every == 1 else '*/%d * * * * *' % every
    body = {'name': name, 'kind': 'cron', 'expression': expression, 'overlap': 'allow',
            'misfire_grace_seconds': 30,
            'job': {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': 'tests/service/inventory.yml',
                    'limit': 'node1'}}
    with service.client('admin') as admin:
        schedule = admin.post('/api/v1/schedules', json=body).json()
        time.sleep(slots * every + 1.5)
        admin.post('/api/v1/schedules/%s/pause' % name)
        fired = [slot for slot in admin.get('/api/v1/schedules/%s/slots' % schedule['id'],
                                            params={'limit': 1000}).json() if slot['outcome'] == 'fired']
    fired = sorted(fired, key=lambda slot: slot['slot_at'])[:slots]
    enqueued, started = [], []
    for slot in fired:
        job = service.wait(slot['job_id'], timeout=600)
        at = dt.datetime.fromisoformat(slot['slot_at'])
        enqueued.append((dt.datetime.fromisoformat(job['enqueued_at']) - at).total_seconds())
        started.append((dt.datetime.fromisoformat(job['started_at']) - at).total_seconds())
    print('lateness over %d slots every %d s: enqueued p50 %.3f s p99 %.3f s; started p50 %.3f s p99 %.3f s'
          % (len(fired), every, quantile(enqueued, .5), quantile(enqueued, .99), quantile(started, .5),
             quantile(started, .99)))
    return ['| every %d s: slot -> job enqueued | %.3f s | %.3f s | %d |' % (
                every, quantile(enqueued, .5), quantile(enqueued, .99), len(fired)),
            '| every %d s: slot -> playbook started (a worker took it) | %.3f s | %.3f s | %d |'
            % (every, quantile(started, .5), quantile(started, .99), len(fired))]


def many_schedules(service: Service, count: int = 100, seconds: int = 5) -> list[str]:
    """`count` per-second schedules at once, for `seconds`: slot -> job enqueued. Their jobs go to a
    queue no worker reads (2 cores cannot run 100 plays a second): this is the scheduler's pace."""
    names = ['bench-many-%03d' % index for index in range(count)]
    with service.client('admin') as admin:
        for name in names:
            answer = admin.post('/api/v1/schedules', json={
                'name': name, 'kind': 'cron', 'expression': '* * * * * *', 'overlap': 'allow',
                'misfire_grace_seconds': 30, 'job': {'playbook': PLAYBOOKS + '/hello.yml', 'queue': 'unworked',
                                                     'inventory': 'tests/service/inventory.yml', 'limit': 'node1'}})
            assert answer.status_code == 201, answer.text
        start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=2)
        end = start + dt.timedelta(seconds=seconds)
        time.sleep(max(0.0, (end - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 3)
        for name in names:
            admin.post('/api/v1/schedules/%s/pause' % name)
        slots = [slot for name in names for slot in admin.get('/api/v1/schedules/%s/slots' % name,
                                                                params={'limit': 100}).json()
                 if slot['outcome'] == 'fired' and start <= dt.datetime.fromisoformat(slot['slot_at']) < end]
    enqueued = []
    for slot in slots:
        job = service.job(slot['job_id'])
        enqueued.append((dt.datetime.fromisoformat(job['enqueued_at'])
                         - dt.datetime.fromisoformat(slot['slot_at'])).total_seconds())
    expected = count * seconds
    print('%d per-second schedules for %d s: %d of %d slots fired; enqueued p50 %.3f s p99 %.3f s max %.3f s'
          % (count, seconds, len(slots), expected, quantile(enqueued, .5), quantile(enqueued, .99), max(enqueued)))
    return ['| %d per-second schedules at once (%d of %d slots fired): slot -> job enqueued | %.3f s | %.3f s | %d |'
            % (count, len(slots), expected, quantile(enqueued, .5), quantile(enqueued, .99), len(slots))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--hosts', type=int, default=500)
    parser.add_argument('--slots', type=int, default=100)
    parser.add_argument('--schedules', type=int, default=100, help='per-second schedules firing at once')
    parser.add_argument('--accuracy', action='store_true', help='only the estimates against what happened')
    args = parser.parse_args()
    if args.accuracy:
        with tempfile.TemporaryDirectory(prefix='dbfleet-bench-accuracy-') as directory:
            service = Service(Path(directory), workers=2, schedulers=1,
                              inventory_dirs=json.dumps(['inventories', 'tests/service', 'var/bench'])).start()
            try:
                lines = accuracy(service, args.hosts)
            finally:
                service.stop()
        record('plan-accuracy', 'Plan estimates against what happened', '.venv/bin/python bench/plans.py '
               '--accuracy --hosts %d' % args.hosts, lines)
        return
    work = ROOT / 'tests' / 'service' / 'playbooks' / 'work.yml'
    assert work.exists(), work
    lines = ['Lanes: finishing time divided by the lower bound max(longest host, total / 5); goal <= 1.05.',
             'The baselines are given the same per-host times: AWX-style round-robin slicing into 5, and Ansible',
             '`serial: 100` (batches of 100 in order, each as long as its slowest host). serial: 100 can beat the',
             'bound only because it runs 100 backups at once, twenty times the limit of 5 the lanes keep.', '',
             '| run | lower bound | dbfleet lanes | round-robin | serial: 100 | notes |', '|---|---|---|---|---|---|']
    lines += simulate()
    with tempfile.TemporaryDirectory(prefix='dbfleet-bench-plans-') as directory:
        # The API takes inventories only from DBFLEET_INVENTORY_DIRS: the generated one is under var/bench.
        service = Service(Path(directory), workers=2, schedulers=1,
                          inventory_dirs=json.dumps(['inventories', 'tests/service', 'var/bench'])).start()
        try:
            lines += real_run(service, args.hosts)
            lines += ['', 'Schedule lateness: a schedule firing a one-host playbook every second (two workers keep up',
                      'while a play takes under two seconds; on a busy machine jobs queue behind each other and start',
                      'lateness becomes capacity, not timing), and one firing every 3 s (a worker is free at each slot: the',
                      "scheduler's own precision plus the pick-up), and 100 per-second schedules firing at once",
                      '(their jobs on a queue no worker reads: the scheduler\'s own pace). Goal p99 <= 1 s to start',
                      '(crontab: 60 s grain; AWX polls every 30 s).', '', '| figure | p50 | p99 | slots |',
                      '|---|---|---|---|']
            lines += lateness(service, args.slots)
            lines += lateness(service, max(1, args.slots // 2), every=3)
            lines += many_schedules(service, args.schedules)
        finally:
            service.stop()
    record('plans', 'Lanes and schedule lateness', '.venv/bin/python bench/plans.py --hosts %d --slots %d --schedules %d'
           % (args.hosts, args.slots, args.schedules), lines)


if __name__ == '__main__':
    main()
