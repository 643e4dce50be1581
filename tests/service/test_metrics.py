"""GET /metrics tells what the service did: jobs run through the real API and workers, and
backups, pools, schedule slots and crontab entries written to the same store, appear with the
values the store holds; only a viewer token or above reads it, unless DBFLEET_METRICS_AUTH is off."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dbfleet.store import open_store
from devtools.service_harness import INVENTORY, PLAYBOOKS, Service

pytestmark = pytest.mark.service

UTC = dt.timezone.utc
DAY = dt.datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('metrics-service'), workers=1).start()
    yield service
    service.stop()


@pytest.fixture(scope='module')
def store(service):
    with open_store(service.store_url) as store:
        yield store


def scrape(service, role: str | None = 'viewer') -> dict[str, list]:
    """{sample name: [(labels, value)]} of one scrape."""
    headers = {'Authorization': 'Bearer %s' % service.tokens[role]} if role else {}
    response = httpx.get(service.url + '/metrics', headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers['content-type'].startswith('text/plain; version=0.0.4')
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict, name: str, **labels) -> float | None:
    found = [number for sample_labels, number in samples.get(name, []) if sample_labels == labels]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def run_seconds(job: dict) -> float:
    return (dt.datetime.fromisoformat(job['finished_at']) - dt.datetime.fromisoformat(job['started_at'])).total_seconds()


def test_jobs_queues_and_durations_are_what_ran(service):
    with service.client('admin') as client:
        created = client.post('/api/v1/templates', json={'name': 'hello', 'playbook': '%s/hello.yml' % PLAYBOOKS,
                                                         'inventory': INVENTORY})
        assert created.status_code == 201, created.text
    with service.client('operator') as client:
        launched = [client.post('/api/v1/templates/hello/launch') for _ in range(2)]
    assert [response.status_code for response in launched] == [201, 201], [r.text for r in launched]
    bare = [service.launch('hello.yml'), service.launch('fail_on.yml', extra_vars={'fail_hosts': ['node2']})]
    ended = [service.wait(job['id']) for job in [response.json() for response in launched] + bare]
    assert [job['status'] for job in ended] == ['successful', 'successful', 'successful', 'failed']
    nobody = service.launch('hello.yml', queue='nightly')  # no worker listens to it

    samples = scrape(service)
    assert value(samples, 'dbfleet_jobs', status='successful', template='hello') == 2
    assert value(samples, 'dbfleet_jobs', status='successful', template='') == 1
    assert value(samples, 'dbfleet_jobs', status='failed', template='') == 1
    assert value(samples, 'dbfleet_jobs', status='queued', template='') == 1
    assert value(samples, 'dbfleet_queue_waiting_jobs', queue='nightly') == 1
    assert value(samples, 'dbfleet_queue_oldest_waiting_job_timestamp_seconds', queue='nightly') == \
        dt.datetime.fromisoformat(service.job(nobody['id'])['enqueued_at']).timestamp()
    assert value(samples, 'dbfleet_queue_workers', queue='nightly') == 0
    assert value(samples, 'dbfleet_queue_workers', queue='default') == 1

    templated = [run_seconds(job) for job in ended[:2]]
    assert value(samples, 'dbfleet_job_duration_seconds_gcount', template='hello') == 2
    assert value(samples, 'dbfleet_job_duration_seconds_gsum', template='hello') == pytest.approx(sum(templated),
                                                                                                   abs=1e-5)
    assert value(samples, 'dbfleet_job_duration_seconds_bucket', template='hello', le='+Inf') == 2
    for bound in ('1.0', '5.0', '15.0', '60.0'):
        assert value(samples, 'dbfleet_job_duration_seconds_bucket', template='hello', le=bound) == \
            sum(1 for seconds in templated if seconds <= float(bound))
    assert value(samples, 'dbfleet_job_duration_seconds_gcount', template='') == 2

    events = sum(len(service.events(job['id'])) for job in ended)
    assert value(samples, 'dbfleet_job_events_stored_total') >= events > 0
    assert value(samples, 'dbfleet_up', component='store') == value(samples, 'dbfleet_up', component='redis') == 1

    with service.client('admin') as client:
        assert client.post('/api/v1/jobs/%s/cancel' % nobody['id']).status_code == 202
    after = scrape(service)
    assert value(after, 'dbfleet_queue_waiting_jobs', queue='nightly') is None
    assert value(after, 'dbfleet_jobs', status='canceled', template='') == 1


def test_backups_pools_slots_and_crontab_entries_are_what_the_store_holds(service, store):
    store.backups.record('db1', method='logical', started_at=DAY, finished_at=DAY + dt.timedelta(minutes=5),
                         bytes=1000)
    store.backups.record('db1', method='logical', started_at=DAY + dt.timedelta(days=1),
                         finished_at=DAY + dt.timedelta(days=1, minutes=7), bytes=2500)
    store.backups.record('db1', method='logical', status='failed', started_at=DAY + dt.timedelta(days=2),
                         error='mariadb-dump: lost connection')
    store.backups.record('db2', method='physical', status='failed', started_at=DAY, error='no space')
    store.pools.set('nightly', 3)
    assert store.pools.acquire_lease('nightly', 'job:db1')
    job = service.launch('hello.yml')
    created = dt.datetime.fromisoformat(job['created_at'])
    schedule = store.schedules.create(
        name='hourly-hello', kind='interval', expression='1h', timezone='UTC', job={}, overlap='allow',
        misfire_grace_seconds=60, catch_up='skip', jitter_seconds=0, paused=True, next_fire_at=None,
        source={'origin': 'crontab', 'mode': 'takeover', 'host': 'db1', 'line': 3})
    store.schedules.record_slot(schedule['id'], created - dt.timedelta(seconds=3), 'fired', 'platform',
                                job_id=job['id'])
    for minutes in (10, 20):
        store.schedules.record_slot(schedule['id'], created - dt.timedelta(minutes=minutes), 'missed', None)
    store.schedules.record_slot(schedule['id'], created - dt.timedelta(days=3), 'missed', None)  # out of the window
    store.schedules.create(name='observed', kind='cron', expression='5 * * * *', timezone='UTC', job={},
                           overlap='allow', misfire_grace_seconds=60, catch_up='skip', jitter_seconds=0, paused=False,
                           next_fire_at=None, source={'origin': 'crontab', 'mode': 'observe', 'host': 'db2'})

    samples = scrape(service)
    assert value(samples, 'dbfleet_backup_last_success_timestamp_seconds', host='db1') == \
        (DAY + dt.timedelta(days=1, minutes=7)).timestamp()
    assert value(samples, 'dbfleet_backup_last_size_bytes', host='db1') == 2500
    assert value(samples, 'dbfleet_backup_last_success_timestamp_seconds', host='db2') == 0
    assert value(samples, 'dbfleet_backup_last_size_bytes', host='db2') is None
    assert value(samples, 'dbfleet_pool_slots', pool='nightly') == 3
    assert value(samples, 'dbfleet_pool_slots_in_use', pool='nightly') == 1
    assert value(samples, 'dbfleet_schedule_slots', schedule='hourly-hello', outcome='fired') == 1
    assert value(samples, 'dbfleet_schedule_slots', schedule='hourly-hello', outcome='missed') == 2
    assert value(samples, 'dbfleet_schedule_lateness_seconds_gcount') == 1
    assert value(samples, 'dbfleet_schedule_lateness_seconds_gsum') == pytest.approx(3.0, abs=1e-3)
    assert value(samples, 'dbfleet_schedule_lateness_seconds_bucket', le='2.0') == 0
    assert value(samples, 'dbfleet_schedule_lateness_seconds_bucket', le='5.0') == 1
    assert value(samples, 'dbfleet_crontab_entries', host='db1', mode='takeover') == 1
    assert value(samples, 'dbfleet_crontab_entries', host='db2', mode='observe') == 1
    store.pools.release_lease('nightly', 'job:db1')
    assert value(scrape(service), 'dbfleet_pool_slots_in_use', pool='nightly') == 0
    service.wait(job['id'])


def test_only_a_viewer_token_or_above_reads_it_and_it_holds_no_secret(service):
    agent = json.loads(service.dbfleet('tokens', 'create', 'agent-db1', '--role', 'agent', '--host', 'db1', '--json',
                                       check=True).stdout)['token']
    url = service.url + '/metrics'
    refused = httpx.get(url, timeout=30)
    assert refused.status_code == 401 and 'bearer token' in refused.json()['detail']
    assert refused.headers['www-authenticate'] == 'Bearer'
    assert httpx.get(url, headers={'Authorization': 'Bearer dbf_forged'}, timeout=30).status_code == 401
    assert httpx.get(url, headers={'Authorization': 'Basic dmlld2VyOng='}, timeout=30).status_code == 401
    as_agent = httpx.get(url, headers={'Authorization': 'Bearer %s' % agent}, timeout=30)
    assert as_agent.status_code == 403 and 'agent token' in as_agent.json()['detail']
    for role in ('viewer', 'operator', 'admin'):
        response = httpx.get(url, headers={'Authorization': 'Bearer %s' % service.tokens[role]}, timeout=30)
        assert response.status_code == 200, (role, response.text)
        for secret in [*service.tokens.values(), agent, str(service.directory), service.redis.url]:
            assert secret not in response.text
    assert httpx.post(url, timeout=30).status_code == 405
    assert httpx.get(url + '/../api/v1/jobs', timeout=30).status_code == 401
    openmetrics = httpx.get(url, timeout=30, headers={'Authorization': 'Bearer %s' % service.tokens['viewer'],
                                                      'Accept': 'application/openmetrics-text; version=1.0.0'})
    assert openmetrics.status_code == 200 and openmetrics.text.endswith('# EOF\n')
    assert '# TYPE dbfleet_job_duration_seconds gaugehistogram' in openmetrics.text
    huge = httpx.get(url, timeout=30, headers={'Authorization': 'Bearer %s' % service.tokens['viewer'],
                                               'Accept': 'text/plain;' + 'q=1,' * 2000})
    assert huge.status_code == 200 and huge.headers['content-type'].startswith('text/plain; version=0.0.4')


def test_with_metrics_auth_off_anyone_reads_it(tmp_path):
    service = Service(tmp_path, workers=0, variables={'DBFLEET_METRICS_AUTH': 'false'}).start()
    try:
        samples = scrape(service, role=None)
        assert value(samples, 'dbfleet_up', component='store') == 1
        assert value(samples, 'dbfleet_job_events_stored_total') == 0
        # Redis away: the store's figures still come, and the scrape says Redis was not read.
        service.redis.stop()
        samples = scrape(service, role=None)
        assert value(samples, 'dbfleet_up', component='redis') == 0
        assert value(samples, 'dbfleet_up', component='store') == 1
        assert 'dbfleet_queue_workers' not in samples and 'dbfleet_job_events_stored_total' in samples
    finally:
        service.stop()
