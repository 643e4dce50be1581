"""Hostile input through the real API (issue 12, sections 2 and 3): extra vars stay data whatever
their shape, secrets are masked everywhere, NaN/NUL/@file/odd inventories are refused with 422,
bodies are capped, the Ansible an API call runs is bounded in time and memory, and what dbfleet
writes on disk is private."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from dbfleet.store import open_store
from devtools.service_harness import INVENTORY, PLAYBOOKS, REPO, Service

SLOW_SECONDS = '613.25'  # an inventory script's sleep, told apart from any other process by it
LOOKUP = "{{ lookup('ansible.builtin.pipe', 'touch %s') }}"


def admin_post(service, path: str, body) -> httpx.Response:
    with service.client('admin') as client:
        return client.post(path, json=body)


def raw_post(service, path: str, text: str, role: str = 'admin') -> httpx.Response:
    with service.client(role) as client:
        return client.post(path, content=text.encode(), headers={'Content-Type': 'application/json'})


def job_count(service) -> int:
    with service.client('viewer') as client:
        return len(client.get('/api/v1/jobs', params={'limit': 1000}).json()['jobs'])


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body['detail'], str)
    for word in words:
        assert word in body['detail'], body['detail']
    return body


# -- 2. extra vars are data ------------------------------------------------------------------

def test_lookups_in_every_shape_stay_data(service, tmp_path):
    """A lookup in a string, a key, nested dicts, lists, lists of dicts, 20 levels deep: none runs,
    and the play sees (and prints) each exactly as sent."""
    markers = {name: tmp_path / name for name in ('string', 'key', 'nested', 'list', 'mixed', 'deep', 'top')}
    deep = LOOKUP % markers['deep']
    for level in range(20):
        deep = {'level%d' % level: deep} if level % 2 else [deep]
    value = {
        'string': LOOKUP % markers['string'],
        LOOKUP % markers['key']: 'a key',
        'nested': {'a': {'b': {'c': LOOKUP % markers['nested']}}},
        'list': [1, 'two', LOOKUP % markers['list']],
        'mixed': [{'x': [{'y': LOOKUP % markers['mixed']}]}],
        'deep': deep,
    }
    job = service.launch('echo_value.yml', role='admin', limit='node1',
                         extra_vars={'value': value, 'other': LOOKUP % markers['top']})
    done = service.wait(job['id'])
    assert done['status'] == 'successful', done['status_reason']
    assert [name for name, marker in markers.items() if marker.exists()] == [], 'a lookup ran'
    printed = json.dumps([event['data'].get('res') for event in service.events(job['id'], event='runner_on_ok')])
    for name in ('string', 'key', 'nested', 'list', 'mixed', 'deep'):
        assert "{{ lookup('ansible.builtin.pipe', 'touch %s') }}" % markers[name] in printed, name


MARKED = [
    {'value': {'__ansible_unsafe': LOOKUP}},
    {'value': {'__ansible_vault': '$ANSIBLE_VAULT;1.1;AES256\n3132'}},
    {'value': {'__ansible_type': 'EncryptedString', 'ciphertext': 'x'}},
    {'value': {'keep': 1, '__ansible_unsafe': LOOKUP, 'also': [2]}},
    {'value': [1, [2, {'__ansible_unsafe': LOOKUP}]]},
    {'value': {'a': {'b': {'c': {'d': [{'e': {'__ansible_vault': 'x'}}]}}}}},
    {'__ansible_unsafe': LOOKUP},
    {'value': {'__ANSIBLE_UNSAFE': LOOKUP}},
    {'value': {'__ansible_future_marker': 'x'}},
]


@pytest.mark.parametrize('extra_vars', MARKED)
def test_ansible_marker_keys_are_refused_everywhere(service, tmp_path, extra_vars):
    text = json.dumps(extra_vars).replace('%s', str(tmp_path / 'ran'))
    extra_vars = json.loads(text)
    before = job_count(service)
    job = admin_post(service, '/api/v1/jobs', {'playbook': PLAYBOOKS + '/echo_value.yml', 'inventory': INVENTORY,
                                               'extra_vars': extra_vars})
    assert_problem(job, 422, '__ansible', 'refused')
    schedule = admin_post(service, '/api/v1/schedules', {
        'name': 'marked', 'kind': 'interval', 'expression': '1h', 'paused': True,
        'job': {'playbook': PLAYBOOKS + '/echo_value.yml', 'inventory': INVENTORY, 'extra_vars': extra_vars}})
    assert_problem(schedule, 422, '__ansible')
    assert job_count(service) == before and not (tmp_path / 'ran').exists()


def test_a_marker_already_in_the_store_never_reaches_ansible(service, tmp_path):
    """A job recorded before the check (here: written to the store directly, then queued by the
    reconciler) is refused by the worker, and cannot be relaunched."""
    marker = tmp_path / 'ran'
    with open_store(service.store_url) as store:
        job, _ = store.jobs.create({'playbook': PLAYBOOKS + '/echo_value.yml', 'inventory': INVENTORY,
                                   'limit_pattern': 'node1',
                                   'extra_vars': {'value': [{'__ansible_unsafe': LOOKUP % marker}]}}, created_by='old')
    done = service.wait(job['id'])
    assert done['status'] == 'failed' and '__ansible' in done['status_reason'], done['status_reason']
    assert not marker.exists()
    relaunch = admin_post(service, '/api/v1/jobs/%s/relaunch' % job['id'], {'hosts': 'all'})
    assert_problem(relaunch, 422, 'cannot be relaunched', '__ansible')


def test_a_schedule_edit_cannot_bring_a_marker(service):
    created = admin_post(service, '/api/v1/schedules', {
        'name': 'edited', 'kind': 'interval', 'expression': '1h', 'paused': True,
        'job': {'playbook': PLAYBOOKS + '/echo_value.yml', 'inventory': INVENTORY, 'extra_vars': {'value': 1}}})
    assert created.status_code == 201, created.text
    with service.client('admin') as client:
        edited = client.patch('/api/v1/schedules/edited', json={'job': {
            'playbook': PLAYBOOKS + '/echo_value.yml', 'inventory': INVENTORY,
            'extra_vars': {'value': [{'__ansible_unsafe': LOOKUP % '/tmp/x'}]}}})
        assert_problem(edited, 422, '__ansible')
        assert client.get('/api/v1/schedules/edited').json()['job']['extra_vars'] == {'value': 1}


def test_a_crontab_entry_cannot_bring_a_marker(service):
    text = '__ansible_unsafe={{ lookup("pipe", "id") }}\n*/5 * * * * /bin/true\n'
    response = admin_post(service, '/api/v1/cron/import', {
        'host': 'node1', 'file': {'kind': 'user', 'name': 'root', 'system': False}, 'text': text,
        'inventory': INVENTORY})
    assert_problem(response, 422, '__ansible')


def test_bare_admin_jobs_may_set_connection_variables(service):
    job = service.launch('echo_value.yml', role='admin', limit='node1',
                         extra_vars={'value': 'v', 'ansible_connection': 'local'})
    assert service.wait(job['id'])['status'] == 'successful'


# -- secrets ---------------------------------------------------------------------------------

SECRETS = {
    'mysql_pwd': 'Sekrit-mysql-pwd-1', 'MYSQL_PWD': 'Sekrit-MYSQL-PWD-2', 'x_pwd': 'Sekrit-x-pwd-3',
    'db_password': 'Sekrit-password-4', 'Passphrase': 'Sekrit-passphrase-5', 'api_token': 'Sekrit-token-6',
    'my_secret': 'Sekrit-secret-7', 'sshKey': 'Sekrit-key-8', 'db_credential': 'Sekrit-credential-9',
}


def test_secret_names_are_masked_in_every_place(service):
    nested = {'user': 'plain-user', 'inner': {'Token_value': 'Sekrit-nested-10'}, 'list': [{'pass': 'Sekrit-11'}]}
    extra_vars = dict(SECRETS, conn=nested, names=sorted(SECRETS) + ['conn'])
    job = service.launch('echo_named.yml', role='admin', limit='node1', extra_vars=extra_vars)
    done = service.wait(job['id'])
    assert done['status'] == 'successful', done['status_reason']
    secrets = list(SECRETS.values()) + ['Sekrit-nested-10', 'Sekrit-11']

    record = done['extra_vars']
    assert all(record[name] == '********' for name in SECRETS), record
    assert record['conn'] == {'user': 'plain-user', 'inner': {'Token_value': '********'},
                              'list': [{'pass': '********'}]}
    events = json.dumps(service.events(job['id']))
    with service.client('viewer') as client:
        stdout = client.get('/api/v1/jobs/%s/stdout' % job['id']).text
        with client.stream('GET', '/api/v1/jobs/%s/events' % job['id'],
                           headers={'Accept': 'text/event-stream'}) as stream:
            sse = ''.join(stream.iter_text())
    assert 'mysql_pwd is ********' in stdout and 'plain-user' in stdout, 'masked, and only the secrets'
    assert 'event: end' in sse or '"end"' in sse
    schedule = admin_post(service, '/api/v1/schedules', {
        'name': 'secretive', 'kind': 'interval', 'expression': '1h', 'paused': True,
        'job': {'playbook': PLAYBOOKS + '/echo_named.yml', 'inventory': INVENTORY, 'extra_vars': extra_vars}})
    assert schedule.status_code == 201, schedule.text
    with service.client('viewer') as client:
        schedule_record = client.get('/api/v1/schedules/secretive').text
    for place, text in {'job record': json.dumps(done), 'events': events, 'stdout': stdout, 'SSE': sse,
                        'schedule record': schedule_record}.items():
        assert [secret for secret in secrets if secret in text] == [], place
    at_rest = [path for path in service.directory.rglob('*') if path.is_file()
               and any(secret.encode() in path.read_bytes() for secret in secrets)]
    assert at_rest == [], 'store, logs and run directories hold no secret'


# -- NaN, infinity, NUL ---------------------------------------------------------------------

@pytest.mark.parametrize('value', ['NaN', 'Infinity', '-Infinity', '1e999', '-1e999'])
def test_non_finite_numbers_are_refused(service, value):
    before = job_count(service)
    body = '{"playbook": "%s/hello.yml", "inventory": "%s", "extra_vars": {"x": {"y": [%s]}}}' % (
        PLAYBOOKS, INVENTORY, value)
    assert_problem(raw_post(service, '/api/v1/jobs', body), 422, 'invalid request')
    report = ('{"id": "%s", "schedule_id": "x", "host": "h", "phase": "end", "started_at": "2026-01-01T00:00:00Z", '
              '"finished_at": "2026-01-01T00:00:01Z", "exit_code": 0, "duration_seconds": %s}' % ('0' * 32, value))
    assert_problem(raw_post(service, '/api/v1/cron/runs', report), 422)
    assert job_count(service) == before


@pytest.mark.parametrize('body', [
    {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY, 'extra_vars': {'x': 'a\x00b'}},
    {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY, 'extra_vars': {'x\x00': 1}},
    {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY, 'extra_vars': {'x': [{'y': ['\x00']}]}},
    {'playbook': PLAYBOOKS + '/hello.yml\x00', 'inventory': INVENTORY},
    {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY, 'limit': 'node1\x00'},
])
def test_nul_characters_in_a_body_are_refused(service, body):
    assert_problem(admin_post(service, '/api/v1/jobs', body), 422, 'NUL')


def test_nul_characters_in_the_path_and_query_are_refused(service):
    with service.client('viewer') as client:
        assert_problem(client.get('/api/v1/jobs/abc%00def'), 422, 'NUL')
        assert_problem(client.get('/api/v1/jobs', params={'playbook': 'a\x00b'}), 422, 'NUL')
        assert_problem(client.get('/api/v1/schedules/x%00y'), 422, 'NUL')


# -- limits, error echoes ----------------------------------------------------------------------

@pytest.mark.parametrize('limit', ['@x', ' @x', 'a,@x', 'a:@x', 'node1:!@/etc/passwd', '@/etc/passwd'])
def test_a_limit_is_never_a_file(service, limit):
    job = admin_post(service, '/api/v1/jobs', {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY,
                                               'limit': limit})
    schedule = admin_post(service, '/api/v1/schedules', {
        'name': 'limited', 'kind': 'interval', 'expression': '1h', 'paused': True,
        'job': {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY, 'limit': limit}})
    preview = admin_post(service, '/api/v1/plans/preview', {'playbook': PLAYBOOKS + '/hello.yml',
                                                            'inventory': INVENTORY, 'limit': limit, 'lanes': 2})
    for response in (job, schedule, preview):
        assert_problem(response, 422, 'limit')
        assert 'root:' not in response.text


def test_error_replies_echo_at_most_200_characters_of_input(service):
    long = 'n' * 5000
    replies = [
        admin_post(service, '/api/v1/jobs', {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY,
                                             'limit': long + ',@x'}),
        admin_post(service, '/api/v1/jobs', {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': 'inventories/' + long[:400],
                                             'limit': 'node1'}),
        admin_post(service, '/api/v1/jobs', {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY,
                                             'extra_vars': {long[:300]: {'__ansible_unsafe': 'x'}}}),
    ]
    for response in replies:
        assert 400 <= response.status_code < 500, response.text
        assert 'n' * 201 not in response.text


# -- inventories, time and memory limits: a project of the test's own -----------------------

class OwnProject(Service):
    """The service over a project directory of the test's own, with tight limits for Ansible."""

    def __init__(self, directory: Path, project: Path, **settings):
        super().__init__(directory, workers=1)
        self.project = project
        self.settings = settings

    @property
    def env(self) -> dict:
        env = super().env
        env.update(DBFLEET_PROJECT_DIR=str(self.project), DBFLEET_VAR_DIR=str(self.project / 'var'))
        env.pop('DBFLEET_INVENTORY_DIRS', None)  # the default: inventories/
        env.pop('ANSIBLE_CONFIG', None)
        env.update({'DBFLEET_' + name.upper(): str(value) for name, value in self.settings.items()})
        return env


def make_project(root: Path) -> Path:
    project = root / 'project'
    (project / 'playbooks').mkdir(parents=True)
    (project / 'inventories' / 'group').mkdir(parents=True)
    (project / 'var').mkdir()
    (project / 'var' / 'notes').write_text('nothing\n')
    shutil.copy(REPO / PLAYBOOKS / 'hello.yml', project / 'playbooks' / 'hello.yml')
    hosts = {'all': {'vars': {'ansible_connection': 'local'}, 'hosts': {'node1': None, 'node2': None}}}
    (project / 'inventories' / 'hosts.yml').write_text(yaml.safe_dump(hosts))
    (project / 'inventories' / 'hosts').write_text('node3 ansible_connection=local\n')
    (project / 'inventories' / 'group' / 'a.ini').write_text('node4 ansible_connection=local\n')
    (project / 'inventories' / 'huge.yml').write_text(
        'all:\n  hosts:\n' + ''.join('    host%06d:\n' % index for index in range(150000)))
    (project / 'inventories' / 'secret.key').write_text('not an inventory\n')
    (project / 'inventories' / 'passwd').symlink_to('/etc/passwd')
    (project / 'inventories' / 'var').symlink_to(project / 'var')
    (project / 'inventories' / 'venv').symlink_to(sys.prefix)
    (project / 'inventories' / 'root').symlink_to(project)
    (project / 'inventories' / 'leaky').mkdir()
    (project / 'inventories' / 'leaky' / 'ok.yml').write_text(yaml.safe_dump(hosts))
    (project / 'inventories' / 'leaky' / 'out.yml').symlink_to('/etc/hostname')
    # An inventory script that never ends (the script plugin is on in this project only).
    (project / 'ansible.cfg').write_text('[inventory]\nenable_plugins = script, yaml, ini\n')
    slow = project / 'inventories' / 'slow'
    slow.write_text('#!/bin/sh\nexec sleep %s\n' % SLOW_SECONDS)
    slow.chmod(0o755)
    return project


@pytest.fixture(scope='module')
def own(tmp_path_factory):
    root = tmp_path_factory.mktemp('own')
    service = OwnProject(root / 'service', make_project(root), ansible_call_seconds=60,
                         ansible_call_memory_bytes=256 * 1024 * 1024).start()
    yield service
    service.stop()


@pytest.fixture(scope='module')
def hurried(tmp_path_factory):
    root = tmp_path_factory.mktemp('hurried')
    service = OwnProject(root / 'service', make_project(root), ansible_call_seconds=2).start()
    yield service
    service.stop()


def preview(service, inventory: str) -> httpx.Response:
    with service.client('viewer') as client:
        return client.post('/api/v1/plans/preview', json={'playbook': 'playbooks/hello.yml', 'inventory': inventory,
                                                           'lanes': 2}, timeout=300)


@pytest.mark.parametrize('inventory', ['inventories/hosts.yml', 'inventories/hosts', 'inventories/group',
                                       'inventories/group/a.ini'])
def test_inventory_files_and_directories_under_inventories_are_accepted(own, inventory):
    response = preview(own, inventory)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize('inventory, reason', [
    ('var/notes', 'inventories are under inventories/'),
    ('.', 'inventories are under inventories/'),
    ('ansible.cfg', 'inventories are under inventories/'),
    ('inventories/secret.key', 'not an inventory file'),
    ('inventories/passwd', 'leads out'),
    ('inventories/var', 'leads out'),
    ('inventories/var/notes', 'leads out'),
    ('inventories/venv', 'leads out'),
    ('inventories/root', 'leads out'),
    ('inventories/leaky', 'leads out'),
    ('inventories/../var/notes', "'..'"),
    ('/etc/passwd', 'absolute'),
])
def test_anything_else_is_refused_as_an_inventory(own, inventory, reason):
    for response in (preview(own, inventory),
                     admin_post(own, '/api/v1/jobs', {'playbook': 'playbooks/hello.yml', 'inventory': inventory})):
        assert_problem(response, 422, reason)
        assert 'root:' not in response.text and 'nothing' not in response.text


def test_a_preview_that_needs_too_much_memory_answers_413(own):
    assert_problem(preview(own, 'inventories/huge.yml'), 413, 'more memory')
    assert preview(own, 'inventories/hosts.yml').status_code == 200, 'the next preview is fine'


def test_a_preview_that_takes_too_long_answers_504(hurried):
    assert_problem(preview(hurried, 'inventories/slow'), 504, 'DBFLEET_ANSIBLE_CALL_SECONDS')
    deadline = time.monotonic() + 30
    while _sleeping() and time.monotonic() < deadline:  # SIGKILL is delivered, not awaited
        time.sleep(0.2)
    assert _sleeping() == [], 'the slow inventory was killed with its ansible'


def _sleeping() -> list[int]:
    found = []
    for entry in Path('/proc').iterdir():
        try:
            if entry.name.isdigit() and (entry / 'cmdline').read_bytes() == b'sleep\x00%s\x00' % SLOW_SECONDS.encode() \
                    and ') Z' not in (entry / 'stat').read_text():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


# -- body size ---------------------------------------------------------------------------------

def test_a_body_over_the_cap_is_refused_before_it_is_parsed(service):
    big = '{"playbook": "x", "inventory": "y", "extra_vars": {"blob": "%s"}}' % ('x' * (1024 * 1024))
    assert_problem(raw_post(service, '/api/v1/jobs', big), 413, 'larger than 1048576 bytes')

    def chunks():
        yield b'{"playbook": "x", "extra_vars": {"blob": "'
        for _ in range(40):
            yield b'x' * 65536
        yield b'"}}'

    with service.client('admin') as client:
        streamed = client.post('/api/v1/jobs', content=chunks(), headers={'Content-Type': 'application/json'})
    assert 'content-length' not in {name.lower() for name in streamed.request.headers}
    assert_problem(streamed, 413, 'larger than')
    under = '{"playbook": "%s/hello.yml", "inventory": "%s", "extra_vars": {"blob": "%s"}}' % (
        PLAYBOOKS, INVENTORY, 'x' * 1000)
    assert raw_post(service, '/api/v1/jobs', under, role='admin').status_code == 201


# -- files on disk ---------------------------------------------------------------------------

def test_store_key_var_and_run_directories_are_private(service):
    job = service.launch('echo_value.yml', role='admin', limit='node1', extra_vars={'value': 1, 'token': 'abcdef'})
    assert service.wait(job['id'])['status'] == 'successful'
    var = service.directory / 'var'
    mode = lambda path: stat.S_IMODE(os.stat(path).st_mode)  # noqa: E731
    assert mode(service.directory / 'store.db') == 0o600
    assert mode(var / 'secret.key') == 0o600
    assert mode(var) == 0o700 and mode(var / 'runs') == 0o700
    runs = list((var / 'runs').iterdir())
    assert runs and all(mode(run) == 0o700 for run in runs)
