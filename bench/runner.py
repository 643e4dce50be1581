#!/usr/bin/env python3
"""Runner service: launch overhead, many jobs, event ingest, each against bare ansible-runner.

Figures (defined in the shared benchmarks page), all measured in one run against a private
service (devtools/service_harness.py: redis-server, SQLite store, `dbfleet api`, 2 `dbfleet worker`):

1. Launch overhead: N sequential one-host launches of tests/service/playbooks/hello.yml
   (limit node1). Service: from just before `POST /api/v1/jobs` to the arrival of the job's first
   event on its SSE stream. Baseline: a fresh Python process running `ansible_runner.run` of the
   same playbook, from the process start to the first event handler call. The two alternate, so
   drift on the shared machine hits both alike. p50 / p95, and the service's added time at p50
   (goal <= 0.3 s), with where the service's time goes (API, queue, fork, ansible start, store).
2. Many jobs: J one-host jobs (limit cycling node1..node3) posted at once to the 2 workers: wall
   from the first POST until every job is terminal (the last finished_at), against the same J
   runs with bare ansible-runner one after another and two at a time (2 forked processes that
   import ansible_runner once, like the workers). Goal: service within 10 % of two at a time.
3. Event ingest: one job over H generated inventory hosts (connection local, gather_facts off,
   3 debug tasks, forks 50): stored events per second from the events' `created` times and from
   the wall between the first and last event seen on the API's SSE stream (goal >= 2,000/s).
   Baseline: the play's own event rate, the same play run with bare ansible-runner in-process
   and an event handler that only counts: the store keeps up when the two rates are close.

Results are printed and written to docs/benchmarks.md with the command line.

    .venv/bin/python bench/runner.py [--launches 20] [--jobs 200] [--hosts 500] [--ingest-rounds 3]
    .venv/bin/python bench/runner.py --launches 3 --jobs 12 --hosts 50 --ingest-rounds 1 --no-record  # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.report import record  # noqa: E402
from devtools.service_harness import INVENTORY, PLAYBOOKS, Service  # noqa: E402

HELLO = '%s/hello.yml' % PLAYBOOKS
BENCH_DIR = 'var/bench'  # under the project (the API refuses anything else), git-ignored
INGEST_INVENTORY = BENCH_DIR + '/hosts%d.yml'
INGEST_PLAYBOOK = BENCH_DIR + '/ingest.yml'
INGEST_TASKS = 3
NODES = ('node1', 'node2', 'node3')

# The environment the worker gives ansible-playbook (runner_service/worker/run.py), so both sides
# read the same ansible.cfg and find the same ansible-playbook.
ENVVARS = {'PATH': os.pathsep.join([os.path.dirname(sys.executable), os.environ.get('PATH', '')]),
           'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg'), 'ANSIBLE_FORCE_COLOR': '0', 'ANSIBLE_NOCOLOR': '1'}

# The baseline of figure 1: a fresh process, timed by its parent from spawn to the first event.
FIRST_EVENT_SNIPPET = r'''
import json, sys, tempfile, time
imported = None
import ansible_runner
imported = time.time()
first = []
def handler(event):
    if not first:
        first.append(time.time())
    return False
args = json.loads(sys.argv[1])
with tempfile.TemporaryDirectory(prefix='bench-bare-') as tmp:
    runner = ansible_runner.run(private_data_dir=tmp, project_dir=args['project'], playbook=args['playbook'],
                                inventory=args['inventory'], limit=args['limit'], envvars=args['envvars'],
                                quiet=True, event_handler=handler)
print(json.dumps({'imported': imported, 'first_event': first[0] if first else None, 'status': runner.status,
                  'rc': runner.rc}))
'''


# -- helpers -------------------------------------------------------------------------------------

# Ctrl-C: ansible-runner swallows the KeyboardInterrupt of an in-process run, so the runs' cancel
# callback kills the play and the caller raises it again (then the service is stopped).
INTERRUPTED = threading.Event()


def _interrupt(signum, frame):
    INTERRUPTED.set()
    raise KeyboardInterrupt


def _canceled() -> bool:
    return INTERRUPTED.is_set()


def _check_interrupted():
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


def percentile(values, fraction):
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float('nan')
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


TICKS = os.sysconf('SC_CLK_TCK')


def own_cpu() -> float:
    """CPU seconds of this process and of its children already waited for."""
    return sum(usage.ru_utime + usage.ru_stime for usage in (resource.getrusage(resource.RUSAGE_SELF),
                                                            resource.getrusage(resource.RUSAGE_CHILDREN)))


def service_cpu(service: Service) -> dict:
    """CPU seconds so far of the service's processes, each with its waited-for children (a worker's
    work horses and their ansible-playbook processes): {'workers', 'api', 'redis'}."""
    def of(pid):
        fields = Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()
        return sum(int(value) for value in fields[11:15]) / TICKS  # utime stime cutime cstime
    return {'workers': sum(of(worker.pid) for worker in service.workers), 'api': of(service.api.pid),
            'redis': of(service.redis.process.pid)}


def cpu_since(service: Service, before: dict) -> dict:
    now = service_cpu(service)
    return dict((name, now[name] - before[name]) for name in now)


def timestamp(value) -> float:
    """Epoch seconds of an API or ansible-runner datetime (naive ones are UTC)."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace('Z', '+00:00'))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def follow(client: httpx.Client, job_id: str):
    """Read the job's SSE stream to its `end` event. Returns (arrival times of the data lines,
    events, final status)."""
    arrivals, events, status = [], [], None
    name = None
    with client.stream('GET', '/api/v1/jobs/%s/events' % job_id, headers={'Accept': 'text/event-stream'},
                       timeout=httpx.Timeout(30, read=600)) as response:
        if response.status_code != 200:
            raise SystemExit('bench: following job %s: HTTP %d %s' % (job_id, response.status_code, response.read()))
        for line in response.iter_lines():
            if line.startswith('event:'):
                name = line[6:].strip()
            elif line.startswith('data:'):
                now = time.time()
                data = json.loads(line[5:])
                if name == 'end':
                    status = data['status']
                    break
                arrivals.append(now)
                events.append(data)
    return arrivals, events, status


def bare_run(args):
    """One in-process ansible-runner run of a one-host job (figure 2's baselines): its outcome,
    wall, and the stages of the service's breakdown (call -> first event `created` -> last -> return)."""
    import ansible_runner
    playbook, inventory, limit = args
    created = []

    def handler(event):
        created.append(event.get('created'))
        return False

    started = time.time()
    with tempfile.TemporaryDirectory(prefix='bench-bare-') as tmp:
        runner = ansible_runner.run(private_data_dir=tmp, project_dir=str(REPO), playbook=playbook,
                                    inventory=str(REPO / inventory), limit=limit, envvars=ENVVARS, quiet=True,
                                    event_handler=handler, cancel_callback=_canceled)
    ended = time.time()
    _check_interrupted()
    stamps = [timestamp(value) for value in created if value]
    return {'status': runner.status, 'rc': runner.rc, 'wall': ended - started, 'span': (os.getpid(), started, ended),
            'stages': _stages(started, stamps, ended) if stamps else None}


def _stages(started, stamps, ended):
    return {'start -> first event': min(stamps) - started, 'first -> last event': max(stamps) - min(stamps),
            'last event -> end': ended - max(stamps)}


# -- 1. launch overhead ----------------------------------------------------------------------------

def bare_first_event():
    args = json.dumps({'project': str(REPO), 'playbook': HELLO, 'inventory': str(REPO / INVENTORY),
                       'limit': 'node1', 'envvars': ENVVARS})
    started = time.time()
    completed = subprocess.run([sys.executable, '-c', FIRST_EVENT_SNIPPET, args], capture_output=True, text=True,
                               cwd=REPO, check=False)
    if completed.returncode != 0:
        raise SystemExit('bench: bare ansible-runner failed:\n%s' % (completed.stdout + completed.stderr)[-3000:])
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    if result['first_event'] is None or result['status'] != 'successful':
        raise SystemExit('bench: bare ansible-runner run %s without events' % result)
    return {'first': result['first_event'] - started, 'import': result['imported'] - started,
            'after_import': result['first_event'] - result['imported']}


def service_first_event(service: Service, admin: httpx.Client, viewer: httpx.Client):
    body = {'playbook': HELLO, 'inventory': INVENTORY, 'limit': 'node1'}
    posted = time.time()
    response = admin.post('/api/v1/jobs', json=body)
    answered = time.time()
    if response.status_code != 201:
        raise SystemExit('bench: POST /api/v1/jobs: HTTP %d %s' % (response.status_code, response.text))
    job_id = response.json()['id']
    arrivals, events, status = follow(viewer, job_id)
    if status != 'successful' or not events:
        raise SystemExit('bench: launch job %s ended %s with %d events' % (job_id, status, len(events)))
    job = viewer.get('/api/v1/jobs/%s' % job_id).json()
    first = arrivals[0]
    stages = {
        'POST answered': answered - posted,
        'POST -> created_at': timestamp(job['created_at']) - posted,
        'created_at -> enqueued_at': timestamp(job['enqueued_at']) - timestamp(job['created_at']),
        'enqueued_at -> started_at': timestamp(job['started_at']) - timestamp(job['enqueued_at']),
        'started_at -> first event created': timestamp(events[0]['created']) - timestamp(job['started_at']),
        'first event created -> seen on SSE': first - timestamp(events[0]['created']),
    }
    return {'first': first - posted, 'stages': stages, 'first_event': events[0]['event']}


def launch_overhead(service: Service, launches: int):
    bare, ours, stages, bare_split = [], [], [], []
    with service.client('admin') as admin, service.client('viewer') as viewer:
        bare_first_event()  # warm-up: page cache, .pyc files
        service_first_event(service, admin, viewer)
        for number in range(launches):
            result = bare_first_event()
            bare.append(result['first'])
            bare_split.append(result)
            result = service_first_event(service, admin, viewer)
            ours.append(result['first'])
            stages.append(result['stages'])
            if (number + 1) % 5 == 0 or number + 1 == launches:
                print('  %d/%d launches: bare %.3f s, service %.3f s' % (number + 1, launches, bare[-1], ours[-1]),
                      flush=True)
    return {'bare': bare, 'service': ours, 'stages': dict((name, statistics.median(stage[name] for stage in stages))
                                                          for name in stages[0]),
            'first_event': result['first_event'], 'bare_import': statistics.median(r['import'] for r in bare_split),
            'bare_after_import': statistics.median(r['after_import'] for r in bare_split)}


# -- 2. many jobs ----------------------------------------------------------------------------------

def many_service(service: Service, jobs: int):
    cpu = service_cpu(service)
    with service.client('admin') as admin:
        started = time.time()
        ids = []
        for number in range(jobs):
            response = admin.post('/api/v1/jobs', json={'playbook': HELLO, 'inventory': INVENTORY,
                                                           'limit': NODES[number % len(NODES)]})
            if response.status_code != 201:
                raise SystemExit('bench: POST /api/v1/jobs: HTTP %d %s' % (response.status_code, response.text))
            ids.append(response.json()['id'])
        posted = time.time()
        pending = ['queued', 'waiting', 'running']
        while True:
            page = admin.get('/api/v1/jobs', params={'status': pending, 'limit': 1}).json()
            if not page['jobs']:
                break
            time.sleep(0.25)
        seen_done = time.time()
        time.sleep(0.5)  # the last work horse reaped
        cpu = cpu_since(service, cpu)
        found, cursor = [], None
        while True:
            page = admin.get('/api/v1/jobs', params={'limit': 1000, **({'cursor': cursor} if cursor else {})}).json()
            found.extend(page['jobs'])
            cursor = page['next_cursor']
            if not cursor:
                break
        wanted = set(ids)
        ours = [job for job in found if job['id'] in wanted]
        stages = []
        for job in ours:
            events = admin.get('/api/v1/jobs/%s/events' % job['id'], params={'limit': 1000}).json()['events']
            stamps = [timestamp(event['created']) for event in events]
            if stamps:
                stages.append(_stages(timestamp(job['started_at']), stamps, timestamp(job['finished_at'])))
    statuses = {}
    for job in ours:
        statuses[job['status']] = statuses.get(job['status'], 0) + 1
    last_finish = max(timestamp(job['finished_at']) for job in ours if job['finished_at'])
    return {'wall': last_finish - started, 'wall_polled': seen_done - started, 'post_seconds': posted - started,
            'statuses': statuses, 'run_seconds': statistics.median(job['timings']['run_seconds'] for job in ours),
            'queued_max': max(job['timings']['queued_seconds'] for job in ours), 'stages': _median_stages(stages),
            **_lanes([(job['worker'], timestamp(job['started_at']), timestamp(job['finished_at'])) for job in ours]),
            'gap_parts': _gap_parts(service, ours), 'cpu': sum(cpu.values()), 'cpu_parts': cpu}


def _gap_parts(service: Service, jobs: list[dict]):
    """The gap between two jobs on a worker, in parts, from RQ's own times of each job (its hash
    in Redis): A finished_at -> A's RQ ended_at (the work horse's tail) -> B's RQ started_at (horse
    exit, the worker dequeues and forks) -> B started_at (the new horse's set-up, running in the store)."""
    redis = service.redis_client()
    rq_times = {}
    for job in jobs:
        values = redis.hmget('rq:job:%s' % job['id'], 'started_at', 'ended_at')
        if all(values):
            rq_times[job['id']] = [timestamp(value.decode()) for value in values]
    redis.close()
    by_worker = {}
    for job in jobs:
        by_worker.setdefault(job['worker'], []).append(job)
    parts = []
    for spans in by_worker.values():
        spans.sort(key=lambda job: job['started_at'])
        for previous, following in zip(spans, spans[1:]):
            if previous['id'] in rq_times and following['id'] in rq_times:
                parts.append({'horse tail': rq_times[previous['id']][1] - timestamp(previous['finished_at']),
                              'exit, dequeue, fork': rq_times[following['id']][0] - rq_times[previous['id']][1],
                              'horse set-up': timestamp(following['started_at']) - rq_times[following['id']][0]})
    if not parts:
        return None
    return dict((name, statistics.mean(part[name] for part in parts)) for name in parts[0])


def _lanes(runs):
    """Mean run and mean idle gap (one run's end -> the next run's start on the same worker
    process or pool process): jobs / lanes x (run + gap) is the wall."""
    by_lane = {}
    for lane, start, end in runs:
        by_lane.setdefault(lane, []).append((start, end))
    gaps = []
    for spans in by_lane.values():
        spans.sort()
        gaps += [following[0] - previous[1] for previous, following in zip(spans, spans[1:])]
    return {'run_mean': statistics.mean(end - start for _, start, end in runs),
            'gap_mean': statistics.mean(gaps) if gaps else float('nan'),
            'gap_median': statistics.median(gaps) if gaps else float('nan'), 'lanes': len(by_lane)}


def _median_stages(stages):
    return dict((name, statistics.median(stage[name] for stage in stages)) for name in stages[0])


def many_bare(jobs: int, parallel: int):
    work = [(HELLO, INVENTORY, NODES[number % len(NODES)]) for number in range(jobs)]
    cpu = own_cpu()
    started = time.perf_counter()
    if parallel == 1:
        results = [bare_run(item) for item in work]
    else:
        with multiprocessing.get_context('fork').Pool(parallel) as pool:
            results = list(pool.imap_unordered(bare_run, work))
            pool.close()
            pool.join()  # waited for: their CPU counts as this process's children's
    wall = time.perf_counter() - started
    cpu = own_cpu() - cpu
    statuses = {}
    for run in results:
        key = run['status'] if run['rc'] == 0 else '%s (rc %s)' % (run['status'], run['rc'])
        statuses[key] = statuses.get(key, 0) + 1
    return {'wall': wall, 'statuses': statuses, 'run_seconds': statistics.median(run['wall'] for run in results),
            'cpu': cpu,
            'stages': _median_stages([run['stages'] for run in results if run['stages']]),
            **_lanes([run['span'] for run in results])}


# -- 3. event ingest -------------------------------------------------------------------------------

def write_ingest_files(hosts: int):
    directory = REPO / BENCH_DIR
    directory.mkdir(parents=True, exist_ok=True)
    inventory = INGEST_INVENTORY % hosts
    (REPO / inventory).write_text(json.dumps({'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': '{{ ansible_playbook_python }}'},
        'hosts': dict(('bench%04d' % number, {}) for number in range(1, hosts + 1))}}, indent=1))
    (REPO / INGEST_PLAYBOOK).write_text(json.dumps([{
        'name': 'Event ingest', 'hosts': 'all', 'gather_facts': False,
        'tasks': [{'name': 'Debug %d' % task, 'ansible.builtin.debug': {'msg': '{{ inventory_hostname }} %d' % task}}
                  for task in range(1, INGEST_TASKS + 1)]}], indent=1))
    return inventory


def ingest_bare(inventory: str, forks: int):
    """The play's own event production: in-process ansible-runner, a handler that only counts."""
    import ansible_runner
    arrivals, created, raw = [], [], []

    def handler(event):
        arrivals.append(time.time())
        created.append(event.get('created'))
        raw.append(event)
        return False

    with tempfile.TemporaryDirectory(prefix='bench-bare-') as tmp:
        cpu = own_cpu()
        started = time.time()
        runner = ansible_runner.run(private_data_dir=tmp, project_dir=str(REPO), playbook=INGEST_PLAYBOOK,
                                    inventory=str(REPO / inventory), forks=forks, envvars=ENVVARS, quiet=True,
                                    event_handler=handler, cancel_callback=_canceled)
        ended = time.time()
        cpu = own_cpu() - cpu
    _check_interrupted()
    if runner.status != 'successful':
        raise SystemExit('bench: bare ingest play ended %s (rc %s)' % (runner.status, runner.rc))
    stamps = [timestamp(value) for value in created if value]
    return {'events': len(arrivals), 'wall': ended - started, 'cpu': cpu, 'cpu_api': 0.0,
            'rate_created': len(stamps) / (max(stamps) - min(stamps)),
            'rate_seen': len(arrivals) / (arrivals[-1] - arrivals[0]), 'raw': raw}


def ingest_service(service: Service, inventory: str, forks: int, live: bool):
    """The ingest play as a job. live: follow its SSE stream (the rate seen through the API);
    else only look at the job's status every 0.5 s, so no live reader competes for the CPU."""
    cpu = service_cpu(service)
    with service.client('admin') as admin, service.client('viewer') as viewer:
        started = time.time()
        response = admin.post('/api/v1/jobs', json={'playbook': INGEST_PLAYBOOK, 'inventory': inventory,
                                                       'forks': forks})
        if response.status_code != 201:
            raise SystemExit('bench: POST /api/v1/jobs: HTTP %d %s' % (response.status_code, response.text))
        job_id = response.json()['id']
        if live:
            arrivals, _, status = follow(viewer, job_id)
        else:
            arrivals, status = [], service.wait(job_id, timeout=1800)['status']
        ended = time.time()
        job = viewer.get('/api/v1/jobs/%s' % job_id).json()
        time.sleep(0.5)  # the work horse reaped
        cpu = cpu_since(service, cpu)
    if status != 'successful':
        raise SystemExit('bench: ingest job %s ended %s: %s' % (job_id, status, job['status_reason']))
    stored = service.events(job_id)
    stamps = [timestamp(event['created']) for event in stored]
    last_created = max(stamps)
    return {'events': len(stored), 'events_seen': len(arrivals), 'wall': job['timings']['run_seconds'],
            'rate_created': len(stored) / (last_created - min(stamps)),
            'rate_seen': len(arrivals) / (arrivals[-1] - arrivals[0]) if live else None,
            'lag_last': arrivals[-1] - last_created if live else None,  # made by ansible-runner -> seen on the API
            'cpu': sum(cpu.values()), 'cpu_api': cpu['api'], 'job_id': job_id}


def replay(service: Service, job_id: str, raw: list[dict], rounds: int):
    """The store's own pace: the real events of a bare run, handed as fast as possible to the worker's
    EventWriter (redaction, row building, batched INSERTs into the service's store, Redis announce),
    appended to the finished job `job_id` after its own events. Events per second, best of `rounds`."""
    from dbfleet.settings import Settings
    from runner_service.runtime import Runtime
    from runner_service.secret_box import Redactor
    from runner_service.worker.events import EventWriter

    runtime = Runtime(settings=Settings(store_url=service.store_url, redis_url=service.redis.url,
                                        var_dir=service.directory / 'var', project_dir=REPO))
    rates = []
    try:
        for _ in range(rounds):
            events = [dict(event, uuid=uuid.uuid4().hex) for event in raw]
            writer = EventWriter(runtime, job_id, Redactor(), offset=runtime.store.events.last_seq(job_id))
            started = time.perf_counter()
            for event in events:
                writer.add(event)
            writer.close()
            elapsed = time.perf_counter() - started
            if writer.written != len(events):
                raise SystemExit('bench: replay stored %d of %d events' % (writer.written, len(events)))
            rates.append(len(events) / elapsed)
    finally:
        runtime.close()
    return max(rates), statistics.median(rates)


def ingest(service: Service, hosts: int, forks: int, rounds: int):
    inventory = write_ingest_files(hosts)
    bare, ours, quiet = [], [], []
    try:
        for number in range(rounds):  # interleaved
            if bare:
                bare[-1].pop('raw')
            bare.append(ingest_bare(inventory, forks))
            ours.append(ingest_service(service, inventory, forks, live=True))
            quiet.append(ingest_service(service, inventory, forks, live=False))
            print('  round %d/%d: bare %d events %.0f/s, %.1f s; service followed live: %d stored, %.0f/s (created), '
                  '%.0f/s (seen), %.1f s; not followed: %.0f/s (created), %.1f s' % (
                      number + 1, rounds, bare[-1]['events'], bare[-1]['rate_created'], bare[-1]['wall'],
                      ours[-1]['events'], ours[-1]['rate_created'], ours[-1]['rate_seen'], ours[-1]['wall'],
                      quiet[-1]['rate_created'], quiet[-1]['wall']), flush=True)
        capacity = replay(service, ours[-1]['job_id'], bare[-1]['raw'], 3)
        print('  replay of %d events through EventWriter into the store: %.0f/s (best of 3)' % (
            len(bare[-1]['raw']), capacity[0]), flush=True)
    finally:
        shutil.rmtree(REPO / BENCH_DIR, ignore_errors=True)
    return bare, ours, quiet, capacity


# -- main ------------------------------------------------------------------------------------------

def median_of(runs, key):
    return statistics.median(run[key] for run in runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--launches', type=int, default=20, help='sequential launches per side (0 skips figure 1)')
    parser.add_argument('--jobs', type=int, default=200, help='one-host jobs per side (0 skips figure 2)')
    parser.add_argument('--hosts', type=int, default=500, help='inventory hosts of the ingest play (0 skips 3)')
    parser.add_argument('--forks', type=int, default=50, help='forks of the ingest play')
    parser.add_argument('--ingest-rounds', type=int, default=3, help='ingest runs per side (median)')
    parser.add_argument('--workers', type=int, default=2, help='service worker processes')
    parser.add_argument('--no-record', action='store_true', help='print only; leave docs/benchmarks.md alone')
    options = parser.parse_args()
    command = ' '.join(['.venv/bin/python', 'bench/runner.py'] + sys.argv[1:])
    signal.signal(signal.SIGINT, _interrupt)

    lines = []
    section = 0
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix='dbfleet-bench-') as tmp:
        service = Service(Path(tmp), workers=options.workers, reconcile_seconds=5,
                          inventory_dirs=json.dumps(['inventories', 'tests/service', BENCH_DIR]))
        try:
            service.start()
            if options.launches:
                print('launch overhead: %d launches per side, alternating' % options.launches, flush=True)
                launch = launch_overhead(service, options.launches)
                bare50, ours50 = percentile(launch['bare'], .5), percentile(launch['service'], .5)
                lines += [
                    'Launch overhead: %d sequential launches of `%s` (limit node1) per side, alternating. Service: '
                    'just before `POST /api/v1/jobs` -> first event (`%s`) arriving on the job\'s SSE stream, %d '
                    'workers. Bare: a fresh `python -c` running `ansible_runner.run(quiet=True, event_handler=...)`, '
                    'process spawn -> first event handler call.' % (
                        options.launches, HELLO, launch['first_event'], options.workers), '',
                    '| | p50 | p95 | min | max |', '|---|---|---|---|---|']
                for name, values in (('service (API -> first event)', launch['service']),
                                     ('bare ansible-runner (fresh process)', launch['bare'])):
                    lines.append('| %s | %.3f s | %.3f s | %.3f s | %.3f s |' % (
                        name, percentile(values, .5), percentile(values, .95), min(values), max(values)))
                lines += ['', 'Added by the service at p50: **%+.3f s** (goal <= 0.3 s); at p95: %+.3f s.' % (
                    ours50 - bare50, percentile(launch['service'], .95) - percentile(launch['bare'], .95)), '',
                    'Where the service\'s time goes (medians, from the job record and the first event\'s `created`): '
                    + '; '.join('%s %.3f s' % (name, value) for name, value in launch['stages'].items())
                    + '. The bare process: spawn -> `ansible_runner` imported %.3f s, then -> first event %.3f s '
                    '(the worker imports ansible_runner once, before it forks).' % (
                        launch['bare_import'], launch['bare_after_import']), '']
                print('\n'.join(lines[section:]), flush=True)
                section = len(lines)

            if options.jobs:
                print('many jobs: %d one-host jobs, two at a time (bare)' % options.jobs, flush=True)
                two = many_bare(options.jobs, 2)
                print('  %.1f s %s' % (two['wall'], two['statuses']), flush=True)
                print('many jobs: service, %d workers' % options.workers, flush=True)
                ours = many_service(service, options.jobs)
                print('  %.1f s %s' % (ours['wall'], ours['statuses']), flush=True)
                print('many jobs: one after another (bare)', flush=True)
                serial = many_bare(options.jobs, 1)
                print('  %.1f s %s' % (serial['wall'], serial['statuses']), flush=True)
                ok = ours['statuses'] == {'successful': options.jobs}
                lines += [
                    'Many jobs: %d one-host jobs of `%s`, limit cycling over node1..node3. Service: posted at once '
                    '(sequential POSTs, %.1f s), %d workers, wall from the first POST to the last `finished_at`. '
                    'Bare: in-process `ansible_runner.run`, one after another, and two at a time (2 forked processes).'
                    % (options.jobs, HELLO, ours['post_seconds'], options.workers), '',
                    '| | wall | mean run | mean gap between runs | median: run | start -> first event '
                    '| first -> last event | last event -> end | outcome |', '|---|---|---|---|---|---|---|---|---|']
                for name, figures in (('service, %d workers' % options.workers, ours), ('bare, two at a time', two),
                                      ('bare, one after another', serial)):
                    lines.append('| %s | %.1f s | %.3f s | %.3f s | %.3f s | %s | %s |' % (
                        name, figures['wall'], figures['run_mean'], figures['gap_mean'], figures['run_seconds'],
                        ' | '.join('%.3f s' % value for value in figures['stages'].values()),
                        _statuses(figures['statuses'])))
                lines += [
                    '', 'Ratio service / two at a time: **%.2f** (goal <= 1.10); service / one after another: %.2f. '
                    'Every service job successful: %s. All terminal as seen by polling the API: %.1f s; longest wait '
                    'in the queue %.1f s.' % (ours['wall'] / two['wall'], ours['wall'] / serial['wall'],
                                              'yes' if ok else '**no**', ours['wall_polled'], ours['queued_max']),
                    '(Service run: `started_at` -> first event `created` -> last -> `finished_at`; the gap: '
                    '`finished_at` -> the next job\'s `started_at` on the same worker (RQ: the work horse ends, the '
                    'worker dequeues and forks the next). Bare: the call of `ansible_runner.run` -> ... -> its '
                    'return; the gap: the pool\'s hand-over and the temporary directory.)']
                lines.append('CPU seconds per job (less sensitive than wall to the machine\'s load; service: workers '
                             'with their work horses and ansible, API, Redis; bare: the bench process and its '
                             'children): service %.3f s (%s), '
                             'two at a time %.3f s, one after another %.3f s; service / two at a time %.2f.' % (
                                 ours['cpu'] / options.jobs, ', '.join('%s %.3f s' % (name, value / options.jobs)
                                                                       for name, value in ours['cpu_parts'].items()),
                                 two['cpu'] / options.jobs, serial['cpu'] / options.jobs, ours['cpu'] / two['cpu']))
                if ours['gap_parts']:
                    lines.append('The service\'s gap, mean parts (RQ\'s own job times): ' + '; '.join(
                        '%s %.3f s' % (name, value) for name, value in ours['gap_parts'].items()) + '.')
                lines.append('')
                print('\n'.join(lines[section:]), flush=True)
                section = len(lines)

            if options.hosts:
                print('event ingest: %d hosts, forks %d, %d rounds' % (options.hosts, options.forks,
                                                                       options.ingest_rounds), flush=True)
                bare, ours, quiet, capacity = ingest(service, options.hosts, options.forks, options.ingest_rounds)
                lines += [
                    'Event ingest: one play over %d generated inventory hosts (connection local, gather_facts off, '
                    '%d `debug` tasks), forks %d; median of %d runs per side, interleaved. Rate from `created` = '
                    'events / (last - first `created`, the time ansible-runner made each event); rate seen = events '
                    '/ (arrival of the last - the first event on the job\'s SSE stream).' % (
                        options.hosts, INGEST_TASKS, options.forks, options.ingest_rounds), '',
                    '| | events | rate from `created` | rate seen | play wall | CPU (of it the API) |',
                    '|---|---|---|---|---|---|',
                    '| service, job followed live on SSE | %d | **%.0f /s** | **%.0f /s** | %.1f s '
                    '| %.1f s (%.1f s) |' % (
                        median_of(ours, 'events'), median_of(ours, 'rate_created'), median_of(ours, 'rate_seen'),
                        median_of(ours, 'wall'), median_of(ours, 'cpu'), median_of(ours, 'cpu_api')),
                    '| service, nobody following | %d | %.0f /s | - | %.1f s | %.1f s (%.1f s) |' % (
                        median_of(quiet, 'events'), median_of(quiet, 'rate_created'), median_of(quiet, 'wall'),
                        median_of(quiet, 'cpu'), median_of(quiet, 'cpu_api')),
                    '| bare ansible-runner, counting handler | %d | %.0f /s | %.0f /s | %.1f s | %.1f s |' % (
                        median_of(bare, 'events'), median_of(bare, 'rate_created'), median_of(bare, 'rate_seen'),
                        median_of(bare, 'wall'), median_of(bare, 'cpu')),
                    '', 'Service rate / the play\'s own rate: followed live %.2f (from `created`), %.2f (seen); '
                    'nobody following %.2f; goal >= 2,000 events/s. The last event was on the API %.3f s (median) '
                    'after ansible-runner made it. Play wall: the job\'s `run_seconds`; bare: the '
                    '`ansible_runner.run` call, whose "rate seen" is the arrival of the events at its handler. CPU: '
                    'the service\'s processes (workers with their work horses and ansible, API, Redis; not the '
                    'bench\'s own SSE reader); bare: the bench process and its children.' % (
                        median_of(ours, 'rate_created') / median_of(bare, 'rate_created'),
                        median_of(ours, 'rate_seen') / median_of(bare, 'rate_seen'),
                        median_of(quiet, 'rate_created') / median_of(bare, 'rate_created'),
                        median_of(ours, 'lag_last')),
                    '', 'The store\'s own pace, without Ansible as the bound: the %d events of a bare run handed as '
                    'fast as possible to the worker\'s `EventWriter` (redaction, rows, batched INSERTs into the same '
                    'SQLite store, Redis announce): **%.0f events/s** (best of 3; median %.0f).' % (
                        len(bare[-1]['raw']), capacity[0], capacity[1]), '']
                print('\n'.join(lines[section:]), flush=True)
        finally:
            service.stop()

    lines.append('Load average when it started: %.1f %.1f %.1f; at the end: %.1f %.1f %.1f (the machine is shared).'
                 % (load + os.getloadavg()))
    print(lines[-1])
    if not options.no_record:
        record('runner', 'Runner service (bench/runner.py)', command, lines)


def _statuses(statuses: dict) -> str:
    return ', '.join('%d %s' % (count, status) for status, count in sorted(statuses.items()))


if __name__ == '__main__':
    main()
