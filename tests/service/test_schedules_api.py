"""Schedules through the API with two scheduler processes running: per-second slots fire once each."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from devtools.service_harness import INVENTORY, PLAYBOOKS, Service

pytestmark = pytest.mark.service


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('service'), schedulers=2).start()
    yield service
    service.stop()


def test_a_per_second_schedule_fires_each_slot_once_with_two_schedulers(service):
    body = {'name': 'tick', 'kind': 'cron', 'expression': '* * * * * *', 'overlap': 'allow',
            'job': {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY, 'limit': 'node1'}}
    with service.client('admin') as admin:
        created = admin.post('/api/v1/schedules', json=body)
        assert created.status_code == 201, created.text
        schedule = created.json()
        time.sleep(6)
        paused = admin.post('/api/v1/schedules/tick/pause')
        assert paused.status_code == 200 and paused.json()['paused'] is True
    with service.client('viewer') as viewer:
        slots = viewer.get('/api/v1/schedules/%s/slots' % schedule['id'], params={'limit': 100}).json()
        jobs = viewer.get('/api/v1/jobs', params={'limit': 100}).json()['jobs']
    fired = [slot for slot in slots if slot['outcome'] == 'fired']
    assert len(fired) >= 4
    times = sorted(dt.datetime.fromisoformat(slot['slot_at']) for slot in fired)
    assert [later - earlier for earlier, later in zip(times, times[1:])] == [dt.timedelta(seconds=1)] * (len(times) - 1)
    scheduled = [job for job in jobs if job['created_by'] == 'schedule:tick']
    assert sorted(job['id'] for job in scheduled) == sorted(slot['job_id'] for slot in fired)
    for job in scheduled:
        assert service.wait(job['id'])['status'] == 'successful'


def test_preview_and_roles(service):
    body = {'name': 'nightly-backup', 'kind': 'cron', 'expression': '30 2 * * *', 'timezone': 'Europe/Berlin',
            'job': {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY}}
    with service.client('operator') as operator:
        refused = operator.post('/api/v1/schedules', json=body)
    assert refused.status_code == 403 and 'needs admin' in refused.json()['detail']
    with service.client('admin') as admin:
        assert admin.post('/api/v1/schedules', json=body).status_code == 201
        bad = admin.post('/api/v1/schedules', json=dict(body, name='bad', expression='99 * * * *'))
        assert bad.status_code == 400 and 'cron' in bad.json()['detail']
    with service.client('viewer') as viewer:
        preview = viewer.get('/api/v1/schedules/nightly-backup/preview', params={'n': 5}).json()
        missing = viewer.get('/api/v1/schedules/nope')
    assert preview['timezone'] == 'Europe/Berlin' and len(preview['times']) == 5
    assert all(time.endswith(('+01:00', '+02:00')) and 'T02:30:00' in time or 'T03:30:00' in time
               for time in preview['times'])
    assert missing.status_code == 404


def test_a_maintenance_window_shows_in_the_preview(service):
    body = {'name': 'nightly-inspect', 'kind': 'cron', 'expression': '30 2 * * *', 'timezone': 'Europe/Berlin',
            'window_policy': 'defer', 'job': {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY}}
    with service.client('admin') as admin:
        created = admin.post('/api/v1/schedules', json=body)
        assert created.status_code == 201 and created.json()['window_policy'] == 'defer', created.text
        times = admin.get('/api/v1/schedules/nightly-inspect/preview', params={'n': 5}).json()['times']
        covered = dt.datetime.fromisoformat(times[2])
        window = {'name': 'db-upgrade', 'kind': 'absolute', 'duration_seconds': 3600, 'timezone': 'Europe/Berlin',
                  'start': (covered - dt.timedelta(minutes=10)).replace(tzinfo=None).isoformat()}
        with service.client('operator') as operator:
            refused = operator.post('/api/v1/windows', json=window)
        assert refused.status_code == 403 and 'needs admin' in refused.json()['detail']
        made = admin.post('/api/v1/windows', json=window)
        assert made.status_code == 201, made.text
        bad = admin.post('/api/v1/windows', json=dict(window, name='elsewhere', timezone='Nowhere/City'))
        assert bad.status_code == 400 and 'timezone: unknown time zone' in bad.json()['detail']
        bad = admin.post('/api/v1/windows', json=dict(window, name='bad-cron', kind='recurring', start='0 25 * * *'))
        assert bad.status_code == 400 and 'start: cron' in bad.json()['detail']
        with service.client('viewer') as viewer:
            preview = viewer.get('/api/v1/schedules/nightly-inspect/preview', params={'n': 5}).json()
            listed = viewer.get('/api/v1/windows').json()
            assert viewer.delete('/api/v1/windows/db-upgrade').status_code == 403
            assert viewer.get('/api/v1/windows/nope').status_code == 404
        assert preview['times'] == times
        until = dt.datetime.fromisoformat(preview['blocked'][0]['until'])
        assert preview['blocked'] == [{'time': times[2], 'window': 'db-upgrade', 'action': 'defer',
                                       'until': preview['blocked'][0]['until']}]
        assert until - covered == dt.timedelta(minutes=50)
        [shown] = [entry for entry in listed if entry['name'] == 'db-upgrade']
        assert shown['occurrences'][0]['end'] == preview['blocked'][0]['until']
        assert admin.delete('/api/v1/windows/db-upgrade').status_code == 200
        assert admin.get('/api/v1/schedules/nightly-inspect/preview', params={'n': 5}).json()['blocked'] == []


def test_an_interval_too_long_for_the_calendar_is_refused_not_a_server_error(service):
    """Found by an attacker's review: `99999999999999999999h` was stored (201), then its preview,
    a timing edit and every scheduler pass failed on an overflow."""
    body = {'name': 'endless', 'kind': 'interval', 'expression': '99999999999999999999h', 'paused': True,
            'job': {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY}}
    with service.client('admin') as admin:
        for expression in ('99999999999999999999h', 'inf', '367d'):
            refused = admin.post('/api/v1/schedules', json=dict(body, expression=expression))
            assert refused.status_code == 400 and 'longer than a year' in refused.json()['detail'], refused.text
        created = admin.post('/api/v1/schedules', json=dict(body, expression='366d'))
        assert created.status_code == 201, created.text
    with service.client('operator') as operator:
        edit = operator.patch('/api/v1/schedules/endless', json={'expression': '99999999999999999999h'})
        assert edit.status_code == 400, edit.text
        assert operator.get('/api/v1/schedules/endless/preview', params={'n': 100}).status_code == 200
