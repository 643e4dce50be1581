"""Schedules that name a job template: operators may create and change them (for templates their
token may launch), values are checked against the survey when stored and again at each slot."""

from __future__ import annotations

import time

import pytest

from devtools.service_harness import INVENTORY, PLAYBOOKS, Service

pytestmark = pytest.mark.service
EVERY_SECOND = {'kind': 'cron', 'expression': '* * * * * *', 'overlap': 'allow'}
SURVEY = [{'name': 'value', 'type': 'string', 'max_length': 10}, {'name': 'word', 'type': 'password'}]


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('service'), schedulers=1).start()
    with service.client('admin') as admin:
        for name in ('echo', 'other'):
            response = admin.post('/api/v1/templates', json={
                'name': name, 'playbook': '%s/echo_value.yml' % PLAYBOOKS, 'inventory': INVENTORY, 'limit': 'node1',
                'survey': SURVEY})
            assert response.status_code == 201, response.text
    yield service
    service.stop()


def slots(service, name: str, timeout: float = 60, count: int = 1) -> list[dict]:
    deadline = time.monotonic() + timeout
    with service.client('viewer') as viewer:
        while True:
            found = viewer.get('/api/v1/schedules/%s/slots' % name).json()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def test_an_operator_schedules_a_template_and_its_slots_launch_it(service):
    body = {'name': 'echo-often', **EVERY_SECOND, 'template': 'echo',
            'extra_vars': {'value': 'scheduled', 'word': 'open-sesame-1'}}
    with service.client('operator') as operator:
        created = operator.post('/api/v1/schedules', json=body)
        assert created.status_code == 201, created.text
        assert created.json()['job'] == {'template': 'echo', 'extra_vars': {'value': 'scheduled', 'word': '********'},
                                         'limit': None}
        fired = [slot for slot in slots(service, 'echo-often', count=2) if slot['outcome'] == 'fired']
        assert operator.post('/api/v1/schedules/echo-often/pause').status_code == 200
    assert fired, 'no slot fired'
    job = service.wait(fired[0]['job_id'])
    assert job['status'] == 'successful', job['status_reason']
    assert job['template'] == 'echo' and set(job['hosts']) == {'node1'}
    assert job['extra_vars'] == {'value': 'scheduled', 'word': '********'}
    with service.client('viewer') as viewer:
        output = viewer.get('/api/v1/jobs/%s/stdout' % job['id']).text
    assert 'value is scheduled' in output


def test_values_are_checked_when_stored_and_again_at_each_slot(service):
    with service.client('operator') as operator:
        unknown = operator.post('/api/v1/schedules', json={'name': 'bad', **EVERY_SECOND, 'template': 'echo',
                                                           'extra_vars': {'ansible_connection': 'local'}})
        assert unknown.status_code == 422 and 'ansible_connection' in unknown.json()['detail']
        missing = operator.post('/api/v1/schedules', json={'name': 'bad', **EVERY_SECOND, 'template': 'nope'})
        assert missing.status_code in (403, 422), missing.text
        created = operator.post('/api/v1/schedules', json={'name': 'checked', **EVERY_SECOND, 'paused': True,
                                                           'template': 'echo', 'extra_vars': {'value': 'long-value'}})
        assert created.status_code == 201, created.text
        too_long = operator.patch('/api/v1/schedules/checked', json={'extra_vars': {'value': 'x' * 11}})
        assert too_long.status_code == 422 and 'at most 10 characters' in too_long.json()['detail']
        file_limit = operator.patch('/api/v1/schedules/checked', json={'limit': '@/etc/passwd'})
        assert file_limit.status_code == 422
    with service.client('admin') as admin:
        shrunk = admin.patch('/api/v1/templates/echo', json={'survey': [dict(SURVEY[0], max_length=4), SURVEY[1]]})
        assert shrunk.status_code == 200, shrunk.text
        try:
            assert admin.post('/api/v1/schedules/checked/resume').status_code == 200
            skipped = slots(service, 'checked')
            assert admin.post('/api/v1/schedules/checked/pause').status_code == 200
        finally:
            admin.patch('/api/v1/templates/echo', json={'survey': SURVEY})
    assert skipped and skipped[0]['outcome'] == 'skipped' and skipped[0]['job_id'] is None
    assert 'value: at most 4 characters' in skipped[0]['reason']


def test_who_may_change_which_schedule(service):
    with service.client('admin') as admin:
        bare = admin.post('/api/v1/schedules', json={'name': 'bare', **EVERY_SECOND, 'paused': True, 'job': {
            'playbook': '%s/hello.yml' % PLAYBOOKS, 'inventory': INVENTORY}})
        assert bare.status_code == 201, bare.text
        scoped = admin.post('/api/v1/tokens', json={'name': 'only-other', 'role': 'operator', 'templates': ['other']})
        token = {'Authorization': 'Bearer %s' % scoped.json()['token']}
    with service.client('operator') as operator:
        # Any operator may change when a bare schedule runs (a crontab entry's timing), never what
        # it runs, nor delete it.
        timing = operator.patch('/api/v1/schedules/bare', json={'expression': '0 * * * *'})
        assert timing.status_code == 200, timing.text
        for call in (lambda: operator.patch('/api/v1/schedules/bare', json={'job': {
                         'playbook': '%s/hello.yml' % PLAYBOOKS, 'inventory': INVENTORY}}),
                     lambda: operator.delete('/api/v1/schedules/bare')):
            response = call()
            assert response.status_code == 403 and 'needs admin' in response.json()['detail']
        created = operator.post('/api/v1/schedules', json={'name': 'op-echo', **EVERY_SECOND, 'paused': True,
                                                           'template': 'echo'})
        assert created.status_code == 201, created.text
        to_bare = operator.patch('/api/v1/schedules/op-echo', json={'job': {'playbook': '%s/hello.yml' % PLAYBOOKS,
                                                                            'inventory': INVENTORY}})
        assert to_bare.status_code == 403
        assert operator.patch('/api/v1/schedules/op-echo', json={'expression': '0 3 * * *'}).status_code == 200
        refused = operator.post('/api/v1/schedules', json={'name': 'x', **EVERY_SECOND, 'template': 'echo'},
                                headers=token)
        assert refused.status_code == 403 and "not 'echo'" in refused.json()['detail']
        assert operator.patch('/api/v1/schedules/op-echo', json={'template': 'other'}, headers=token).status_code == 403
        allowed = operator.post('/api/v1/schedules', json={'name': 'scoped-other', **EVERY_SECOND, 'paused': True,
                                                           'template': 'other'}, headers=token)
        assert allowed.status_code == 201, allowed.text
    with service.client('admin') as admin:
        in_use = admin.delete('/api/v1/templates/other')
        assert in_use.status_code == 409 and 'scoped-other' in in_use.json()['detail']
    with service.client('operator') as operator:
        assert operator.delete('/api/v1/schedules/op-echo').status_code == 200


def test_a_slot_of_a_template_gets_its_credentials(service):
    """The vaulted play (tests/service/vaulted) runs from a schedule through its template's vault credential."""
    with service.client('admin') as admin:
        made = admin.post('/api/v1/credentials', json={'name': 'fleet-vault', 'kind': 'vault', 'vault_id': 'fleet',
                                                       'password': 'vault test password 14'})
        assert made.status_code == 201, made.text
        response = admin.post('/api/v1/templates', json={
            'name': 'vaulted', 'playbook': '%s/vaulted.yml' % PLAYBOOKS,
            'inventory': 'tests/service/vaulted/inventory.yml', 'credentials': ['fleet-vault']})
        assert response.status_code == 201, response.text
        assert admin.post('/api/v1/schedules', json={'name': 'vaulted-often', **EVERY_SECOND,
                                                     'template': 'vaulted'}).status_code == 201
        fired = [slot for slot in slots(service, 'vaulted-often') if slot['outcome'] == 'fired']
        assert admin.post('/api/v1/schedules/vaulted-often/pause').status_code == 200
    assert fired, 'no slot fired'
    job = service.wait(fired[0]['job_id'])
    assert job['status'] == 'successful' and job['credentials'] == ['fleet-vault'], job['status_reason']
