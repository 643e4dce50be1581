"""The playbook project from git (DBFLEET_PROJECT_URL): workers fetch the branch before each job,
run it from a private copy of that commit, record the commit, and remove the copy after.

The repositories are real (`git init --bare` in tmp_path, commits made here); one worker pool
fetches over file://, one over git:// from a `git daemon` on loopback, and three workers are set
up to fail (a branch that does not exist, an https URL with credentials that nothing answers, a
git server that never answers).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import SilentServer, one_line_error
from devtools.service_harness import PATIENCE, Service, free_port

pytestmark = pytest.mark.service

GIT_IDENTITY = ['-c', 'user.name=dbfleet tests', '-c', 'user.email=tests@dbfleet.invalid']
INVENTORY = 'inventories/local.yml'
SHOW = '''---
- name: Show the project's message
  hosts: all
  gather_facts: false
  tasks:
    - name: Message
      ansible.builtin.debug:
        msg: "message {{ lookup('ansible.builtin.file', playbook_dir + '/../message.txt') }}"
'''
# Reads the message only once the test opens the gate: after it has pushed another commit.
PAUSE = '''---
- name: Wait for the test, then show the project's message
  hosts: all
  gather_facts: false
  tasks:
    - name: Say it started
      ansible.builtin.file:
        path: "{{ started }}"
        state: touch
        mode: "0600"
    - name: Wait for the gate
      ansible.builtin.wait_for:
        path: "{{ gate }}"
        timeout: 900
    - name: Message
      ansible.builtin.debug:
        msg: "message {{ lookup('ansible.builtin.file', playbook_dir + '/../message.txt') }}"
'''
LOCAL_INVENTORY = '''---
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  hosts:
    gitnode:
'''


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(['git', *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=dict(os.environ, GIT_CONFIG_NOSYSTEM='1', LC_ALL='C'), timeout=60).stdout


class Origin:
    """A bare repository and a working clone the test commits from and pushes to it."""

    def __init__(self, directory: Path):
        self.bare = directory / 'served' / 'playbooks.git'
        self.work = directory / 'work'
        git('init', '--quiet', '--bare', '--initial-branch=main', str(self.bare))
        git('init', '--quiet', '--initial-branch=main', str(self.work))
        git('remote', 'add', 'origin', str(self.bare), cwd=self.work)

    def head(self) -> tuple[str, str]:
        """The commit main points to, and its message.txt."""
        return git('rev-parse', 'main', cwd=self.bare).strip(), git('show', 'main:message.txt', cwd=self.bare)

    def push(self, files: dict[str, str], message: str) -> str:
        """Commit `files` on main, push it; returns the commit id."""
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git('add', '--all', cwd=self.work)
        git('commit', '--quiet', '-m', message, cwd=self.work)
        git('push', '--quiet', 'origin', 'main', cwd=self.work)
        return git('rev-parse', 'HEAD', cwd=self.work).strip()


class GitDaemon:
    """`git daemon` serving `base` on a loopback port, stopped with everything it forked."""

    def __init__(self, base: Path):
        self.port = free_port()
        self.url_base = 'git://127.0.0.1:%d' % self.port
        self.process = subprocess.Popen(
            ['git', 'daemon', '--export-all', '--reuseaddr', '--base-path=%s' % base, '--listen=127.0.0.1',
             '--port=%d' % self.port, str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 30 * PATIENCE
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise AssertionError('git daemon did not listen on port %d' % self.port)
                time.sleep(0.1)

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.process.wait(30)


@pytest.fixture(scope='module')
def origin(tmp_path_factory):
    origin = Origin(tmp_path_factory.mktemp('origin'))
    origin.push({'message.txt': 'one', 'playbooks/show.yml': SHOW, 'playbooks/pause.yml': PAUSE,
                                INVENTORY: LOCAL_INVENTORY}, 'first')
    return origin


@pytest.fixture(scope='module')
def daemon(origin):
    daemon = GitDaemon(origin.bare.parent)
    yield daemon
    daemon.stop()


@pytest.fixture(scope='module')
def silent():
    with SilentServer() as server:
        yield server


@pytest.fixture(scope='module')
def service(tmp_path_factory, origin, daemon, silent):
    """Two workers on the default queue fetch over file://; one on `daemon` over git://; `nobranch`,
    `unreachable` and `hanging` have a worker each whose project cannot be fetched."""
    file_url = 'file://%s' % origin.bare
    service = Service(tmp_path_factory.mktemp('service'), variables={'DBFLEET_PROJECT_URL': file_url}).start()
    try:
        service.start_worker('daemon', variables={'DBFLEET_PROJECT_URL': '%s/playbooks.git' % daemon.url_base})
        service.start_worker('nobranch', variables={'DBFLEET_PROJECT_BRANCH': 'release/2026'})
        service.start_worker('unreachable', variables={
            'DBFLEET_PROJECT_URL': 'https://deploy:hunter2@127.0.0.1:%d/playbooks.git' % free_port()})
        service.start_worker('hanging', variables={'DBFLEET_PROJECT_URL': 'git://127.0.0.1:%d/pb.git' % silent.port})
        service.wait_healthy()
        yield service
    finally:
        service.stop()


def launch(service: Service, playbook: str, **body) -> dict:
    with service.client() as client:
        response = client.post('/api/v1/jobs', json={'playbook': playbook, 'inventory': INVENTORY, **body})
    assert response.status_code == 201, response.text
    return response.json()


def stdout(service: Service, job_id: str) -> str:
    with service.client('viewer') as client:
        response = client.get('/api/v1/jobs/%s/stdout' % job_id)
    assert response.status_code == 200, response.text
    return response.text


def project_copy(service: Service, job_id: str) -> Path:
    return service.directory / 'var' / 'runs' / job_id / 'project'


def wait_for_file(path: Path, job_id: str, service: Service) -> None:
    deadline = time.monotonic() + 120 * PATIENCE
    while not path.exists():
        job = service.job(job_id)
        assert job['status'] in ('queued', 'running'), job
        assert time.monotonic() < deadline, 'job %s never started its play' % job_id
        time.sleep(0.2)


def test_a_job_runs_the_branch_head_and_records_its_commit(service, origin):
    commit, message = origin.head()
    job = service.wait(launch(service, 'playbooks/show.yml')['id'])
    assert job['status'] == 'successful', stdout(service, job['id'])
    assert job['project_revision'] == commit
    assert 'message %s' % message in stdout(service, job['id'])
    assert not project_copy(service, job['id']).exists()
    shown = service.dbfleet('jobs', 'show', job['id'], token=service.tokens['viewer'])
    assert shown.returncode == 0, shown.stderr
    assert commit in shown.stdout


def test_a_running_job_keeps_its_commit_while_the_next_job_runs_the_new_one(service, origin, tmp_path):
    started, gate = tmp_path / 'started', tmp_path / 'gate'
    before, old = origin.head()
    new = old + ' and more'
    paused = launch(service, 'playbooks/pause.yml', extra_vars={'started': str(started), 'gate': str(gate)})
    wait_for_file(started, paused['id'], service)
    assert (project_copy(service, paused['id']) / 'message.txt').read_text() == old

    second = origin.push({'message.txt': new}, 'a new message')
    after = service.wait(launch(service, 'playbooks/show.yml')['id'])
    assert after['status'] == 'successful', after
    assert after['project_revision'] == second != before
    assert 'message %s' % new in stdout(service, after['id'])

    gate.touch()
    paused = service.wait(paused['id'])
    assert paused['status'] == 'successful', paused
    assert paused['project_revision'] == before
    output = stdout(service, paused['id'])
    assert 'message %s' % old in output and 'message %s' % new not in output
    assert not project_copy(service, paused['id']).exists()


def test_the_git_daemon_transport_fetches_the_same_branch(service, origin):
    commit, message = origin.head()
    job = service.wait(launch(service, 'playbooks/show.yml', queue='daemon')['id'])
    assert job['status'] == 'successful', job
    assert job['project_revision'] == commit
    assert 'message %s' % message in stdout(service, job['id'])
    assert not project_copy(service, job['id']).exists()


def test_a_missing_branch_fails_the_job_and_says_so(service, origin):
    job = service.wait(launch(service, 'playbooks/show.yml', queue='nobranch')['id'])
    assert job['status'] == 'failed', job
    assert job['status_reason'] == "project: branch 'release/2026' does not exist in file://%s" % origin.bare
    assert job['project_revision'] is None
    assert not project_copy(service, job['id']).exists()


def test_an_unreachable_url_fails_the_job_without_its_credentials(service):
    job = service.wait(launch(service, 'playbooks/show.yml', queue='unreachable')['id'])
    assert job['status'] == 'failed', job
    reason = job['status_reason']
    assert reason.startswith("project: fetching branch 'main' of https://***:***@127.0.0.1:"), reason
    assert 'hunter2' not in reason and 'deploy' not in reason
    assert 'hunter2' not in stdout(service, job['id'])


def test_a_playbook_missing_from_the_commit_fails_the_job_the_launch_checked_only_its_name(service, origin):
    with service.client() as client:
        refused = client.post('/api/v1/jobs', json={'playbook': '../outside.yml', 'inventory': INVENTORY})
    assert refused.status_code == 400, refused.text
    job = service.wait(launch(service, 'playbooks/absent.yml')['id'])
    assert job['status'] == 'failed', job
    head, _ = origin.head()
    assert job['status_reason'] == ("project: commit %s of branch 'main': playbook 'playbooks/absent.yml': no such "
                                    "file under the project directory" % head), job['status_reason']
    assert not project_copy(service, job['id']).exists()


def test_a_planned_job_runs_its_hosts_from_the_copy(service, origin):
    commit, message = origin.head()
    job = service.wait(launch(service, 'playbooks/show.yml', plan={'lanes': 1})['id'])
    assert job['status'] == 'successful', stdout(service, job['id'])
    assert job['project_revision'] == commit
    assert 'message %s' % message in stdout(service, job['id'])
    assert not project_copy(service, job['id']).exists()


def test_a_cancel_stops_a_fetch_that_hangs(service, silent):
    job = launch(service, 'playbooks/show.yml', queue='hanging')
    deadline = time.monotonic() + 120 * PATIENCE
    while not silent.accepted:
        assert time.monotonic() < deadline, service.job(job['id'])
        time.sleep(0.1)
    with service.client('admin') as client:
        assert client.post('/api/v1/jobs/%s/cancel' % job['id']).status_code == 202  # running: told to stop
    job = service.wait(job['id'])
    assert (job['status'], job['status_reason']) == (
        'canceled', 'canceled while fetching the project, before the play started')
    assert not project_copy(service, job['id']).exists()


def test_a_job_canceled_while_its_play_runs_leaves_no_copy(service, tmp_path):
    started, gate = tmp_path / 'started', tmp_path / 'gate'
    job = launch(service, 'playbooks/pause.yml', extra_vars={'started': str(started), 'gate': str(gate)})
    wait_for_file(started, job['id'], service)
    assert (project_copy(service, job['id']) / 'playbooks' / 'pause.yml').is_file()
    with service.client('admin') as client:
        assert client.post('/api/v1/jobs/%s/cancel' % job['id']).status_code == 202
    job = service.wait(job['id'])
    assert job['status'] == 'canceled', job
    assert not project_copy(service, job['id']).exists()


def test_a_preview_of_a_file_inventory_is_refused_without_a_local_project(service):
    with service.client('viewer') as client:
        response = client.post('/api/v1/plans/preview', json={'playbook': 'playbooks/show.yml', 'inventory': INVENTORY,
                                                               'lanes': 2})
    assert response.status_code == 422, response.text
    assert 'DBFLEET_PROJECT_URL' in response.text


@pytest.mark.parametrize('name, value', [
    ('DBFLEET_PROJECT_URL', 'ext::sh -c touch% /tmp/pwned'),
    ('DBFLEET_PROJECT_URL', '--upload-pack=touch /tmp/pwned'),
    ('DBFLEET_PROJECT_URL', 'ssh://-oProxyCommand=touch/repo.git'),
    ('DBFLEET_PROJECT_URL', 'https://deploy:hunter2@example.invalid/repo.git\nfile:///etc'),
    ('DBFLEET_PROJECT_BRANCH', '--help'),
    ('DBFLEET_PROJECT_BRANCH', 'main..other'),
    ('DBFLEET_PROJECT_BRANCH', '@{-1}'),
    ('DBFLEET_PROJECT_BRANCH', 'main\nother'),
])
@pytest.mark.parametrize('command', [['worker', '--burst'], ['jobs', 'list']])
def test_hostile_project_settings_are_refused_in_one_line(tmp_path, name, value, command):
    env = dict(os.environ, DBFLEET_VAR_DIR=str(tmp_path / 'var'), DBFLEET_PROJECT_URL='file:///srv/playbooks.git')
    env[name] = value
    completed = subprocess.run([sys.executable, '-m', 'runner_service.cli', *command], env=env, capture_output=True,
                               text=True, timeout=120 * PATIENCE)
    line = one_line_error(completed)
    assert line.startswith('dbfleet: %s: ' % name) and 'hunter2' not in line, line
