"""The collection over SSH on the namespace fleet: playbooks/prepare_hosts.yml makes the database
hosts usable (a virtualenv from the controller's wheelhouse, nothing from the network), then
collect_facts.yml, inspect.yml's fleet_tags, backup.yml and the crontab agent run there for real,
with host key checking on."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from dbfleet import __version__
from dbfleet.store import open_store
from dbfleet.tags import HostContext, load_rules, parse_rules
from tests.conftest import REPO, VENV_BIN, ansible_env

pytestmark = pytest.mark.netfleet

DB_HOSTS = ('db1', 'db2', 'db3', 'db4')
DAY = 86400
VENV = '/opt/dbfleet/venv'
RULES = REPO / 'inventories' / 'tag_rules.yml'
# What docs/backups.md says a physical backup needs on MariaDB 10.11.
PHYSICAL_USER = 'dbfleet_physical_test'
PHYSICAL_PASSWORD = 'physical-pw-Secret5'
PHYSICAL_GRANTS = 'RELOAD, PROCESS, BINLOG MONITOR'


class Fleet:
    """This test fleet's inventory (beside the repository's group_vars, as inventories/ssh_fleet.yml
    is) and ansible-playbook runs against it with the fleet's key."""

    def __init__(self, netfleet, directory: Path):
        self.netfleet = netfleet
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.inventory = directory / 'ssh_fleet.yml'
        self.inventory.write_text(netfleet.inventory())
        (directory / 'group_vars').symlink_to(REPO / 'inventories' / 'group_vars')

    def playbook(self, playbook, *args, **env) -> subprocess.CompletedProcess:
        command = [str(VENV_BIN / 'ansible-playbook'), '-i', str(self.inventory), '--private-key',
                   str(self.netfleet.key), str(playbook), *map(str, args)]
        return subprocess.run(command, cwd=REPO, env=ansible_env(**env), capture_output=True, text=True, timeout=900)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counts per host."""
    return {match.group(1): {key: int(value) for key, value in re.findall(r'(\w+)=(\d+)', match.group(2))}
            for match in re.finditer(r'^(\S+)\s+:\s+(ok=.*)$', output, re.MULTILINE)}


def output_of(run: subprocess.CompletedProcess) -> str:
    return run.stdout + run.stderr


@pytest.fixture(scope='module')
def fleet(netfleet, tmp_path_factory):
    return Fleet(netfleet, tmp_path_factory.mktemp('ssh_fleet'))


@pytest.fixture(scope='module')
def prepared(fleet, netfleet):
    """prepare_hosts.yml twice, on database hosts whose /opt/dbfleet is removed first: the first run
    installs from nothing, the second must change nothing."""
    for host in DB_HOSTS:
        netfleet.ssh(host, 'rm -rf /opt/dbfleet')
    first = fleet.playbook(REPO / 'playbooks' / 'prepare_hosts.yml')
    assert first.returncode == 0, output_of(first)[-6000:]
    second = fleet.playbook(REPO / 'playbooks' / 'prepare_hosts.yml')
    assert second.returncode == 0, output_of(second)[-6000:]
    return first, second


@pytest.fixture(scope='module')
def gathered(prepared, fleet):
    """collect_facts.yml over SSH, each host's ansible_facts.mysql saved on the controller; then
    inspect.yml (facts and fleet_tags with the repository's rules) into a store of its own."""
    results = fleet.directory / 'facts'
    results.mkdir()
    save = [{'name': 'Save each host\'s facts on the controller', 'hosts': 'mysql', 'gather_facts': False, 'tasks': [
        {'name': 'Save', 'delegate_to': 'localhost',
         'ansible.builtin.copy': {'content': '{{ ansible_facts.mysql | to_json }}',
                                  'dest': '%s/{{ inventory_hostname }}.json' % results, 'mode': '0600'}}]}]
    wrapper = fleet.directory / 'collect_and_save.yml'
    wrapper.write_text(yaml.safe_dump([{'import_playbook': str(REPO / 'playbooks' / 'collect_facts.yml')}] + save,
                                      sort_keys=False))
    collected = fleet.playbook(wrapper)
    assert collected.returncode == 0, output_of(collected)[-6000:]
    store_url = 'sqlite:///%s' % (fleet.directory / 'store.db')
    inspected = fleet.playbook(REPO / 'playbooks' / 'inspect.yml', DBFLEET_STORE_URL=store_url,
                               DBFLEET_TAG_RULES=str(RULES))
    assert inspected.returncode == 0, output_of(inspected)[-6000:]
    facts = {host: json.loads((results / ('%s.json' % host)).read_text()) for host in DB_HOSTS}
    with open_store(store_url) as store:
        tags = {host: set(store.tags.of_host(host)) for host in DB_HOSTS}
    return facts, tags


# -- prepare_hosts.yml ---------------------------------------------------------------------------

def test_prepare_hosts_installs_the_virtualenv_and_a_second_run_changes_nothing(prepared, netfleet):
    first, second = prepared
    assert all(recap(first.stdout)[host]['changed'] > 0 for host in DB_HOSTS), first.stdout[-3000:]
    assert {host: counts['changed'] for host, counts in recap(second.stdout).items()} == \
        dict.fromkeys(DB_HOSTS + ('localhost',), 0), second.stdout[-3000:]
    pins = dict(line.split('==') for line in (REPO / 'requirements.txt').read_text().splitlines()
                if '==' in line and not line.startswith('#'))
    for host in DB_HOSTS:
        versions = netfleet.ssh(host, "%s/bin/python -c 'import importlib.metadata as m, pymysql, dbfleet;"
                                      " print(m.version(\"PyMySQL\"), dbfleet.__version__)'" % VENV).stdout.split()
        assert versions == [pins['PyMySQL'], __version__]
        assert 'cron' in netfleet.ssh(host, '%s/bin/dbfleet --help' % VENV).stdout
        # The system's Python (the venv module of Debian's python3), not the controller's.
        assert netfleet.ssh(host, 'readlink -f %s/bin/python' % VENV).stdout.strip().startswith('/usr/bin/python3')
        assert netfleet.ssh(host, 'stat -c %a:%U /var/backups/dbfleet').stdout.strip() == '750:root'


def test_a_dbfleet_wheel_rebuilt_at_the_same_version_is_reinstalled(prepared, fleet, netfleet):
    """pip keeps an installed version; the play compares the wheel's sha256 with the one it installed."""
    marker = '%s/dbfleet-wheel.sha256' % VENV
    package = netfleet.ssh('db4', "%s/bin/python -c 'import dbfleet; print(dbfleet.__file__)'" % VENV).stdout.strip()
    # As if the host had the wheel of older code: another checksum recorded, a file of the package changed.
    netfleet.ssh('db4', 'echo 0000 > %s && echo "STALE = True" >> %s' % (marker, shlex.quote(package)))
    run = fleet.playbook(REPO / 'playbooks' / 'prepare_hosts.yml', '--limit', 'db4')
    assert run.returncode == 0, output_of(run)[-6000:]
    assert recap(run.stdout)['db4']['changed'] == 2  # the reinstall and the checksum it records
    assert 'STALE' not in netfleet.ssh('db4', 'cat %s' % shlex.quote(package)).stdout
    wanted = json.loads((REPO / 'var' / 'wheelhouse' / 'wheelhouse.json').read_text())['dbfleet_sha256']
    assert netfleet.ssh('db4', 'cat %s' % marker).stdout.strip() == wanted


def test_a_missing_package_without_a_deb_file_fails_naming_it(fleet, prepared, tmp_path):
    absent = 'dbfleet-netfleet-no-such-package'
    variables = json.dumps({'dbfleet_host_packages': ['cron', absent]})
    run = fleet.playbook(REPO / 'playbooks' / 'prepare_hosts.yml', '--limit', 'db1', '-e', variables)
    assert run.returncode == 2
    assert 'db1 lacks the Debian package(s) %s and hosts are not installed from the network: give ' \
           'dbfleet_packages_dir' % absent in ' '.join(output_of(run).split())
    debs = tmp_path / 'debs'
    debs.mkdir()
    (debs / 'cron_3.0pl1-162_amd64.deb').write_bytes(b'')  # another package's file: still none for it
    run = fleet.playbook(REPO / 'playbooks' / 'prepare_hosts.yml', '--limit', 'db1', '-e', variables,
                         '-e', 'dbfleet_packages_dir=%s' % debs)
    assert run.returncode == 2
    assert 'db1 lacks the Debian package(s) %s and %s has no .deb file for it' % (absent, debs) \
           in ' '.join(output_of(run).split())


# -- facts and tags over SSH -----------------------------------------------------------------------

def test_facts_over_ssh_are_each_hosts_own(gathered, netfleet):
    facts, _ = gathered
    for host in DB_HOSTS:
        assert facts[host]['host']['hostname'] == host
        assert facts[host]['host']['is_database_host'] is True
        assert facts[host]['server']['hostname'] == host
    # Each host's own boot time (a time namespace each): db3 up for more than 3 years, db4 about 2 days.
    assert facts['db3']['host']['uptime_seconds'] > 3 * 365 * DAY
    assert DAY < facts['db4']['host']['uptime_seconds'] < 3 * DAY
    replication = facts['db2']['replication']
    assert replication['role'] == 'replica' and replication['is_replica'] is True
    assert [channel['source_host'] for channel in replication['channels']] == [netfleet.host('db1').address]
    assert facts['db1']['replication']['role'] == 'primary'
    assert {facts[host]['replication']['role'] for host in ('db3', 'db4')} == {'standalone'}


def test_fleet_tags_with_the_repository_rules_over_ssh(gathered):
    facts, tags = gathered
    assert 'replica' in tags['db2'] and 'primary' not in tags['db2']
    assert 'primary' in tags['db1']
    assert {host for host in DB_HOSTS if 'standalone' in tags[host]} == {'db3', 'db4'}
    # high_risk wants mysqld AND the OS up for years. The netfleet ages each host's boot time (a time
    # namespace) but mysqld's own uptime follows the wall clock and cannot be aged, so no host is
    # high_risk here; the rule's host condition is evaluated alone, on the facts gathered over SSH.
    assert not any('high_risk' in tags[host] for host in DB_HOSTS)
    rule = load_rules(RULES).rule('high_risk')
    terms = [term.strip() for term in rule.when.split(' and ')]
    host_terms = [term for term in terms if 'facts.host.' in term]
    assert [term for term in terms if term not in host_terms] == ['facts.server.uptime_seconds > '
                                                                  'days(vars.high_risk_days)']
    variables = load_rules(RULES).variables
    host_condition = parse_rules(yaml.safe_dump({'vars': variables, 'rules': [
        {'tag': 'high_risk_host', 'dimension': 'risk', 'when': ' and '.join(host_terms)}]}))
    flagged = {host for host in DB_HOSTS
               if 'high_risk_host' in host_condition.evaluate(HostContext(host, facts[host], {}, frozenset())).tags}
    assert flagged == {'db3'}


# -- backups on the database host ------------------------------------------------------------------

def test_physical_and_logical_backups_are_written_on_the_database_host(prepared, fleet, netfleet):
    account = "'%s'@'localhost'" % PHYSICAL_USER
    netfleet.ssh('db1', 'rm -rf /var/backups/dbfleet/db1')
    netfleet.sql('db1', ['SET sql_log_bin = 0', "CREATE OR REPLACE USER %s IDENTIFIED BY '%s'"
                         % (account, PHYSICAL_PASSWORD), 'GRANT %s ON *.* TO %s' % (PHYSICAL_GRANTS, account)])
    store_url = 'sqlite:///%s' % (fleet.directory / 'backups.db')
    try:
        physical = fleet.playbook(REPO / 'playbooks' / 'backup.yml', '--limit', 'db1', '-e', json.dumps(dict(
            dbfleet_backup_method='physical', dbfleet_backup_login_user=PHYSICAL_USER,
            dbfleet_backup_login_password=PHYSICAL_PASSWORD)), DBFLEET_STORE_URL=store_url)
    finally:
        netfleet.sql('db1', ['SET sql_log_bin = 0', 'DROP USER IF EXISTS %s' % account])
    assert physical.returncode == 0, output_of(physical)[-6000:]
    logical = fleet.playbook(REPO / 'playbooks' / 'backup.yml', '--limit', 'db1', DBFLEET_STORE_URL=store_url)
    assert logical.returncode == 0, output_of(logical)[-6000:]

    manifests = netfleet.ssh('db1', 'find /var/backups/dbfleet/db1 -name manifest.json | sort').stdout.split()
    assert len(manifests) == 2, manifests
    seen = {}
    for path in manifests:
        manifest = json.loads(netfleet.ssh('db1', 'cat %s' % shlex.quote(path)).stdout)
        archive = str(Path(path).parent / manifest['archive'])
        assert netfleet.ssh('db1', 'sha256sum %s' % shlex.quote(archive)).stdout.split()[0] == manifest['sha256']
        seen[manifest['method']] = manifest
    assert set(seen) == {'physical', 'logical'}
    assert seen['physical']['tool']['name'] in ('mariabackup', 'mariadb-backup')
    assert seen['logical']['databases'] and 'crm' in seen['logical']['databases']
    # Written where the module ran, not on the controller (whose /work the namespace hosts share).
    assert not Path('/var/backups/dbfleet/db1').exists()
    assert not (REPO / 'var' / 'backups' / 'db1').exists()
    with open_store(store_url) as store:
        recorded = store.backups.list(host='db1')
    assert {(row['method'], row['status']) for row in recorded} == {('physical', 'ok'), ('logical', 'ok')}
    assert all(row['path'].startswith('/var/backups/dbfleet/db1/') for row in recorded)


# -- the crontab agent -----------------------------------------------------------------------------

def test_the_agent_runs_the_command_and_spools_its_reports_when_the_api_is_away(prepared, netfleet):
    assert 'Usage: dbfleet cron exec' in netfleet.ssh('db4', '%s/bin/dbfleet cron exec --help' % VENV).stdout
    spool = '/var/lib/dbfleet/cron-spool'
    # An API address on the host's own network where nothing listens: refused at once.
    api = 'http://%s:9' % netfleet.host('db4').address
    environment = 'DBFLEET_API_URL=%s DBFLEET_TOKEN=not-a-real-token' % api
    netfleet.ssh('db4', 'rm -rf %s' % spool)
    for command, status in (('true', 0), ('exit 3', 3)):
        run = netfleet.ssh('db4', '%s %s/bin/dbfleet cron exec sched-netfleet -- %s' % (
            environment, VENV, shlex.quote(command)), check=False)
        assert run.returncode == status, run.stderr
    names = netfleet.ssh('db4', 'ls %s' % spool).stdout.split()
    reports = [json.loads(netfleet.ssh('db4', 'cat %s/%s' % (spool, name)).stdout) for name in sorted(names)]
    assert [(report['phase'], report.get('exit_code')) for report in reports] == [
        ('start', None), ('end', 0), ('start', None), ('end', 3)]
    assert {(report['schedule_id'], report['host']) for report in reports} == {('sched-netfleet', 'db4')}
    assert netfleet.ssh('db4', 'stat -c %%a %s' % spool).stdout.strip() == '700'
