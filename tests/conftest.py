"""Shared fixtures: the local MariaDB fleet and a way to run real playbooks against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import settings as hypothesis_settings

# Property tests keep no example database: it would land in the tree (ansible-test sanity
# reads every file there) and make one run depend on the last.
hypothesis_settings.register_profile('dbfleet', database=None)
hypothesis_settings.load_profile('dbfleet')

REPO = Path(__file__).resolve().parent.parent
# scripts/run_tests.sh runs the suite as two groups side by side (DBFLEET_TEST_GROUP): 'fleet', every
# test that needs the local or the namespace fleet (one session starts and stops them), plus the
# directories that make both groups take about as long (scripts/run_tests.sh's last line says how long);
# and 'rest'. Without the variable, every test.
FLEET_FIXTURES = frozenset({'fleet', 'netfleet', 'local_fleet'})
FLEET_MARKERS = ('fleet', 'netfleet')
FLEET_DIRECTORIES = frozenset({'collection', 'netfleet', 'install'})
BALANCE_DIRECTORIES = frozenset({'portal', 'schedules', 'unit'})
TEST_GROUPS = ('fleet', 'rest')
VENV_BIN = Path(sys.executable).parent


def in_fleet_group(item) -> bool:
    """Whether a test runs in the 'fleet' group: it takes a fleet fixture (directly or through another
    fixture), carries a fleet marker, lives where every test drives a fleet, or balances the groups."""
    if FLEET_FIXTURES & set(getattr(item, 'fixturenames', ())):
        return True
    if any(item.get_closest_marker(name) for name in FLEET_MARKERS):
        return True
    parts = Path(str(item.path)).resolve().relative_to(REPO / 'tests').parts
    return len(parts) > 1 and parts[0] in FLEET_DIRECTORIES | BALANCE_DIRECTORIES


def pytest_collection_modifyitems(config, items):
    group = os.environ.get('DBFLEET_TEST_GROUP')
    if not group:
        return
    if group not in TEST_GROUPS:
        raise pytest.UsageError('DBFLEET_TEST_GROUP=%s: it is one of %s' % (group, ', '.join(TEST_GROUPS)))
    kept, left = [], []
    for item in items:
        (kept if in_fleet_group(item) == (group == 'fleet') else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.fixture(scope='session')
def fleet():
    """The local fleet (devtools/fleet), started if needed and stopped again if this run started it."""
    from devtools.fleet import Fleet

    fleet = Fleet()
    info = fleet.start()
    yield fleet
    if info.get('started') and not os.environ.get('DBFLEET_KEEP_FLEET'):
        fleet.stop()


@pytest.fixture(scope='session')
def netfleet():
    """The namespace fleet (devtools/netfleet: hosts with their own sshd, mariadbd and cron,
    reached over SSH), started if needed and stopped again if this run started it. Needs root:
    on a machine that cannot make namespaces the tests using it skip with the reason; on this
    machine and in CI they run."""
    from devtools.netfleet.harness import NetFleet
    from devtools.netfleet.namespaces import can_make_namespaces

    reason = can_make_namespaces()
    if reason:
        pytest.skip(reason)
    fleet = NetFleet()
    info = fleet.start()
    yield fleet
    if info['_summary']['started'] and not os.environ.get('DBFLEET_KEEP_FLEET'):
        fleet.stop()


def ansible_env(**extra):
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'),
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_FORCE_COLOR='0',
        ANSIBLE_RETRY_FILES_ENABLED='0',
        PATH='%s:%s' % (VENV_BIN, env.get('PATH', '')),
    )
    env.update(extra)
    return env


class PlaybookRun:
    """Result of one ansible-playbook run: exit code, output, and per-host registered results."""

    def __init__(self, completed, results):
        self.rc = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.results = results

    @property
    def output(self):
        return self.stdout + self.stderr

    def facts(self, host):
        return self.results[host]['ansible_facts']['mysql']


@pytest.fixture
def run_module(tmp_path):
    """Run dbfleet.mysql.mysql_facts through ansible-playbook on inventory hosts and
    collect each host's result (as registered) from a JSON file the play writes."""

    def run(hosts: dict, module_args: dict | None = None, extra_args=(), module='dbfleet.mysql.mysql_facts'):
        inventory = {'all': {'vars': {'ansible_connection': 'local',
                                      'ansible_python_interpreter': sys.executable},
                             'hosts': hosts}}
        results_dir = tmp_path / 'results'
        results_dir.mkdir(exist_ok=True)
        play = [{
            'name': 'run the module under test',
            'hosts': 'all',
            'gather_facts': False,
            'tasks': [
                {'name': 'module', module: module_args or {}, 'register': 'result', 'ignore_errors': True},
                {'name': 'save', 'check_mode': False, 'ansible.builtin.copy': {
                    'content': '{{ result | to_json }}',
                    'dest': '%s/{{ inventory_hostname }}.json' % results_dir}},
            ],
        }]
        (tmp_path / 'inventory.yml').write_text(yaml.safe_dump(inventory))
        (tmp_path / 'play.yml').write_text(yaml.safe_dump(play, sort_keys=False))
        completed = subprocess.run(
            [str(VENV_BIN / 'ansible-playbook'), '-i', str(tmp_path / 'inventory.yml'), str(tmp_path / 'play.yml'),
             *extra_args],
            cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=600)
        results = dict((path.stem, json.loads(path.read_text())) for path in results_dir.glob('*.json'))
        return PlaybookRun(completed, results)

    return run


SYSTEM_MARIADB_SOCKET = '/run/mysqld/mysqld.sock'


@pytest.fixture(params=['sqlite', 'mariadb'])
def store_url(request, tmp_path):
    """A fresh, empty store on each backend: a SQLite file, and a new database on the machine's MariaDB
    (root over its unix socket, which works with both a password-less root and Debian's socket auth)."""
    if request.param == 'sqlite':
        yield 'sqlite:///%s' % (tmp_path / 'store.db')
        return
    import uuid

    import pymysql

    name = 'dbfleet_test_%s' % uuid.uuid4().hex[:12]
    admin = pymysql.connect(unix_socket=SYSTEM_MARIADB_SOCKET, user='root', autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute('CREATE DATABASE %s CHARACTER SET utf8mb4' % name)
    try:
        yield 'mysql+pymysql://root@localhost/%s?unix_socket=%s&charset=utf8mb4' % (name, SYSTEM_MARIADB_SOCKET)
    finally:
        with admin.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS %s' % name)
        admin.close()
