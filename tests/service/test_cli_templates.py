"""`dbfleet templates` and `dbfleet tokens create --template` end to end: the real CLI as a
subprocess against a real API, Redis and workers."""

from __future__ import annotations

import json
import subprocess

import pytest

from devtools.service_harness import INVENTORY, PLAYBOOKS

pytestmark = pytest.mark.service

TEMPLATE_FILE = """
description: echo a value on the test nodes
playbook: %s/echo_value.yml
inventory: %s
allow_limit: true
survey:
  - name: value
    type: string
    required: true
    max_length: 20
  - name: word
    type: password
""" % (PLAYBOOKS, INVENTORY)


def templates(service, *args, role: str = 'admin', token: str | None = None) -> subprocess.CompletedProcess:
    return service.dbfleet('templates', *args, token=token or service.tokens[role])


def one_line_error(completed: subprocess.CompletedProcess) -> str:
    assert completed.returncode == 2, (completed.stdout, completed.stderr)
    assert completed.stderr.startswith('dbfleet: ') and completed.stderr.count('\n') == 1, completed.stderr
    return completed.stderr


def test_create_from_a_file_show_list_launch_wait_edit_delete(service, tmp_path):
    path = tmp_path / 'echo.yml'
    path.write_text(TEMPLATE_FILE)
    created = templates(service, 'create', 'cli-echo', '--from-file', str(path), '--forks', '2')
    assert created.returncode == 0, created.stderr
    assert 'echo_value.yml' in created.stdout and 'password' in created.stdout
    shown = json.loads(templates(service, 'show', 'cli-echo', '--json', role='viewer').stdout)
    assert shown['forks'] == 2 and shown['allow_limit'] is True and [item['name'] for item in shown['survey']] == \
        ['value', 'word']
    listed = templates(service, 'list', role='viewer')
    assert listed.returncode == 0 and 'cli-echo' in listed.stdout and 'value, word' in listed.stdout

    waited = templates(service, 'launch', 'cli-echo', '-e', 'value=hello', '-e', 'word=sesame-open-wide',
                       '--limit', 'node1', '--wait', role='operator')
    assert waited.returncode == 0, waited.stderr
    assert 'node1' in waited.stdout and 'node2' not in waited.stdout and 'successful' in waited.stdout
    assert 'sesame' not in waited.stdout

    plain = templates(service, 'launch', 'cli-echo', '-e', 'value=again', '--json', role='operator')
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)['template'] == 'cli-echo'

    edited = templates(service, 'edit', 'cli-echo', '--no-allow-limit', '--json')
    assert edited.returncode == 0 and json.loads(edited.stdout)['allow_limit'] is False
    assert 'allow_limit' in one_line_error(templates(service, 'launch', 'cli-echo', '-e', 'value=x', '--limit',
                                                     'node1', role='operator'))
    assert templates(service, 'delete', 'cli-echo').returncode == 0
    assert 'no template' in one_line_error(templates(service, 'show', 'cli-echo'))


def test_refusals_are_one_line_without_secrets(service, tmp_path):
    path = tmp_path / 'echo.yml'
    path.write_text(TEMPLATE_FILE)
    assert templates(service, 'create', 'cli-refusals', '--from-file', str(path)).returncode == 0
    assert '403' not in one_line_error(templates(service, 'create', 'x', 'p.yml', '-i', INVENTORY, role='operator'))
    unknown = one_line_error(templates(service, 'launch', 'cli-refusals', '-e', 'value=x', '-e',
                                       'ansible_connection=local', role='operator'))
    assert "'ansible_connection' is not in the template's survey" in unknown
    secret = one_line_error(templates(service, 'launch', 'cli-refusals', '-e', 'value=x', '-e', 'word=12345',
                                      role='operator'))
    assert 'word: must be a string' in secret and '12345' not in secret
    assert 'never a file' in one_line_error(templates(service, 'launch', 'cli-refusals', '-e', 'value=x',
                                                      '--limit', '@/etc/passwd', role='operator'))
    path.write_text('[unclosed')
    assert 'not valid YAML' in one_line_error(templates(service, 'create', 'broken', '--from-file', str(path)))
    assert 'nothing to change' in one_line_error(templates(service, 'edit', 'cli-refusals'))


def test_a_token_created_for_templates_launches_only_those(service):
    for name in ('cli-hello', 'cli-other'):
        assert templates(service, 'create', name, '%s/hello.yml' % PLAYBOOKS, '-i', INVENTORY).returncode == 0
    created = service.dbfleet('tokens', 'create', 'cli-scoped', '--role', 'operator', '--template', 'cli-hello',
                              '--json')
    assert created.returncode == 0, created.stderr
    record = json.loads(created.stdout)
    assert record['templates'] == ['cli-hello']
    token = record['token']
    assert templates(service, 'launch', 'cli-hello', token=token).returncode == 0
    assert "not 'cli-other'" in one_line_error(templates(service, 'launch', 'cli-other', token=token))
    bare = service.dbfleet('jobs', 'launch', '%s/hello.yml' % PLAYBOOKS, '-i', INVENTORY, token=token)
    assert 'bare playbook' in one_line_error(bare)
    listed = service.dbfleet('tokens', 'list')
    assert 'cli-hello' in listed.stdout


def test_an_operator_schedules_a_template_from_the_cli(service, tmp_path):
    path = tmp_path / 'echo.yml'
    path.write_text(TEMPLATE_FILE)
    assert templates(service, 'create', 'cli-scheduled', '--from-file', str(path)).returncode == 0
    operator = service.tokens['operator']
    created = service.dbfleet('schedules', 'create', 'cli-nightly', '--template', 'cli-scheduled', '--cron',
                              '30 1 * * *', '--tz', 'Europe/Paris', '-e', 'value=nightly', '-e', 'word=sesame-x',
                              '--limit', 'node2', '--paused', token=operator)
    assert created.returncode == 0, created.stderr
    assert 'template cli-scheduled --limit node2' in created.stdout and 'sesame' not in created.stdout
    updated = service.dbfleet('schedules', 'update', 'cli-nightly', '-e', 'value=other', '--json', token=operator)
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)['job']['extra_vars'] == {'value': 'other'}
    refused = service.dbfleet('schedules', 'update', 'cli-nightly', '-e', 'value=this-is-far-too-long-a-value',
                              token=operator)
    assert 'value: at most 20 characters' in one_line_error(refused)
    assert 'exactly one' in one_line_error(service.dbfleet('schedules', 'create', 'x', 'p.yml', '--template', 'y',
                                                           '--cron', '* * * * *', token=operator))
    listed = service.dbfleet('schedules', 'list', token=operator)
    assert 'template cli-scheduled' in listed.stdout
