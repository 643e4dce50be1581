"""/healthz tells the truth: the cron loop, the workers per queue, queues nobody serves."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from devtools.service_harness import Service

pytestmark = pytest.mark.service


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('health-service'), workers=1, schedulers=1).start()
    yield service
    service.stop()


def health(service) -> dict:
    response = httpx.get(service.url + '/healthz', timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(service, predicate, what: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while not predicate(body := health(service)):
        assert time.monotonic() < deadline, '%s: %s' % (what, body)
        time.sleep(0.3)
    return body


def test_ok_names_the_scheduler_and_the_workers_per_queue_and_nothing_secret(service):
    response = httpx.get(service.url + '/healthz', timeout=10)  # no token
    body = response.json()
    assert body['status'] == 'ok' and body['reasons'] == []
    assert body['scheduler']['ok'] and body['scheduler']['alive'] == 1 and body['scheduler']['last_tick']
    assert body['workers']['per_queue'] == {'default': 1}
    assert body['queues']['unattended'] == []
    for secret in [*service.tokens.values(), str(service.directory), service.redis.url]:
        assert secret not in response.text


def test_a_stopped_scheduler_makes_it_degraded(service):
    scheduler = service.schedulers.pop()
    scheduler.send_signal(signal.SIGTERM)
    scheduler.wait(30)
    body = wait_for(service, lambda body: body['status'] == 'degraded', 'still ok without a scheduler')
    assert [reason for reason in body['reasons'] if reason.startswith('scheduler:')], body
    assert body['scheduler'] == {'ok': False, 'alive': 0, 'last_tick': None}
    service.start_scheduler()
    wait_for(service, lambda body: body['status'] == 'ok', 'not ok with a scheduler again')


def test_a_queue_with_waiting_jobs_and_no_worker_makes_it_degraded(service):
    job = service.launch('hello.yml', role='admin', queue='nightly')
    assert job['waiting_for_worker'] is True  # said at once, in the POST's answer
    body = wait_for(service, lambda body: body['status'] == 'degraded', 'ok with a job nobody runs')
    assert body['reasons'] == ['queue nightly: 1 job(s) waiting and no worker listens to it']
    assert body['queues'] == {'waiting': {'nightly': 1}, 'unattended': ['nightly']}
    with service.client('viewer') as client:
        assert client.get('/api/v1/jobs/%s' % job['id']).json()['waiting_for_worker'] is True
        listed = client.get('/api/v1/jobs', params={'status': 'queued'}).json()['jobs']
        assert [item['waiting_for_worker'] for item in listed if item['id'] == job['id']] == [True]
    shown = service.dbfleet('jobs', 'show', job['id'], token=service.tokens['viewer'])
    assert 'nightly (priority 0): no worker listens to it' in shown.stdout
    with service.client('admin') as client:
        assert client.post('/api/v1/jobs/%s/cancel' % job['id']).status_code == 202
    wait_for(service, lambda body: body['status'] == 'ok', 'not ok once the job is canceled')


def test_a_worker_for_the_queue_takes_the_waiting_job(service):
    job = service.launch('hello.yml', role='admin', queue='dc1')
    assert job['waiting_for_worker'] is True
    worker = service.start_worker('dc1')
    try:
        done = service.wait(job['id'])
        assert done['status'] == 'successful' and done['waiting_for_worker'] is False
        running = service.launch('hello.yml', role='admin', queue='dc1')
        assert running['waiting_for_worker'] is False
        service.wait(running['id'])
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        service.workers.remove(worker)
