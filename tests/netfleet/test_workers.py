"""Workers on other machines: `dbfleet worker` processes on the worker namespace hosts join the
service through Redis and the store on MariaDB (both on the platform's address, nothing else
shared but the installed software), take the jobs of the queue they listen to, run them on their
own host, and a job whose worker host dies is retried on the other one."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid

import pytest
from cryptography.fernet import Fernet

from tests.netfleet.conftest import dbfleet_processes, remote_env, wait_until
from tests.service.harness import INVENTORY, REPO, Service

pytestmark = [pytest.mark.netfleet, pytest.mark.service]

WHERE = 'where.yml'
WORKER_HOSTS = ('worker1', 'worker2')


@pytest.fixture(scope='module')
def service(netfleet, platform, tmp_path_factory):
    key = Fernet.generate_key().decode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('DBFLEET_SECRET_KEY', key)
        service = Service(tmp_path_factory.mktemp('workers-service'), workers=0, store_url=platform.store_url,
                          redis_url=platform.redis_url, schedulers=1).start()
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
