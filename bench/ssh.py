#!/usr/bin/env python3
"""Over SSH (issue 14, section 5): launch, event ingest and lanes with the hosts reached over SSH.

The namespace fleet (devtools/netfleet, `make fleet`; NETFLEET_ID picks the fleet) gives four
database hosts with their own sshd and host keys, checked. A private service (tests/service/
harness.py: 2 workers on this machine, SQLite store) reaches them through job templates that
name an SSH credential holding the fleet's key (each run gets its own ssh-agent); the baselines
run the same plays with bare ansible-runner in-process and `--private-key`. Plays use `raw` only,
so what is measured is SSH and the runner, not a module's Python start-up. Alias hosts (many
inventory names over the four addresses, as `ansible_host`) make the larger runs.

1. Launch over SSH: a one-host `raw: hostname` job on db1, launched N times alternating with the
   baseline: wall from POST to the job's `finished_at` (service) against the run's wall (bare);
   p50 / p95 and the service's added time at p50.
2. Event ingest over SSH: one job over --hosts alias hosts (3 raw tasks, forks 20): events stored
   per second (from the events' `created` times), against the play's own event rate bare.
3. Lanes over SSH: --lane-hosts alias hosts, each `raw: sleep` for a skewed time (0.2..6 s), with
   a backup history of those times for the planner (as bench/plans.py), in 4 lanes spread over
   the 2 workers: finishing time / lower bound max(longest host, total / 4) from the measured
   per-host times, and AWX-style round-robin slicing of the same measured times.

    .venv/bin/python bench/ssh.py [--launches 10] [--hosts 100] [--lane-hosts 40]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from bench.report import record  # noqa: E402
from bench.runner import ENVVARS, percentile, timestamp  # noqa: E402
from dbfleet.store import open_store  # noqa: E402
from devtools.netfleet.harness import NetFleet  # noqa: E402
from devtools.service_harness import INVENTORY_DIRS, Service  # noqa: E402

COMMAND = '.venv/bin/python bench/ssh.py'
BENCH_DIR = 'var/bench-ssh/%s' % os.environ.get('NETFLEET_ID', '0')  # under the project, git-ignored
LANES = 4
FORKS = 20
DB_HOSTS = ('db1', 'db2', 'db3', 'db4')


def plays(directory: Path) -> None:
    def play(name: str, tasks: list[dict]) -> None:
        (directory / name).write_text(yaml.safe_dump([{'name': name, 'hosts': 'all', 'gather_facts': False,
                                                       'tasks': tasks}], sort_keys=False))
    play('hostname.yml', [{'name': 'Hostname', 'ansible.builtin.raw': 'hostname', 'changed_when': False}])
    play('ingest.yml', [{'name': 'Task %d' % number, 'ansible.builtin.raw': 'echo %d' % number,
                         'changed_when': False} for number in range(1, 4)])
    play('work.yml', [{'name': 'Work', 'ansible.builtin.raw': 'sleep {{ work_seconds }}', 'changed_when': False}])


def alias_inventory(netfleet: NetFleet, path: Path, count: int, extra: dict | None = None) -> list[str]:
    """`count` inventory hosts over the four database hosts' addresses, with the fleet's SSH settings."""
    base = yaml.safe_load(netfleet.inventory())
    settings = dict(base['all']['children']['mysql']['hosts']['db1'])
    settings.pop('ansible_host', None)
    settings.pop('ansible_python_interpreter', None)
    names = ['ssh%03d' % index for index in range(count)]
    hosts = {name: dict(settings, ansible_host=netfleet.host(DB_HOSTS[index % len(DB_HOSTS)]).address,
                        **((extra or {}).get(name) or {})) for index, name in enumerate(names)}
    path.write_text(yaml.safe_dump({'all': {'hosts': hosts}}))
    return names


def bare(directory: Path, playbook: str, inventory: Path, key: Path, limit: str | None = None,
         forks: int = FORKS) -> dict:
    import ansible_runner
    created = []

    def handler(event):
        created.append(event.get('created'))
        return False

    started = time.time()
    with tempfile.TemporaryDirectory(prefix='bench-ssh-') as tmp:
        runner = ansible_runner.run(private_data_dir=tmp, project_dir=str(REPO), playbook=str(directory / playbook),
                                    inventory=str(inventory), limit=limit, forks=forks, envvars=ENVVARS, quiet=True,
                                    cmdline='--private-key %s' % key, event_handler=handler)
    wall = time.time() - started
    if runner.status != 'successful':
        raise SystemExit('bench: bare run of %s ended %s' % (playbook, runner.status))
    stamps = sorted(timestamp(value) for value in created if value)
    return {'wall': wall, 'events': len(stamps), 'span': stamps[-1] - stamps[0]}


def launch(service: Service, template: str) -> dict:
    with service.client('operator') as operator:
        response = operator.post('/api/v1/templates/%s/launch' % template, json={})
    if response.status_code != 201:
        raise SystemExit('bench: launching %s: HTTP %d %s' % (template, response.status_code, response.text))
    done = service.wait(response.json()['id'], timeout=3600)
    if done['status'] != 'successful':
        raise SystemExit('bench: job %s of %s ended %s: %s' % (done['id'], template, done['status'],
                                                               done['status_reason']))
    return done


def template(service: Service, name: str, playbook: str, inventory: str, **fields) -> None:
    with service.client('admin') as admin:
        response = admin.post('/api/v1/templates', json={'name': name, 'playbook': playbook, 'inventory': inventory,
                                                         'credentials': ['fleet-key'], **fields})
    if response.status_code != 201:
        raise SystemExit('bench: template %s: HTTP %d %s' % (name, response.status_code, response.text))


def launches(service: Service, directory: Path, relative: str, inventory: Path, key: Path, count: int) -> list[str]:
    template(service, 'ssh-hostname', relative + '/hostname.yml', relative + '/fleet.yml', limit='db1')
    bare(directory, 'hostname.yml', inventory, key, limit='db1')  # warm-up: page cache, known_hosts
    launch(service, 'ssh-hostname')
    ours, theirs = [], []
    for _ in range(count):
        theirs.append(bare(directory, 'hostname.yml', inventory, key, limit='db1')['wall'])
        posted = time.time()
        done = launch(service, 'ssh-hostname')
        ours.append(timestamp(done['finished_at']) - posted)
    added = statistics.median(ours) - statistics.median(theirs)
    print('launch over ssh: service %.2f s, bare %.2f s (p50)' % (statistics.median(ours), statistics.median(theirs)))
    return ['| launch: a one-host `raw: hostname` on db1, POST to finished_at / the run (%d each, alternating) | '
            '%.2f / %.2f s | %.2f / %.2f s | **%+.2f s** at p50 |'
            % (count, statistics.median(ours), percentile(ours, 0.95), statistics.median(theirs),
               percentile(theirs, 0.95), added)]


def ingest(service: Service, netfleet: NetFleet, directory: Path, relative: str, hosts: int) -> list[str]:
    inventory = directory / 'ingest.hosts.yml'
    alias_inventory(netfleet, inventory, hosts)
    template(service, 'ssh-ingest', relative + '/ingest.yml', relative + '/' + inventory.name, forks=FORKS)
    baseline = bare(directory, 'ingest.yml', inventory, netfleet.key)
    done = launch(service, 'ssh-ingest')
    events = service.events(done['id'])
    stamps = sorted(timestamp(event['created']) for event in events if event['created'])
    rate, bare_rate = len(events) / (stamps[-1] - stamps[0]), baseline['events'] / baseline['span']
    print('ingest over ssh: %.0f events/s stored, %.0f bare' % (rate, bare_rate))
    return ['| event ingest: %d alias hosts x 3 raw tasks, forks %d: events per second | %d events, **%.0f/s** | '
            '%d events, %.0f/s | %.2f x |' % (hosts, FORKS, len(events), rate, baseline['events'], bare_rate,
                                              rate / bare_rate)]


def lanes(service: Service, netfleet: NetFleet, directory: Path, relative: str, hosts: int) -> list[str]:
    rng = random.Random(4711)
    work = [round(min(6.0, max(0.2, rng.lognormvariate(0, 1.0) * 1.0)), 2) for _ in range(hosts)]
    inventory = directory / 'lanes.hosts.yml'
    names = alias_inventory(netfleet, inventory, hosts,
                            {'ssh%03d' % index: {'work_seconds': seconds} for index, seconds in enumerate(work)})
    overhead = 1.0  # Ansible's start-up and the SSH login per host run, part of every host's time
    with open_store(service.store_url) as store:
        for name, seconds in zip(names, work):  # the history the planner estimates from, as bench/plans.py
            started = dt.datetime.now(dt.timezone.utc)
            store.backups.record(name, method='logical', status='ok', started_at=started,
                                 finished_at=started + dt.timedelta(seconds=seconds + overhead),
                                 duration_seconds=seconds + overhead, bytes=int(seconds * 100 * 2**20),
                                 path='/bench/%s' % name)
    template(service, 'ssh-lanes', relative + '/work.yml', relative + '/' + inventory.name, plan={'lanes': LANES})
    done = launch(service, 'ssh-lanes')
    with service.client('viewer') as viewer:
        runs = viewer.get('/api/v1/jobs/%s/runs' % done['id']).json()
    spans = {run['host']: (timestamp(run['started_at']), timestamp(run['finished_at'])) for run in runs}
    measured = {host: end - start for host, (start, end) in spans.items()}
    finish = max(end for _, end in spans.values()) - min(start for start, _ in spans.values())
    bound = max(max(measured.values()), sum(measured.values()) / LANES)
    ordered = [measured[name] for name in names]
    sliced = max(sum(ordered[lane::LANES]) for lane in range(LANES))
    workers = {run['worker'].split('/')[1] for run in runs if run['worker']}
    print('lanes over ssh: finish %.1f s, bound %.1f s: %.3f (round-robin %.3f), %d workers'
          % (finish, bound, finish / bound, sliced / bound, len(workers)))
    return ['| lanes: %d alias hosts, `raw: sleep` 0.2..6 s (log-normal, history recorded), %d lanes over %d '
            'workers: finish / bound '
            'max(longest, total / %d) | %.1f s / %.1f s = **%.3f** | round-robin slicing of the same times: %.3f | |'
            % (hosts, LANES, len(workers), LANES, finish, bound, finish / bound, sliced / bound)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--launches', type=int, default=10)
    parser.add_argument('--hosts', type=int, default=100)
    parser.add_argument('--lane-hosts', type=int, default=40)
    parser.add_argument('--no-record', action='store_true')
    args = parser.parse_args()
    if min(args.launches, args.hosts, args.lane_hosts) < 1:
        parser.error('--launches, --hosts and --lane-hosts must be positive')
    netfleet = NetFleet()
    netfleet.start()
    directory = REPO / BENCH_DIR
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    plays(directory)
    fleet_inventory = directory / 'fleet.yml'
    fleet_inventory.write_text(netfleet.inventory())
    work = Path(tempfile.mkdtemp(prefix='dbfleet-bench-ssh-'))
    service = Service(work, inventory_dirs=json.dumps(json.loads(INVENTORY_DIRS) + [BENCH_DIR]))
    lines = []
    try:
        service.start()
        with service.client('admin') as admin:
            made = admin.post('/api/v1/credentials', json={'name': 'fleet-key', 'kind': 'ssh', 'username': 'root',
                                                           'ssh_key': netfleet.key.read_text()})
            if made.status_code != 201:
                raise SystemExit('bench: credential: HTTP %d %s' % (made.status_code, made.text))
        lines += launches(service, directory, BENCH_DIR, fleet_inventory, netfleet.key, args.launches)
        lines += ingest(service, netfleet, directory, BENCH_DIR, args.hosts)
        lines += lanes(service, netfleet, directory, BENCH_DIR, args.lane_hosts)
    finally:
        service.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)
    body = [
        'The namespace fleet\'s four database hosts over SSH (host keys checked); the service (2 workers on this '
        'machine, SQLite store) runs templates whose SSH credential holds the fleet\'s key (an ssh-agent per run); '
        'the baseline runs the same play in-process with bare ansible-runner and `--private-key`. Plays use `raw`.',
        '',
        '| Figure | dbfleet (p50 / p95) | bare ansible-runner (p50 / p95) | |',
        '|---|---|---|---|',
    ] + lines + ['', 'Load average when it ended: %s (the machine is shared).'
                 % ' '.join('%.1f' % value for value in os.getloadavg())]
    print('\n'.join(body))
    if not args.no_record:
        record('ssh', 'Over SSH: launch, event ingest and lanes against the namespace fleet', COMMAND, body)


if __name__ == '__main__':
    main()
