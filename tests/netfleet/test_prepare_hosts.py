"""The collection over SSH on the namespace fleet: playbooks/prepare_hosts.yml makes the database
hosts usable (a virtualenv from the controller's wheelhouse, nothing from the network), then
collect_facts.yml, inspect.yml's fleet_tags and backup.yml run there for real, with host key
checking on (the crontab bridge over SSH: test_cron_over_ssh.py)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from dbfleet import __version__
from dbfleet.store import open_store
from dbfleet.tags import HostContext, load_rules, parse_rules
from tests.conftest import REPO
from tests.netfleet.conftest import DB_HOSTS, VENV, output_of, recap

pytestmark = pytest.mark.netfleet

DAY = 86400
RULES = REPO / 'inventories' / 'tag_rules.yml'
# What docs/backups.md says a physical backup needs on MariaDB 10.11.
PHYSICAL_USER = 'dbfleet_physical_test'
PHYSICAL_PASSWORD = 'physical-pw-Secret5'
PHYSICAL_GRANTS = 'RELOAD, PROCESS, BINLOG MONITOR'


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
