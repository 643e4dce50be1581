"""Workers on other machines: `dbfleet worker` processes on the worker namespace hosts join the
service through Redis and the store on MariaDB (both on the platform's address, nothing else
shared but the installed software), take the jobs of the queue they listen to, run them on their
own host, and a job whose worker host dies is retried on the other one. One job's lanes over
the SSH fleet run on both worker hosts, and go on when one of them dies."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
import uuid

import pytest
from cryptography.fernet import Fernet

from tests.netfleet.conftest import dbfleet_processes, remote_env, wait_until
from devtools.service_harness import INVENTORY, REPO, Service

pytestmark = [pytest.mark.netfleet, pytest.mark.service]

WHERE = 'where.yml'
WORKER_HOSTS = ('worker1', 'worker2')
# The SSH fleet's inventory for this NETFLEET_ID (git-ignored, under the project as the API requires).
SSH_DIR = 'var/worker-tests/%s' % os.environ.get('NETFLEET_ID', '0')


@pytest.fixture(scope='module')
def service(netfleet, platform, tmp_path_factory):
    key = Fernet.generate_key().decode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('DBFLEET_SECRET_KEY', key)
        service = Service(tmp_path_factory.mktemp('workers-service'), workers=0, store_url=platform.store_url,
                          redis_url=platform.redis_url, schedulers=1,
                          inventory_dirs=json.dumps(['inventories', 'tests/service', SSH_DIR])).start()
        remote = {}
        try:
            for host in WORKER_HOSTS:
                remote[host] = start_remote_worker(netfleet, service, host, key)
            wait_until(lambda: health(service)['workers']['per_queue'].get('dc1') == len(WORKER_HOSTS),
                       'both worker hosts listening to dc1')
            service.remote_workers = remote
            service.secret_key = key
            yield service
        finally:
            for host, pid in remote.items():
                stop_remote_worker(netfleet, host, pid)
            service.stop()


def start_remote_worker(netfleet, service, host: str, key: str) -> int:
    """`dbfleet worker --queue dc1` on the worker host: its own hostname and state directory; Redis,
    the store and the secret key from the platform."""
    return netfleet.spawn(host, [sys.executable, '-m', 'runner_service.cli', 'worker', '--queue', 'dc1'],
                          service.directory / ('worker-%s.log' % host),
                          env=remote_env(service, key, DBFLEET_VAR_DIR='/var/lib/dbfleet/worker'))


def stop_remote_worker(netfleet, host: str, pid: int):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and worker_processes(netfleet, host):
        time.sleep(0.2)
    for leftover in worker_processes(netfleet, host):
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)


def worker_processes(netfleet, host: str) -> list[int]:
    """The dbfleet worker of the host and everything under it (work horse, ansible)."""
    return dbfleet_processes(netfleet, host)


def health(service) -> dict:
    import httpx
    return httpx.get(service.url + '/healthz', timeout=10).json()


@pytest.fixture
def release_file():
    """A file both worker hosts see (under the checkout; /tmp is each host's own)."""
    path = REPO / 'var' / ('release-%s' % uuid.uuid4().hex)
    yield path
    path.unlink(missing_ok=True)


def launch(service, **extra) -> dict:
    return service.launch(WHERE, role='admin', inventory=INVENTORY, limit='node1', queue='dc1', **extra)


def ran_on(service, job_id: str) -> str:
    with service.client('viewer') as client:
        text = client.get('/api/v1/jobs/%s/stdout' % job_id).text
    hosts = [name for name in WORKER_HOSTS if 'ran on %s' % name in text]
    assert len(hosts) == 1, text
    return hosts[0]


def test_jobs_run_on_the_worker_hosts_and_both_take_work(service, release_file):
    held = [launch(service, extra_vars={'release': str(release_file)}) for _ in WORKER_HOSTS]
    # Both held jobs run at once: each worker runs one job at a time, so one is on each host.
    wait_until(lambda: all(service.job(job['id'])['status'] == 'running' for job in held), 'both jobs running')
    release_file.touch()
    done = [service.wait(job['id']) for job in held]
    assert [job['status'] for job in done] == ['successful', 'successful']
    assert sorted(ran_on(service, job['id']) for job in done) == list(WORKER_HOSTS)
    # The store names the machine each ran on (worker = host/pid of the worker process).
    assert sorted(job['worker'].split('/')[0] for job in done) == list(WORKER_HOSTS)


def test_a_job_whose_worker_host_dies_is_retried_on_the_other(netfleet, service, release_file):
    job = launch(service, extra_vars={'release': str(release_file)}, max_retries=1, retry_backoff=0)
    wait_until(lambda: service.job(job['id'])['status'] == 'running', 'the job running')
    lost_host = service.job(job['id'])['worker'].split('/')[0]
    survivor = next(host for host in WORKER_HOSTS if host != lost_host)
    # The worker host dies: every process of its worker (worker, work horse, ansible) SIGKILLed at once.
    for pid in worker_processes(netfleet, lost_host):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        wait_until(lambda: service.job(job['id'])['attempt'] == 2, 'the job retried after its worker was lost',
                   timeout=120)
        release_file.touch()
        done = service.wait(job['id'], timeout=180)
        assert done['status'] == 'successful' and done['attempt'] == 2
        assert ran_on(service, job['id']) == survivor
        assert done['worker'].split('/')[0] == survivor
    finally:
        service.remote_workers[lost_host] = start_remote_worker(netfleet, service, lost_host, service.secret_key)


# -- one job's lanes over both worker hosts -------------------------------------------------------

@pytest.fixture(scope='module')
def ssh_template(netfleet, service, prepared):
    """A template over the SSH fleet's database hosts in 4 lanes on dc1, with the fleet's key as its
    SSH credential and one retry."""
    from devtools.netfleet.harness import PASSPHRASE
    # An earlier test killed a worker host: its registration must have expired, its new worker joined.
    wait_until(lambda: health(service)['workers']['per_queue'].get('dc1') == len(WORKER_HOSTS),
               'both worker hosts listening to dc1', timeout=120)
    directory = REPO / SSH_DIR
    directory.mkdir(parents=True, exist_ok=True)
    (directory / 'ssh_fleet.yml').write_text(netfleet.inventory())
    with service.client('admin') as admin:
        made = admin.post('/api/v1/credentials', json={
            'name': 'fleet-key', 'kind': 'ssh', 'ssh_key': netfleet.key_with_passphrase.read_text(),
            'passphrase': PASSPHRASE, 'username': 'root'})
        assert made.status_code == 201, made.text
        made = admin.post('/api/v1/templates', json={
            'name': 'fleet-lanes', 'playbook': 'tests/service/playbooks/sleep.yml',
            'inventory': '%s/ssh_fleet.yml' % SSH_DIR, 'limit': 'mysql', 'queue': 'dc1', 'max_retries': 1,
            'plan': {'lanes': 4}, 'credentials': ['fleet-key'],
            'survey': [{'name': 'sleep_seconds', 'type': 'integer', 'default': 5, 'min': 1, 'max': 60}]})
        assert made.status_code == 201, made.text
    yield 'fleet-lanes'
    shutil.rmtree(directory, ignore_errors=True)


def launch_template(service, name: str) -> dict:
    with service.client('operator') as operator:
        response = operator.post('/api/v1/templates/%s/launch' % name, json={})
    assert response.status_code == 201, response.text
    return response.json()


def host_runs(service, job_id: str) -> dict[str, dict]:
    with service.client('viewer') as viewer:
        return {run['host']: run for run in viewer.get('/api/v1/jobs/%s/runs' % job_id).json()}


def job_stdout(service, job_id: str) -> str:
    with service.client('viewer') as viewer:
        return viewer.get('/api/v1/jobs/%s/stdout' % job_id).text


def test_one_jobs_lanes_run_on_both_worker_hosts(service, ssh_template):
    done = service.wait(launch_template(service, ssh_template)['id'], timeout=300)
    assert done['status'] == 'successful', (done['status_reason'], job_stdout(service, done['id'])[-3000:])
    runs = host_runs(service, done['id'])
    assert sorted(runs) == ['db1', 'db2', 'db3', 'db4'] and {run['status'] for run in runs.values()} == {'ok'}
    # Two lanes ran on each worker host, each lane on one of them, over SSH to the database hosts.
    hosts_of = {}
    for run in runs.values():
        hosts_of.setdefault(run['worker'].split('/')[0], set()).add(run['lane'])
    assert sorted(hosts_of) == list(WORKER_HOSTS) and sorted(map(len, hosts_of.values())) == [2, 2], hosts_of
    events = service.events(done['id'])
    assert sorted(event['seq'] for event in events) == list(range(1, len(events) + 1))
    assert {event['host'] for event in events if event['event'] == 'runner_on_ok'} == set(runs)


def test_when_a_worker_host_dies_its_lane_is_finished_on_the_other(netfleet, service, ssh_template):
    job = launch_template(service, ssh_template)

    def helper_running():
        coordinator = service.job(job['id'])['worker']
        return next((run for run in host_runs(service, job['id']).values()
                     if run['status'] == 'running' and run['worker'] and run['worker'] != coordinator), None)

    running = wait_until(helper_running, 'a lane running on the other worker host', timeout=120)
    lost_host, lost_db = running['worker'].split('/')[0], running['host']
    for pid in worker_processes(netfleet, lost_host):  # the worker host dies: all its processes at once
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        done = service.wait(job['id'], timeout=300)
        assert done['status'] == 'successful' and done['attempt'] == 1, (done['status_reason'],
                                                                         job_stdout(service, job['id'])[-3000:])
        survivor = done['worker'].split('/')[0]
        assert survivor != lost_host
        runs = host_runs(service, job['id'])
        assert {run['status'] for run in runs.values()} == {'ok'}
        assert runs[lost_db]['worker'].split('/')[0] == survivor and 'was lost at' in runs[lost_db]['detail']
        # The host had two lanes: each is taken back once, with a line in the job's log.
        notes = [event['stdout'] for event in service.events(job['id'])
                 if 'stopped answering' in (event['stdout'] or '')]
        assert 1 <= len(notes) <= 2 and all(lost_host in note for note in notes), notes
        lost_runs = [host for host, run in runs.items() if 'was lost at' in (run['detail'] or '')]
        assert lost_db in lost_runs and all(any(host in note for note in notes) for host in lost_runs), notes
    finally:
        service.remote_workers[lost_host] = start_remote_worker(netfleet, service, lost_host, service.secret_key)
        wait_until(lambda: health(service)['workers']['per_queue'].get('dc1') == len(WORKER_HOSTS),
                   'both worker hosts listening to dc1 again', timeout=120)
