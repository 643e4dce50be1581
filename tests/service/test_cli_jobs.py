"""`dbfleet jobs` end to end: the real CLI as a subprocess against a real API, Redis and workers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import one_line_error
from devtools.service_harness import INVENTORY, PLAYBOOKS, free_port

pytestmark = pytest.mark.service

HELLO = '%s/hello.yml' % PLAYBOOKS
FAIL_ON = '%s/fail_on.yml' % PLAYBOOKS
SLEEP = '%s/sleep.yml' % PLAYBOOKS


def jobs(service, *args, role: str | None = 'admin', **kwargs) -> subprocess.CompletedProcess:
    return service.dbfleet('jobs', *args, token=service.tokens[role] if role else None, **kwargs)


def launched(completed: subprocess.CompletedProcess) -> str:
    """The id `jobs launch` (without --wait) printed."""
    assert completed.returncode == 0, completed.stderr
    job_id, status = completed.stdout.split()
    assert status == 'queued'
    return job_id


def host_rows(stdout: str) -> dict[str, list[int]]:
    """The per-host table: host -> [ok, changed, failed, unreachable, skipped]."""
    rows = {}
    for line in stdout.splitlines():
        words = line.split()
        if len(words) == 6 and words[0].startswith('node') and all(word.isdigit() for word in words[1:]):
            rows[words[0]] = [int(word) for word in words[1:]]
    return rows


def test_launch_wait_follows_the_play_and_prints_each_host(service):
    completed = jobs(service, 'launch', HELLO, '--inventory', INVENTORY, '--wait')
    assert completed.returncode == 0, completed.stderr
    # Not a terminal: a line a finished task instead of a live bar.
    assert 'task Hello: 3/3 hosts done' in completed.stdout
    assert host_rows(completed.stdout) == {name: [1, 0, 0, 0, 0] for name in ('node1', 'node2', 'node3')}
    assert completed.stdout.rstrip().splitlines()[-1].endswith(' successful')


def test_launch_wait_of_a_failing_play_exits_1_and_shows_the_failed_host(service):
    completed = jobs(service, 'launch', FAIL_ON, '-i', INVENTORY, '-e', 'fail_hosts=["node2"]', '--wait')
    assert completed.returncode == 1, completed.stderr
    assert 'task Fail where asked: 3/3 hosts done, failed: node2' in completed.stdout
    assert 'task Carry on: 2/3 hosts done' in completed.stdout
    rows = host_rows(completed.stdout)
    assert rows['node2'][2] == 1 and rows['node1'][2] == rows['node3'][2] == 0
    last = completed.stdout.rstrip().splitlines()[-1]
    assert ' failed: ' in last and 'node2' in last


def test_launch_then_show_list_and_logs(service, tmp_path):
    variables = tmp_path / 'vars.yml'
    variables.write_text('greeting: hi\ncount: 1\n')
    completed = jobs(service, 'launch', HELLO, '-i', INVENTORY, '-e', '@%s' % variables, '-e', 'count=2',
                     '-e', 'flag=true', '-e', 'word=plain text')
    job_id = launched(completed)
    service.wait(job_id)

    shown = jobs(service, 'show', job_id, role='viewer')
    assert shown.returncode == 0, shown.stderr
    assert job_id in shown.stdout and HELLO in shown.stdout and 'successful' in shown.stdout
    assert set(host_rows(shown.stdout)) == {'node1', 'node2', 'node3'}
    as_json = json.loads(jobs(service, 'show', job_id, '--json', role='viewer').stdout)
    assert as_json['extra_vars'] == {'greeting': 'hi', 'count': 2, 'flag': True, 'word': 'plain text'}

    listed = jobs(service, 'list', '--json', role='viewer')
    assert listed.returncode == 0, listed.stderr
    page = json.loads(listed.stdout)
    assert job_id in [job['id'] for job in page['jobs']]
    table = jobs(service, 'list', '--limit', '1', role='viewer')
    assert table.returncode == 0, table.stderr
    assert '1 job(s); next page: --cursor ' in table.stdout
    cursor = table.stdout.split('--cursor ')[1].split()[0]
    second = json.loads(jobs(service, 'list', '--limit', '1', '--cursor', cursor, '--json', role='viewer').stdout)
    assert len(second['jobs']) == 1 and second['jobs'][0]['id'] != page['jobs'][0]['id']
    only_failed = json.loads(jobs(service, 'list', '--status', 'failed', '--json', role='viewer').stdout)
    assert all(job['status'] == 'failed' for job in only_failed['jobs'])

    logs = jobs(service, 'logs', job_id, role='viewer')
    assert logs.returncode == 0, logs.stderr
    assert 'hello from node1' in logs.stdout and 'PLAY RECAP' in logs.stdout
    one_host = jobs(service, 'logs', job_id, '--host', 'node2', role='viewer')
    assert 'hello from node2' in one_host.stdout and 'hello from node1' not in one_host.stdout


def test_logs_follow_a_running_job_to_its_end(service):
    job_id = launched(jobs(service, 'launch', SLEEP, '-i', INVENTORY, '-l', 'node1', '-e', 'sleep_seconds=3'))
    service.wait(job_id, statuses={'running'})
    followed = jobs(service, 'logs', job_id, '-f', role='viewer')
    assert followed.returncode == 0, followed.stderr
    assert 'TASK [Sleep for a while]' in followed.stdout and 'PLAY RECAP' in followed.stdout
    assert followed.stdout.index('TASK [Sleep') < followed.stdout.index('PLAY RECAP')
    assert followed.stderr.strip() == 'job %s successful' % job_id


def test_cancel_a_running_job_and_a_follower_exits_1(service):
    job_id = launched(jobs(service, 'launch', SLEEP, '-i', INVENTORY))
    service.wait(job_id, statuses={'running'})
    env = dict(service.env, DBFLEET_TOKEN=service.tokens['viewer'])
    follower = subprocess.Popen([sys.executable, '-m', 'runner_service.cli', 'jobs', 'logs', '-f', job_id], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        canceled = jobs(service, 'cancel', job_id)
        assert canceled.returncode == 0, canceled.stderr
        assert job_id in canceled.stdout
        assert service.wait(job_id, timeout=60)['status'] == 'canceled'
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 1, err
    assert err.strip().startswith('job %s canceled' % job_id)
    shown = json.loads(jobs(service, 'show', job_id, '--json', role='viewer').stdout)
    assert shown['status'] == 'canceled' and shown['cancel_requested'] is True


def test_relaunch_only_the_failed_hosts(service):
    first = launched(jobs(service, 'launch', FAIL_ON, '-i', INVENTORY, '-e', 'fail_hosts=["node2"]'))
    assert service.wait(first)['status'] == 'failed'
    again = jobs(service, 'relaunch', first, '--failed', '--wait', '--json')
    assert again.returncode == 1, again.stderr  # node2 is still asked to fail
    job = json.loads(again.stdout)
    assert job['relaunch_of'] == first and job['limit'] == 'node2' and set(job['hosts']) == {'node2'}
    assert job['status'] == 'failed'
    everything = jobs(service, 'relaunch', first)
    assert everything.returncode == 0 and everything.stdout.split()[1] == 'queued'
    assert service.wait(everything.stdout.split()[0])['limit'] is None


def test_idempotency_key_gives_back_the_same_job(service):
    args = ('launch', HELLO, '-i', INVENTORY, '--idempotency-key', 'cli-once', '--json')
    first, second = json.loads(jobs(service, *args).stdout), json.loads(jobs(service, *args).stdout)
    assert first['id'] == second['id']


def test_bad_requests_fail_with_one_line_and_exit_2(service, monkeypatch):
    unknown = one_line_error(jobs(service, 'launch', 'playbooks/no_such_play.yml', '-i', INVENTORY))
    assert 'no_such_play.yml' in unknown
    both = one_line_error(jobs(service, 'launch', HELLO, '-i', INVENTORY, '--tags', 'large'))
    assert 'inventory' in both and 'tags' in both
    neither = one_line_error(jobs(service, 'launch', HELLO))
    assert 'exactly one' in neither
    assert '-e' in one_line_error(jobs(service, 'launch', HELLO, '-i', INVENTORY, '-e', 'no_equals_sign'))
    assert '--priority' in one_line_error(jobs(service, 'launch', HELLO, '-i', INVENTORY, '--priority', '500'))
    assert 'no job' in one_line_error(jobs(service, 'show', 'f' * 32, role='viewer'))

    monkeypatch.delenv('DBFLEET_TOKEN', raising=False)
    no_token = one_line_error(jobs(service, 'list', role=None))
    assert 'DBFLEET_TOKEN' in no_token and 'dbfleet tokens create' in no_token
    viewer = one_line_error(jobs(service, 'launch', HELLO, '-i', INVENTORY, role='viewer'))
    assert 'role viewer' in viewer and 'needs admin' in viewer
    operator = one_line_error(jobs(service, 'launch', HELLO, '-i', INVENTORY, role='operator'))
    assert 'role operator' in operator and 'needs admin' in operator

    env = dict(service.env, DBFLEET_API_URL='http://127.0.0.1:%d' % free_port(), DBFLEET_TOKEN=service.tokens['admin'])
    down = subprocess.run([sys.executable, '-m', 'runner_service.cli', 'jobs', 'list'], env=env, capture_output=True,
                          text=True, timeout=60)
    message = one_line_error(down)
    assert 'unreachable' in message and 'dbfleet up' in message and 'DBFLEET_API_URL' in message
