"""The API never answers 5xx: a bounded schemathesis run over every operation with every check,
and a regression test for each server error found so far, each through the real API."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devtools.service_harness import INVENTORY, PLAYBOOKS

pytestmark = pytest.mark.service
SCHEMATHESIS = str(Path(sys.executable).parent / 'schemathesis')
SCHEMATHESIS_CONFIG = str(Path(__file__).with_name('schemathesis.toml'))
DEEP = '(' * 1000 + 'mysql'  # within the 2000 characters a tags field takes


def test_the_openapi_document_describes_errors(service):
    document = httpx.get(service.url + '/openapi.json', timeout=60).json()
    launch = document['paths']['/api/v1/jobs']['post']
    assert {'201', '400', '401', '403', '413', '422'} <= set(launch['responses'])
    assert launch['responses']['400']['content']['application/json']['schema']['$ref'].endswith('/Problem')
    assert '/healthz' in document['paths']


def test_created_resources_link_to_their_operations(service):
    document = httpx.get(service.url + '/openapi.json', timeout=60).json()
    links = document['paths']['/api/v1/jobs']['post']['responses']['201']['links']
    targets = {link['operationRef']: link['parameters'] for link in links.values()}
    for path, method in (('{job_id}', 'get'), ('{job_id}~1events', 'get'), ('{job_id}~1cancel', 'post'),
                         ('{job_id}~1relaunch', 'post')):
        assert targets['#/paths/~1api~1v1~1jobs~1%s/%s' % (path, method)] == {'job_id': '$response.body#/id'}
    schedules = document['paths']['/api/v1/schedules']['post']['responses']['201']['links']
    assert {'GET_schedules', 'PATCH_schedules', 'DELETE_schedules', 'POST_schedules_pause'} <= set(schedules)
    tokens = document['paths']['/api/v1/tokens']['post']['responses']['201']['links']
    assert tokens['DELETE_tokens']['parameters'] == {'name': '$response.body#/name'}


def test_no_input_gives_a_server_error(service):
    """schemathesis's CLI, as a user would run it: every operation, every check, stateful links.

    Deterministic: a fixed seed, no example database, one worker (CPython 3.11 before 3.11.8
    shares the AST constructor's recursion counter between threads, gh-106905, and hypothesis
    parses source while it runs: two workers ended in `SystemError: AST constructor recursion
    depth mismatch`). `DELETE /api/v1/tokens/{name}` is left out: schemathesis infers links from
    `GET /api/v1/tokens` to it and revoked the module's tokens (its own included) mid-run;
    tests/unit/test_cli_tokens.py covers revocation. It runs with a token of its own."""
    name = 'schemathesis-%s' % secrets.token_hex(16)
    created = service.dbfleet('tokens', 'create', name, '--role', 'admin', '--json', check=True)
    token = json.loads(created.stdout)['token']
    completed = subprocess.run(
        [SCHEMATHESIS, '--config-file', SCHEMATHESIS_CONFIG, 'run', service.url + '/openapi.json',
         '--checks', 'all', '--max-examples', '25', '--phases', 'examples,coverage,fuzzing,stateful',
         '--workers', '1', '--header', 'Authorization: Bearer %s' % token, '--request-timeout', '30',
         '--seed', '4711', '--generation-database', 'none', '--no-color',
         '--exclude-method', 'DELETE', '--exclude-path', '/api/v1/tokens/{name}'],
        capture_output=True, text=True, timeout=600, cwd=service.directory)
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    print(completed.stdout[-1500:])
    assert ' passed' in completed.stdout
    with service.client('admin') as admin:
        listed = admin.get('/api/v1/tokens')
    assert listed.status_code == 200, listed.text
    assert not [record['name'] for record in listed.json() if record['revoked_at'] and record['name'] in
                (name, 'admin', 'operator', 'viewer')]


def assert_refused(response: httpx.Response, *words: str) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()
    assert all(word in body['detail'] for word in words), body
    assert len(body['detail']) < 1000
    return body


def test_a_tag_expression_nested_too_deep_is_refused_everywhere(service):
    job = {'playbook': PLAYBOOKS + '/hello.yml', 'tags': DEEP}
    with service.client('admin') as admin:
        assert_refused(admin.post('/api/v1/jobs', json=job), 'nested too deeply')
        assert_refused(admin.post('/api/v1/plans/preview', json={'tags': DEEP, 'lanes': 2}), 'nested too deeply')
        assert_refused(admin.post('/api/v1/schedules', json={'name': 'deep', 'kind': 'cron',
                                                             'expression': '0 3 * * *', 'job': job}),
                       'nested too deeply')
        assert_refused(admin.post('/api/v1/windows', json={'name': 'deep', 'kind': 'recurring', 'start': '0 2 * * *',
                                                           'duration_seconds': 3600, 'tags': DEEP}),
                       'nested too deeply')
        for deep in ('(' * 995 + 'mysql' + ')' * 995, 'not ' * 450 + 'mysql', '(not ' * 390 + 'mysql'):
            assert_refused(admin.post('/api/v1/jobs', json=dict(job, tags=deep)), 'nested too deeply')


def test_a_time_without_a_utc_equivalent_is_refused(service):
    with service.client('viewer') as viewer:
        assert_refused(viewer.get('/api/v1/jobs', params={'created_after': '0001-01-01T00:00:00+14:00'}),
                       'created_after')
        assert_refused(viewer.get('/api/v1/jobs', params={'created_before': '9999-12-31T23:59:59-14:00'}),
                       'created_before')
        assert_refused(viewer.get('/api/v1/jobs', params={'created_after': '1700000000'}), 'ISO 8601')
        assert viewer.get('/api/v1/jobs', params={'created_after': '2000-01-01T00:00:00+14:00'}).status_code == 200
    with service.client('admin') as admin:
        assert_refused(admin.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY,
                                                        'deadline': '0001-01-01T00:00:00+14:00'}), 'deadline')


def test_a_last_event_id_beyond_any_event_is_refused_before_the_stream(service):
    job = service.launch('hello.yml', limit='node1')
    service.wait(job['id'])
    url = service.url + '/api/v1/jobs/%s/events' % job['id']
    headers = {'Accept': 'text/event-stream', **service.client('viewer').headers}
    for value in ('99999999999999999999', '2147483649', 'abc'):
        assert_refused(httpx.get(url, headers=dict(headers, **{'Last-Event-ID': value}), timeout=30),
                       'Last-Event-ID' if value.isdigit() else 'last-event-id')
    with httpx.stream('GET', url, headers=dict(headers, **{'Last-Event-ID': '1'}), timeout=60) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines()]
    assert 'event: end' in lines and 'id: 1' not in lines


def test_null_for_a_field_a_schedule_cannot_do_without_is_422(service):
    body = {'name': 'keeps-its-name', 'kind': 'cron', 'expression': '0 3 * * *', 'deadline_after': 600,
            'job': {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY}}
    with service.client('admin') as admin:
        assert admin.post('/api/v1/schedules', json=body).status_code == 201
        for field in ('name', 'kind', 'expression', 'timezone', 'overlap', 'misfire_grace_seconds', 'catch_up',
                      'jitter_seconds', 'window_policy', 'after', 'job'):
            response = admin.patch('/api/v1/schedules/keeps-its-name', json={field: None})
            assert response.status_code == 422, (field, response.text)
            assert response.json()['errors'][0]['field'] == field
        cleared = admin.patch('/api/v1/schedules/keeps-its-name', json={'deadline_after': None})
        assert cleared.status_code == 200 and cleared.json()['deadline_after'] is None
        assert admin.get('/api/v1/schedules/keeps-its-name').json()['name'] == 'keeps-its-name'


@pytest.mark.parametrize('command', ['echo one\necho two', 'echo one\r', 'echo one\r\necho two'])
def test_a_bridged_command_with_a_line_break_is_refused(service, command):
    imported = {'host': 'db-breaks', 'file': {'kind': 'user', 'name': 'root', 'system': False},
                'text': '0 5 * * * /usr/bin/true\n'}
    with service.client('admin') as admin:
        answer = admin.post('/api/v1/cron/import', json=imported)
        assert answer.status_code == 201, answer.text
        schedule = answer.json()['entries'][0]['entry']['schedule_id']
        job = admin.get('/api/v1/schedules/%s' % schedule).json()['job']
        job['extra_vars']['dbfleet_command']['command'] = command
        template = {key: job[key] for key in ('playbook', 'inventory', 'limit', 'extra_vars')}
        assert_refused(admin.patch('/api/v1/schedules/%s' % schedule, json={'job': template}), 'crontab line')
        entry = admin.get('/api/v1/cron/entries/%s' % schedule).json()
    assert entry['original'] == '0 5 * * * /usr/bin/true'


def test_a_405_says_which_methods_the_path_serves(service):
    with service.client('admin') as admin:
        response = admin.request('PUT', '/api/v1/schedules/anything')
        assert response.status_code == 405
        assert set(response.headers['Allow'].split(', ')) >= {'GET', 'PATCH', 'DELETE'}
        response = admin.request('DELETE', '/api/v1/jobs')
        assert response.status_code == 405 and {'GET', 'POST'} <= set(response.headers['Allow'].split(', '))
        assert 'allowed' in response.json()['detail']
