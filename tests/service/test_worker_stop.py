"""Stopping a worker (SIGTERM, what `systemctl stop` sends its main process): it takes no new
job, lets the running one end within DBFLEET_WORKER_STOP_SECONDS, and past that stops the play and
records the job worker_lost itself (retried as its policy says) before it exits."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from devtools.service_harness import PATIENCE, Service, job_processes

pytestmark = pytest.mark.service


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    """The API without workers (the one it starts healthy is stopped): each test starts the worker it stops."""
    service = Service(tmp_path_factory.mktemp('service'), workers=1).start()
    first = service.workers.pop()
    first.send_signal(signal.SIGTERM)
    first.wait(60 * PATIENCE)
    yield service
    service.stop()


def start_worker(service: Service, stop_seconds: float) -> subprocess.Popen:
    log = open(service.directory / 'worker-stop.log', 'ab')
    worker = subprocess.Popen([sys.executable, '-m', 'runner_service.cli', 'worker'], stdout=log,
                              stderr=subprocess.STDOUT, env=dict(service.env, DBFLEET_WORKER_STOP_SECONDS=str(stop_seconds)))
    service.workers.append(worker)
    return worker


def wait_for_play(service: Service, job_id: str) -> None:
    service.wait(job_id, statuses={'running'})
    deadline = time.monotonic() + 30 * PATIENCE
    while not job_processes(job_id):
        assert time.monotonic() < deadline, 'the play never started'
        time.sleep(0.2)


def test_a_job_that_overruns_the_stop_bound_is_stopped_and_recorded_lost(service):
    worker = start_worker(service, stop_seconds=1)
    job = service.launch('sleep.yml', limit='node1', extra_vars={'sleep_seconds': 600})
    wait_for_play(service, job['id'])
    worker.send_signal(signal.SIGTERM)
    lost = service.wait(job['id'], statuses={'worker_lost'}, timeout=60)
    assert 'DBFLEET_WORKER_STOP_SECONDS' in lost['status_reason'], lost
    assert worker.wait(60 * PATIENCE) == 0
    assert job_processes(job['id']) == []


def test_a_job_that_ends_within_the_bound_ends_as_it_would_have(service):
    worker = start_worker(service, stop_seconds=300)
    job = service.launch('sleep.yml', limit='node1', extra_vars={'sleep_seconds': 4})
    wait_for_play(service, job['id'])
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(120 * PATIENCE) == 0  # it waited for the job, then stopped
    assert service.job(job['id'])['status'] == 'successful'


def test_a_stopped_job_is_retried_as_its_policy_says(service):
    worker = start_worker(service, stop_seconds=1)
    job = service.launch('sleep.yml', limit='node1', max_retries=1, retry_backoff=1,
                         extra_vars={'sleep_seconds': 600})
    wait_for_play(service, job['id'])
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60 * PATIENCE) == 0
    queued = service.job(job['id'])
    assert queued['status'] == 'queued' and 'DBFLEET_WORKER_STOP_SECONDS' in queued['status_reason'], queued
    with service.client() as client:
        assert client.post('/api/v1/jobs/%s/cancel' % job['id']).status_code in (200, 202)
