"""No single point of failure among the platform's own processes: a scheduler and an API on each of
the two worker hosts (store and Redis on the platform's address). Any API serves any job's live
event stream, whoever launched it; slots of a schedule fire exactly once, none missed, while one
scheduler's host is cut off the network (`ip link set ... down`) and after it comes back."""

from __future__ import annotations

import datetime as dt
import sys

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.netfleet.conftest import remote_env, stop_remote, wait_until
from devtools.service_harness import INVENTORY, PATIENCE, Service, live_event_names

pytestmark = [pytest.mark.netfleet, pytest.mark.service]

SITES = ('worker1', 'worker2')
API_PORT = 8080
EVERY = 2  # seconds between the test schedule's slots


@pytest.fixture(scope='module')
def platform_service(netfleet, platform, tmp_path_factory):
    """This machine: a worker (default queue) and an API, on the platform's store and Redis; each
    site: `dbfleet scheduler` and `dbfleet api` on its own address."""
    key = Fernet.generate_key().decode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('DBFLEET_SECRET_KEY', key)
        service = Service(tmp_path_factory.mktemp('sites-service'), workers=1, store_url=platform.store_url,
                          redis_url=platform.redis_url, schedulers=0).start()
        started: list[tuple[str, int]] = []
        try:
            for site in SITES:
                address = netfleet.host(site).address
                env = remote_env(service, key, DBFLEET_VAR_DIR='/var/lib/dbfleet/site')
                started.append((site, netfleet.spawn(
                    site, [sys.executable, '-m', 'runner_service.cli', 'scheduler'],
                    service.directory / ('scheduler-%s.log' % site), env=env)))
                started.append((site, netfleet.spawn(
                    site, [sys.executable, '-m', 'runner_service.cli', 'api', '--host', address, '--port',
                           str(API_PORT)], service.directory / ('api-%s.log' % site), env=env)))
            for site in SITES:
                wait_until(lambda: answers(site_url(netfleet, site)), 'the API on %s' % site, timeout=90)
            wait_until(lambda: schedulers_alive(service) == len(SITES), 'both schedulers passing', timeout=90)
            yield service
        finally:
            for site, pid in started:
                stop_remote(netfleet, site, pid)
            service.stop()


def site_url(netfleet, site: str) -> str:
    return 'http://%s:%d' % (netfleet.host(site).address, API_PORT)


def answers(url: str) -> bool:
    try:
        return httpx.get(url + '/healthz', timeout=5).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def schedulers_alive(service) -> int:
    return httpx.get(service.url + '/healthz', timeout=10).json()['scheduler']['alive']


def client(service, url: str, role: str = 'admin') -> httpx.Client:
    return httpx.Client(base_url=url, headers={'Authorization': 'Bearer %s' % service.tokens[role]},
                        timeout=30 * PATIENCE)


def test_any_api_serves_any_jobs_live_stream(netfleet, platform_service):
    service = platform_service
    with client(service, site_url(netfleet, 'worker1')) as first:
        launched = first.post('/api/v1/jobs', json={'playbook': 'tests/service/playbooks/sleep.yml',
                                                    'inventory': INVENTORY, 'limit': 'node1',
                                                    'extra_vars': {'sleep_seconds': 2}})
    assert launched.status_code == 201, launched.text
    job_id = launched.json()['id']
    with client(service, site_url(netfleet, 'worker2'), role='viewer') as second:
        with second.stream('GET', '/api/v1/jobs/%s/events' % job_id, headers={'Accept': 'text/event-stream'},
                           timeout=httpx.Timeout(30 * PATIENCE, read=120 * PATIENCE)) as stream:
            assert stream.status_code == 200
            names, ended = live_event_names(stream)
    assert ended == {'status': 'successful', 'status_reason': None}
    assert names == [event['event'] for event in service.events(job_id)]
    assert names[0] == 'playbook_on_start' and names[-1] == 'playbook_on_stats'


def slots(service, schedule_id: str) -> list[dict]:
    with service.client('viewer') as viewer:
        answer = viewer.get('/api/v1/schedules/%s/slots' % schedule_id, params={'limit': 1000})
    assert answer.status_code == 200, answer.text
    return sorted(answer.json(), key=lambda slot: slot['slot_at'])


def test_slots_fire_once_while_a_schedulers_host_is_cut_off_and_after(netfleet, platform_service):
    service = platform_service
    # The jobs go to a queue no worker listens to: what counts here is the slots and their jobs.
    with client(service, site_url(netfleet, 'worker2')) as admin:
        created = admin.post('/api/v1/schedules', json={
            'name': 'every-%ds-across-sites' % EVERY, 'kind': 'interval', 'expression': '%ds' % EVERY,
            'overlap': 'allow', 'misfire_grace_seconds': 3600,
            'job': {'playbook': 'tests/service/playbooks/hello.yml', 'inventory': INVENTORY, 'queue': 'nowhere'}})
    assert created.status_code == 201, created.text
    schedule = created.json()
    try:
        wait_until(lambda: len(slots(service, schedule['id'])) >= 3, 'three slots fired by both sites', timeout=120)
        netfleet.cut('worker1')
        try:
            assert not answers(site_url(netfleet, 'worker1')), 'worker1 is still reachable'
            before = len(slots(service, schedule['id']))
            wait_until(lambda: len(slots(service, schedule['id'])) >= before + 3,
                       'three slots fired with worker1 cut off', timeout=120)
            # worker1's scheduler cannot reach the store or Redis: its pass record lapses.
            wait_until(lambda: schedulers_alive(service) == 1, 'only worker2\'s scheduler passing', timeout=120)
        finally:
            netfleet.restore('worker1')
        wait_until(lambda: schedulers_alive(service) == 2, 'worker1\'s scheduler passing again', timeout=180)
        after = len(slots(service, schedule['id']))
        wait_until(lambda: len(slots(service, schedule['id'])) >= after + 3, 'three slots fired by both again',
                   timeout=120)
    finally:
        with service.client('admin') as admin:
            assert admin.post('/api/v1/schedules/%s/pause' % schedule['id']).status_code == 200
    recorded = slots(service, schedule['id'])
    times = [dt.datetime.fromisoformat(slot['slot_at']) for slot in recorded]
    # Every slot from the first to the last, each once, each fired with a job of its own.
    assert [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])] == \
        [EVERY] * (len(times) - 1), times
    assert {slot['outcome'] for slot in recorded} == {'fired'}, recorded
    jobs = [slot['job_id'] for slot in recorded]
    assert None not in jobs and len(set(jobs)) == len(jobs)
    with service.client('viewer') as viewer:
        listed = viewer.get('/api/v1/jobs', params={'limit': 1000, 'status': 'queued'}).json()['jobs']
    from_schedule = [job['id'] for job in listed if job['id'] in set(jobs)]
    assert sorted(from_schedule) == sorted(jobs)
