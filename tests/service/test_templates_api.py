"""Job templates end to end: real HTTP, tokens of each role, real workers and ansible-playbook runs."""

from __future__ import annotations

import pytest

from dbfleet.store import open_store
from devtools.service_harness import INVENTORY, PLAYBOOKS

pytestmark = pytest.mark.service

SURVEY = [
    {'name': 'value', 'type': 'string', 'default': 'from-the-default', 'max_length': 40, 'pattern': '[a-z-]+'},
    {'name': 'count', 'type': 'integer', 'min': 1, 'max': 10},
    {'name': 'mode', 'type': 'choice', 'choices': ['full', 'incremental'], 'required': True},
]


def create(service, name: str, role: str = 'admin', **fields):
    body = {'name': name, 'playbook': '%s/echo_value.yml' % PLAYBOOKS, 'inventory': INVENTORY, **fields}
    with service.client(role) as client:
        return client.post('/api/v1/templates', json=body)


def launch(service, name: str, role: str = 'operator', token: str | None = None, **body):
    with service.client(role) as client:
        headers = {'Authorization': 'Bearer %s' % token} if token else {}
        return client.post('/api/v1/templates/%s/launch' % name, json=body, headers=headers)


def scoped_token(service, name: str, templates: list[str]) -> str:
    with service.client('admin') as client:
        response = client.post('/api/v1/tokens', json={'name': name, 'role': 'operator', 'templates': templates})
    assert response.status_code == 201, response.text
    assert response.json()['templates'] == sorted(templates)
    return response.json()['token']


def stdout(service, job_id: str) -> str:
    with service.client('viewer') as client:
        return client.get('/api/v1/jobs/%s/stdout' % job_id).text


@pytest.fixture(scope='module')
def echo(service):
    response = create(service, 'echo', survey=SURVEY)
    assert response.status_code == 201, response.text
    return response.json()


def test_admin_creates_viewer_reads_and_only_operators_launch(service, echo):
    assert echo['name'] == 'echo' and echo['allow_limit'] is False and echo['links']['launch'] == \
        '/api/v1/templates/echo/launch'
    for role in ('viewer', 'operator'):
        assert create(service, 'by-' + role, role=role).status_code == 403
    with service.client('viewer') as client:
        assert [item['name'] for item in client.get('/api/v1/templates').json()] == ['echo']
        assert client.get('/api/v1/templates/echo').json()['survey'][2]['choices'] == ['full', 'incremental']
        assert client.get('/api/v1/templates/nope').status_code == 404
    refused = launch(service, 'echo', role='viewer', extra_vars={'mode': 'full'})
    assert refused.status_code == 403 and 'operator' in refused.json()['detail']

    response = launch(service, 'echo', extra_vars={'mode': 'full', 'count': 3})
    assert response.status_code == 201, response.text
    job = response.json()
    assert job['template'] == 'echo' and job['playbook'] == '%s/echo_value.yml' % PLAYBOOKS
    assert job['extra_vars'] == {'value': 'from-the-default', 'count': 3, 'mode': 'full'}
    assert response.headers['location'] == '/api/v1/jobs/%s' % job['id']
    done = service.wait(job['id'])
    assert done['status'] == 'successful', done['status_reason']
    assert done['template'] == 'echo' and set(done['hosts']) == {'node1', 'node2', 'node3'}
    assert 'value is from-the-default' in stdout(service, job['id'])


def test_the_survey_refuses_what_it_does_not_name_and_values_that_break_its_rules(service, echo):
    cases = {
        'unknown': ({'mode': 'full', 'ansible_python_interpreter': '/bin/sh'}, "'ansible_python_interpreter' is not "
                    "in the template's survey"),
        'type': ({'mode': 'full', 'count': 'three'}, "count: must be an integer, got 'three'"),
        'bounds': ({'mode': 'full', 'count': 11}, 'count: 11 is above the maximum 10'),
        'choice': ({'mode': 'differential'}, "mode: 'differential' is not one of the choices"),
        'pattern': ({'mode': 'full', 'value': 'UPPER'}, "value: 'UPPER' does not match the pattern"),
        'length': ({'mode': 'full', 'value': 'x' * 5000}, 'value: at most 40 characters, got 5000'),
        'required': ({}, "mode: required by the template's survey"),
        'boolean is no integer': ({'mode': 'full', 'count': True}, 'count: must be an integer, got True'),
    }
    for case, (extra_vars, message) in cases.items():
        response = launch(service, 'echo', extra_vars=extra_vars)
        assert response.status_code == 422, (case, response.text)
        assert message in response.json()['detail'], (case, response.json()['detail'])
        assert len(response.json()['detail']) < 600
    long_name = launch(service, 'echo', extra_vars={'mode': 'full', 'n' * 5000: 1})
    assert long_name.status_code == 422 and len(long_name.json()['detail']) < 600


def test_password_values_are_sealed_and_masked_everywhere(service):
    survey = [{'name': 'value', 'type': 'password', 'required': True, 'min_length': 8}]
    assert create(service, 'secret-echo', survey=survey).status_code == 201
    short = launch(service, 'secret-echo', extra_vars={'value': 'hunter2'})
    assert short.status_code == 422 and 'hunter2' not in short.text and 'at least 8 characters' in short.text
    wrong = launch(service, 'secret-echo', extra_vars={'value': 12345678})
    assert wrong.status_code == 422 and '12345678' not in wrong.text
    response = launch(service, 'secret-echo', extra_vars={'value': 's3cret-Horse-staple'})
    assert response.status_code == 201, response.text
    assert response.json()['extra_vars'] == {'value': '********'} and 's3cret' not in response.text
    done = service.wait(response.json()['id'])
    assert done['status'] == 'successful', done['status_reason']
    output = stdout(service, done['id'])
    assert 'value is ********' in output and 's3cret' not in output
    with open_store(service.store_url) as store:
        job = store.jobs.get(done['id'])
    assert job['extra_vars'] == {'value': '********'} and job['secret_vars'] and 's3cret' not in job['secret_vars']


def test_a_launch_limit_only_narrows_the_template_hosts(service):
    assert create(service, 'no-limit').status_code == 201
    refused = launch(service, 'no-limit', limit='node1')
    assert refused.status_code == 422 and 'allow_limit' in refused.json()['detail']

    assert create(service, 'two-nodes', playbook='%s/hello.yml' % PLAYBOOKS, limit='node1:node2',
                  allow_limit=True).status_code == 201
    expected = {'all': {'node1', 'node2'}, '*': {'node1', 'node2'}, '~.*': {'node1', 'node2'},
                '!node1': {'node2'}, 'all:&node2': {'node2'}}
    jobs = {}
    for limit in expected:
        response = launch(service, 'two-nodes', limit=limit)
        assert response.status_code == 201, (limit, response.text)
        jobs[limit] = response.json()
    for limit, job in jobs.items():
        done = service.wait(job['id'])
        assert set(done['hosts']) == expected[limit], (limit, done['limit'], done['status_reason'])
    for limit in ('@/etc/passwd', 'node1,@/etc/hosts', ' @x', 'node1:@x'):
        response = launch(service, 'two-nodes', limit=limit)
        assert response.status_code == 422, (limit, response.text)
        assert 'never a file' in response.json()['detail']
    several = launch(service, 'two-nodes', limit='node2,node3')
    assert several.status_code == 422 and 'one host, group or pattern per launch' in several.json()['detail']
    alone = launch(service, 'two-nodes', limit='node3')
    assert alone.status_code == 201
    assert service.wait(alone.json()['id'])['hosts'] == {}


def test_a_token_limited_to_templates_launches_only_those(service, echo):
    assert create(service, 'hello', playbook='%s/hello.yml' % PLAYBOOKS).status_code == 201
    token = scoped_token(service, 'only-hello', ['hello'])
    response = launch(service, 'hello', token=token)
    assert response.status_code == 201, response.text
    other = launch(service, 'echo', token=token, extra_vars={'mode': 'full'})
    assert other.status_code == 403 and "not 'echo'" in other.json()['detail']
    with service.client() as client:
        bare = client.post('/api/v1/jobs', json={'playbook': '%s/hello.yml' % PLAYBOOKS, 'inventory': INVENTORY},
                           headers={'Authorization': 'Bearer %s' % token})
    assert bare.status_code == 403 and 'bare playbook' in bare.json()['detail']
    # Only operator tokens are limited to templates: a limited admin or viewer would mean nothing clear.
    with service.client('admin') as client:
        for role in ('admin', 'viewer'):
            refused = client.post('/api/v1/tokens', json={'name': 'limited-' + role, 'role': role,
                                                          'templates': ['hello']})
            assert refused.status_code == 400 and 'operator' in refused.json()['detail'], refused.text
        unknown = client.post('/api/v1/tokens', json={'name': 'limited-typo', 'role': 'operator',
                                                      'templates': ['hello', 'helo']})
        assert unknown.status_code == 400, unknown.text
        assert 'template helo does not exist' in unknown.json()['detail'] and 'hello' in unknown.json()['detail']
        assert 'limited-typo' not in [token['name'] for token in client.get('/api/v1/tokens').json()]


def test_edit_delete_and_the_audit_trail(service):
    assert create(service, 'editable', survey=[{'name': 'value', 'type': 'string'}]).status_code == 201
    with service.client('admin') as client:
        changed = client.patch('/api/v1/templates/editable', json={'tags': 'anything', 'forks': 3,
                                                                    'description': 'edited'})
        assert changed.status_code == 200, changed.text
        assert changed.json()['tags'] == 'anything' and changed.json()['inventory'] is None
        assert changed.json()['forks'] == 3 and changed.json()['survey'] == [
            dict(changed.json()['survey'][0], name='value', type='string')]
        back = client.patch('/api/v1/templates/editable', json={'inventory': INVENTORY, 'forks': None})
        assert back.json()['inventory'] == INVENTORY and back.json()['tags'] is None and back.json()['forks'] is None
        bad = client.patch('/api/v1/templates/editable', json={'survey': [{'name': 'ansible_host', 'type': 'string'}]})
        assert bad.status_code == 422 and 'ansible_' in bad.json()['detail']
        assert client.post('/api/v1/templates', json={'name': 'editable', 'playbook': 'x.yml',
                                                      'inventory': INVENTORY}).status_code in (400, 409)
    with service.client('operator') as client:
        assert client.patch('/api/v1/templates/editable', json={'forks': 1}).status_code == 403
        assert client.delete('/api/v1/templates/editable').status_code == 403
    job = launch(service, 'editable', extra_vars={'value': 'x'}).json()
    with service.client('admin') as client:
        assert client.delete('/api/v1/templates/editable').status_code == 200
        assert client.get('/api/v1/templates/editable').status_code == 404
    assert launch(service, 'editable').status_code == 404
    assert service.job(job['id'])['template'] == 'editable'
    with open_store(service.store_url) as store:
        entries = [(entry['action'], entry['actor']) for entry in store.audit.list(limit=1000)
                   if entry['target'] == 'editable']
    assert entries[::-1] == [('template.create', 'admin'), ('template.update', 'admin'), ('template.update', 'admin'),
                             ('template.launch', 'operator'), ('template.delete', 'admin')]


def test_create_refuses_bad_definitions_with_4xx(service):
    cases = {
        'ansible var': dict(survey=[{'name': 'ansible_user', 'type': 'string'}]),
        'not an identifier': dict(survey=[{'name': 'db-name', 'type': 'string'}]),
        'choices missing': dict(survey=[{'name': 'mode', 'type': 'choice'}]),
        'bad default': dict(survey=[{'name': 'n', 'type': 'integer', 'max': 3, 'default': 4}]),
        'password default': dict(survey=[{'name': 'p', 'type': 'password', 'default': 'hunter22'}]),
        'file limit': dict(limit='@/etc/passwd'),
        'absolute window': dict(plan={'lanes': 2, 'window_end': '2030-01-01T00:00:00Z'}),
        'bad zone': dict(plan={'lanes': 2, 'window_end_at': '06:00', 'window_timezone': 'Mars/Olympus'}),
        'outside the project': dict(playbook='/etc/passwd'),
        'run_command': dict(playbook='dbfleet.mysql.run_command', survey=[{'name': 'dbfleet_command', 'type': 'string'}]),
        'run_command by path': dict(playbook='playbooks/run_command.yml'),
        'inventory of var/': dict(inventory='var/secret.key'),
    }
    for case, fields in cases.items():
        response = create(service, 'bad', **fields)
        assert response.status_code in (400, 422), (case, response.text)
    with service.client('admin') as client:
        assert client.get('/api/v1/templates/bad').status_code == 404


def test_relative_deadline_and_window_end_and_idempotency(service):
    assert create(service, 'planned', playbook='%s/hello.yml' % PLAYBOOKS, deadline_after=3600,
                  plan={'lanes': 2, 'window_end_at': '06:00', 'window_timezone': 'Europe/Paris'}).status_code == 201
    first = launch(service, 'planned', idempotency_key='planned-once')
    assert first.status_code == 201, first.text
    again = launch(service, 'planned', idempotency_key='planned-once')
    assert again.status_code == 200 and again.json()['id'] == first.json()['id']
    job = first.json()
    assert job['deadline'] is not None and job['plan']['lanes'] == 2 and job['plan']['window_end'] is not None
    assert service.wait(job['id'])['status'] == 'successful'


# --- Found by an attacker's review ------------------------------------------------------------

def test_a_launch_cannot_take_a_schedule_slot_with_its_idempotency_key(service, echo):
    """The scheduler's keys are `schedule:<id>:<slot>`: a caller sending one would take the slot
    and keep the schedule's own job from running."""
    for key in ('schedule:0123456789abcdef0123456789abcdef:2030-01-01T00:00:00+00:00', 'SCHEDULE:x'):
        refused = launch(service, 'echo', extra_vars={'mode': 'full'}, idempotency_key=key)
        assert refused.status_code == 422 and 'scheduler' in refused.json()['detail'], refused.text
        with service.client('operator') as client:
            by_header = client.post('/api/v1/templates/echo/launch', json={'extra_vars': {'mode': 'full'}},
                                    headers={'Idempotency-Key': key})
        assert by_header.status_code == 422, by_header.text
        with service.client('admin') as client:
            bare = client.post('/api/v1/jobs', json={'playbook': '%s/hello.yml' % PLAYBOOKS, 'inventory': INVENTORY,
                                                     'idempotency_key': key})
        assert bare.status_code == 422, bare.text


def test_an_operator_relaunch_runs_only_what_the_template_takes_now(service):
    survey = [{'name': 'value', 'type': 'string'}, {'name': 'mode', 'type': 'choice', 'choices': ['full']}]
    assert create(service, 'tightened', survey=survey).status_code == 201
    old = launch(service, 'tightened', role='operator', extra_vars={'value': 'old-free-text; rm -rf', 'mode': 'full'})
    assert old.status_code == 201, old.text
    with service.client('admin') as admin:
        changed = admin.patch('/api/v1/templates/tightened', json={'survey': [
            {'name': 'value', 'type': 'string', 'pattern': '[0-9]+'}, {'name': 'mode', 'type': 'choice',
                                                                       'choices': ['full']}]})
        assert changed.status_code == 200, changed.text
    with service.client('operator') as operator:
        refused = operator.post('/api/v1/jobs/%s/relaunch' % old.json()['id'], json={'hosts': 'all'})
        assert refused.status_code == 422 and 'no longer takes' in refused.json()['detail'], refused.text
    with service.client('admin') as admin:
        assert admin.delete('/api/v1/templates/tightened').status_code == 200
    with service.client('operator') as operator:
        gone = operator.post('/api/v1/jobs/%s/relaunch' % old.json()['id'], json={'hosts': 'all'})
        assert gone.status_code == 409 and 'deleted' in gone.json()['detail'], gone.text


def test_an_operator_relaunch_stays_within_the_template_limit_as_it_is_now(service):
    assert create(service, 'narrowed', allow_limit=True, survey=[{'name': 'value', 'type': 'string'}]).status_code == 201
    old = launch(service, 'narrowed', extra_vars={'value': 'x'})
    assert old.status_code == 201 and old.json()['limit'] is None, old.text
    with service.client('admin') as admin:
        assert admin.patch('/api/v1/templates/narrowed', json={'limit': 'node1'}).status_code == 200
    with service.client('operator') as operator:
        again = operator.post('/api/v1/jobs/%s/relaunch' % old.json()['id'], json={'hosts': 'all'})
        assert again.status_code == 201 and again.json()['limit'] == 'node1', again.text
    with service.client('admin') as admin:  # an admin relaunches the job as it was
        as_it_was = admin.post('/api/v1/jobs/%s/relaunch' % old.json()['id'], json={'hosts': 'all'})
        assert as_it_was.status_code == 201 and as_it_was.json()['limit'] is None, as_it_was.text
    assert service.wait(again.json()['id'])['hosts'].keys() == {'node1'}
    assert service.wait(as_it_was.json()['id'])['hosts'].keys() == {'node1', 'node2', 'node3'}


def test_numbers_too_large_for_a_survey_are_refused(service):
    assert create(service, 'counted', survey=[{'name': 'n', 'type': 'integer'}]).status_code == 201
    huge = int('1' + '0' * 400)
    for value in (huge, -huge, 2 ** 64):
        refused = launch(service, 'counted', extra_vars={'n': value})
        assert refused.status_code == 422 and 'n:' in refused.json()['detail'], refused.text
    bounded = create(service, 'bounded', survey=[{'name': 'n', 'type': 'integer', 'max': huge}])
    assert bounded.status_code in (400, 422), bounded.text
