"""dbfleet installed as a user installs it, not checked out: the wheel and the collection tarball
are built from this tree and installed into a fresh virtualenv and a fresh collections path; every
command runs from a directory outside the repository with nothing of the checkout on sys.path.

Dependencies come from the package index configured on this machine, held to the versions of
requirements.txt (the ones every other test runs with)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from dbfleet import __version__
from tests.conftest import REPO, VENV_BIN

SERVICE_ONLY = ('fastapi', 'rq', 'typer', 'ansible_runner')
# What a wheel is built from: the distribution's own files, nothing else of the checkout.
WHEEL_SOURCES = ('pyproject.toml', 'README.md', 'dbfleet', 'runner_service')
TERMINAL = {'successful', 'failed', 'canceled', 'timed_out', 'dependency_failed', 'worker_lost'}


def run(args, check=True, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    completed = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=timeout,
                               check=False, **kwargs)
    if check:
        assert completed.returncode == 0, '%s\n%s%s' % (args, completed.stdout, completed.stderr)
    return completed


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp('source')
    for name in WHEEL_SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp('wheel')
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', out, source])
    (built,) = out.glob('dbfleet-%s-*.whl' % __version__)
    return built


def clean_env(home: Path, venv: Path | None = None, **extra) -> dict:
    """An environment without the checkout: no PYTHONPATH, no ANSIBLE_CONFIG, a home of its own.
    The PIP_* variables stay: they say where this machine's package index is."""
    env = {key: value for key, value in os.environ.items() if key.startswith('PIP_')}
    home.mkdir(parents=True, exist_ok=True)
    # DBFLEET_CONFIG: no /etc/dbfleet/dbfleet.env of this machine leaks in.
    env.update(HOME=str(home), LANG='C.UTF-8', XDG_STATE_HOME=str(home / 'state'), DBFLEET_CONFIG=str(home / 'no.env'),
               PATH=os.pathsep.join(([str(venv / 'bin')] if venv else []) + ['/usr/local/bin', '/usr/bin', '/bin',
                                                                             '/usr/sbin', '/sbin']))
    env.update({key: str(value) for key, value in extra.items()})
    return env


def make_venv(directory: Path, requirement: str) -> Path:
    run([sys.executable, '-m', 'venv', directory], cwd=directory.parent)
    run([directory / 'bin' / 'python', '-m', 'pip', 'install', '-q', '-c', REPO / 'requirements.txt', requirement],
        cwd=directory.parent, env=clean_env(directory.parent / 'pip-home'), timeout=900)
    return directory


def expected_state_directory(home: Path) -> Path:
    return Path('/var/lib/dbfleet') if os.geteuid() == 0 else home / 'state' / 'dbfleet'


PROBE = '''
import importlib.util, json, sys
import dbfleet, dbfleet.inspection, dbfleet.store, dbfleet.tags
from dbfleet.settings import Settings
settings = Settings()
print(json.dumps({
    'file': dbfleet.__file__, 'version': dbfleet.__version__,
    'loaded': sorted(name for name in %r if name in sys.modules),
    'installed': sorted(name for name in %r if importlib.util.find_spec(name)),
    'var_dir': str(settings.var_dir), 'store_url': settings.store_url,
    'project_dir': str(settings.project_dir), 'tag_rules': str(settings.tag_rules),
}))
''' % (SERVICE_ONLY, SERVICE_ONLY + ('ansible',))


def test_the_base_alone_serves_the_plugins_and_keeps_state_in_the_state_directory(wheel, tmp_path):
    venv = make_venv(tmp_path / 'venv', str(wheel))
    home = tmp_path / 'home'
    probe = run([venv / 'bin' / 'python', '-c', PROBE], cwd=tmp_path, env=clean_env(home, venv))
    found = json.loads(probe.stdout)
    assert Path(found['file']).is_relative_to(venv) and found['version'] == __version__
    assert found['loaded'] == [] and found['installed'] == []
    state = expected_state_directory(home)
    assert found['var_dir'] == str(state) and found['store_url'] == 'sqlite:///%s' % (state / 'dbfleet.db')
    assert found['project_dir'] == str(state / 'project')
    assert found['tag_rules'] == str(state / 'project' / 'inventories' / 'tag_rules.yml')

    elsewhere = tmp_path / 'elsewhere'
    probe = run([venv / 'bin' / 'python', '-c', PROBE], cwd=tmp_path,
                env=clean_env(home, venv, DBFLEET_VAR_DIR=elsewhere))
    found = json.loads(probe.stdout)
    assert found['var_dir'] == str(elsewhere) and found['store_url'] == 'sqlite:///%s' % (elsewhere / 'dbfleet.db')


CRON_EXEC = '''
import sys
from runner_service.console import main
sys.argv = ['dbfleet', 'cron', 'exec', 'entry-1', '--', 'sh', '-c', 'echo ran; exit 3']
try:
    main()
finally:
    heavy = sorted(name for name in ('fastapi', 'rq', 'ansible_runner', 'ansible', 'sqlalchemy', 'alembic',
                                     'typer', 'rich', 'pydantic', 'httpx') if name in sys.modules)
    sys.stderr.write('heavy=%s\\n' % ','.join(heavy))
'''


def test_the_agent_runs_the_cron_wrapper_without_the_service(wheel, tmp_path):
    venv = make_venv(tmp_path / 'venv', '%s[agent]' % wheel)
    env = clean_env(tmp_path / 'home', venv, DBFLEET_VAR_DIR=tmp_path / 'state', DBFLEET_TOKEN='agent-token',
                    DBFLEET_API_URL='http://127.0.0.1:9')
    assert run([venv / 'bin' / 'python', '-c', 'import fastapi'], check=False, cwd=tmp_path, env=env).returncode != 0
    wrapped = run([venv / 'bin' / 'python', '-c', CRON_EXEC], check=False, cwd=tmp_path, env=env)
    # As crontab would have run it: its output and exit code; the report, with the API away, is spooled.
    assert wrapped.returncode == 3 and wrapped.stdout == 'ran\n', wrapped.stderr
    assert 'heavy=\n' in wrapped.stderr
    assert list((tmp_path / 'state' / 'cron-spool').iterdir())
    console = run([venv / 'bin' / 'dbfleet', 'cron', 'exec', 'entry-1', '--', 'true'], check=False, cwd=tmp_path,
                  env=env)
    assert console.returncode == 0, console.stderr


def test_the_agent_install_holds_every_host_command_and_nothing_of_the_service(wheel, tmp_path):
    venv = make_venv(tmp_path / 'venv', '%s[agent]' % wheel)
    env = clean_env(tmp_path / 'home', venv, DBFLEET_VAR_DIR=tmp_path / 'state', DBFLEET_TOKEN='agent-token',
                    DBFLEET_API_URL='http://127.0.0.1:9', DBFLEET_HOST='db1')
    for name in ('typer', 'rich', 'httpx', 'fastapi', 'rq', 'ansible_runner'):
        assert run([venv / 'bin' / 'python', '-c', 'import %s' % name], check=False, cwd=tmp_path,
                   env=env).returncode != 0, name
    dbfleet = venv / 'bin' / 'dbfleet'
    # The watchdog with the platform away: it says so and keeps the state for its fallback.
    watchdog = run([dbfleet, 'cron', 'watchdog'], check=False, cwd=tmp_path, env=env)
    assert watchdog.returncode == 0, watchdog.stderr
    assert json.loads(watchdog.stdout)['platform'] == 'unreachable'
    assert (tmp_path / 'state' / 'cron-spool' / 'watchdog.state').is_file()
    crontab = tmp_path / 'crontab'
    crontab.write_text('*/5 * * * * /usr/local/bin/backup.sh\n')
    for args in (['sync'], ['diff'], ['import', '--path', str(crontab), '--path-user', '--json']):
        refused = run([dbfleet, 'cron', *args], check=False, cwd=tmp_path, env=env)
        assert refused.returncode == 2, (args, refused.stderr)
        assert refused.stderr.startswith('dbfleet: the API at http://127.0.0.1:9 did not answer') \
            and len(refused.stderr.splitlines()) == 1, (args, refused.stderr)
    assert crontab.read_text() == '*/5 * * * * /usr/local/bin/backup.sh\n'
    for args in (['cron', 'sync', '--help'], ['cron', 'import', '--help'], ['cron', 'watchdog', '--help']):
        shown = run([dbfleet, *args], check=False, cwd=tmp_path, env=env)
        assert shown.returncode == 0 and shown.stdout.startswith('usage: dbfleet cron %s' % args[1]), shown
    listed = run([dbfleet, 'cron', '--help'], check=False, cwd=tmp_path, env=env)
    assert listed.returncode == 0 and all(name in listed.stdout for name in ('exec', 'import', 'sync', 'watchdog'))
    # The platform's commands need the service's libraries: one line saying which extra.
    for args in (['jobs', 'list'], ['cron', 'list'], ['version']):
        other = run([dbfleet, *args], check=False, cwd=tmp_path, env=env)
        assert other.returncode == 2 and 'needs dbfleet[service]' in other.stderr \
            and len(other.stderr.splitlines()) == 1, (args, other.stderr)


# -- the whole service, installed, against the local fleet -------------------------------------------

@pytest.fixture(scope='module')
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('collection')
    run([VENV_BIN / 'ansible-galaxy', 'collection', 'build', '--output-path', out], cwd=REPO)
    (built,) = out.glob('dbfleet-mysql-%s.tar.gz' % __version__)
    return built


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def project_from(collection: Path, project: Path) -> Path:
    """A project directory made only of what the installed collection ships: the local fleet's
    inventory, its connection variables and the tag rules."""
    (project / 'inventories' / 'group_vars').mkdir(parents=True)
    shipped = collection / 'inventories'
    shutil.copy2(shipped / 'local_fleet.yml', project / 'inventories' / 'fleet.yml')
    shutil.copy2(shipped / 'group_vars' / 'mysql.yml', project / 'inventories' / 'group_vars' / 'mysql.yml')
    shutil.copy2(shipped / 'tag_rules.yml', project / 'inventories' / 'tag_rules.yml')
    return project


def wait_ready(up: subprocess.Popen, seconds: float = 900) -> None:
    deadline = time.monotonic() + seconds
    said = []
    while not (line := up.stdout.readline()).startswith('dbfleet up: ready'):
        said.append(line)
        assert line and time.monotonic() < deadline, 'dbfleet up not ready; it said:\n%s' % ''.join(said[-30:])


def launch_template(client: httpx.Client, name: str, playbook: str) -> dict:
    created = client.post('/api/v1/templates', json={'name': name, 'playbook': playbook,
                                                      'inventory': 'inventories/fleet.yml'})
    assert created.status_code == 201, created.text
    launched = client.post('/api/v1/templates/%s/launch' % name, json={})
    assert launched.status_code == 201, launched.text
    deadline = time.monotonic() + 180
    while (job := client.get('/api/v1/jobs/%s' % launched.json()['id']).json())['status'] not in TERMINAL:
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    return job


@pytest.mark.fleet
@pytest.mark.service
def test_installed_service_and_collection_run_a_template_and_the_inventory(wheel, tarball, fleet, tmp_path):
    venv = make_venv(tmp_path / 'venv', '%s[service]' % wheel)
    collections = tmp_path / 'collections'
    home = tmp_path / 'home'
    # As root the state directory is /var/lib/dbfleet: the test keeps its state to itself.
    state = home / 'state' / 'dbfleet'
    env = clean_env(home, venv, ANSIBLE_COLLECTIONS_PATH=collections)
    run([venv / 'bin' / 'ansible-galaxy', 'collection', 'install', '--offline', '-p', collections, tarball],
        cwd=tmp_path, env=env)
    installed = collections / 'ansible_collections' / 'dbfleet' / 'mysql'
    project = project_from(installed, tmp_path / 'project')
    port = free_port()
    url = 'http://127.0.0.1:%d' % port
    env.update(DBFLEET_PROJECT_DIR=str(project), DBFLEET_API_URL=url, ANSIBLE_INVENTORY_UNPARSED_FAILED='1')
    if os.geteuid() == 0:
        env['DBFLEET_VAR_DIR'] = str(state)

    created = run([venv / 'bin' / 'dbfleet', 'tokens', 'create', 'ops', '--role', 'admin', '--json'], cwd=tmp_path,
                  env=env)
    token = json.loads(created.stdout)['token']
    assert (state / 'dbfleet.db').is_file()
    up = subprocess.Popen([venv / 'bin' / 'dbfleet', 'up', '--port', str(port), '--workers', '1'], cwd=tmp_path,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(up)
        with httpx.Client(base_url=url, headers={'Authorization': 'Bearer ' + token}, timeout=30) as client:
            facts = launch_template(client, 'facts', 'dbfleet.mysql.collect_facts')
            assert facts['status'] == 'successful', facts
            inspected = launch_template(client, 'inspect', 'dbfleet.mysql.inspect')
            assert inspected['status'] == 'successful', inspected
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(10)
    assert up.returncode == 0
    assert list((state / 'runs').iterdir())

    source = project / 'inventories' / 'store.fleet.yml'
    source.write_text(yaml.safe_dump({'plugin': 'dbfleet.mysql.fleet', 'store_url': 'sqlite:///%s'
                                      % (state / 'dbfleet.db')}))
    graph = run([venv / 'bin' / 'ansible-inventory', '-i', source, '--graph'], cwd=tmp_path, env=env).stdout
    assert '@tag_replica:' in graph and all(host in graph for host in ('primary', 'replica', 'analytics')), graph


def test_the_tarball_carries_what_the_install_test_copies(tarball):
    """The project above is made from the installed collection: these files must ship."""
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert {'inventories/local_fleet.yml', 'inventories/group_vars/mysql.yml', 'inventories/tag_rules.yml',
            'playbooks/collect_facts.yml', 'playbooks/inspect.yml'} <= names


def test_the_wheel_carries_the_systemd_units_and_the_settings_example(wheel):
    """docs/deploy.md copies them from the installed package."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {'runner_service/systemd/%s' % name for name in (
        'dbfleet-api.service', 'dbfleet-worker@.service', 'dbfleet-scheduler.service', 'dbfleet.target',
        'dbfleet.env.example')} <= names
