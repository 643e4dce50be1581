"""mysql_facts through real ansible-playbook runs against the local MariaDB fleet."""

from __future__ import annotations

import json
import re
import time

import pytest

from devtools.fleet import INSTANCES, MONITOR_PASSWORD, MONITOR_USER

pytestmark = pytest.mark.fleet

SYSTEM = ('mysql', 'information_schema', 'performance_schema', 'sys')


def host_vars(name, user=MONITOR_USER, password=MONITOR_PASSWORD, **extra):
    values = dict(login_host='127.0.0.1', login_port=INSTANCES[name].port, login_user=user, login_password=password)
    values.update(extra)
    return values


LOGIN = dict(login_host='{{ login_host }}', login_port='{{ login_port }}', login_user='{{ login_user }}',
             login_password='{{ login_password }}', config_file='')


def module_args(**extra):
    args = dict(LOGIN)
    args.update(extra)
    return args




def run_all(run_module, **extra):
    hosts = dict((name, host_vars(name)) for name in INSTANCES)
    return run_module(hosts, module_args(**extra))


def test_every_subset_on_every_instance(fleet, run_module):
    run = run_all(run_module)
    assert run.rc == 0, run.output
    for name, instance in INSTANCES.items():
        facts = run.facts(name)
        assert facts['errors'] == {}, (name, facts['errors'])
        assert set(facts['gathered_subsets']) == {'server', 'host', 'replication', 'schemas', 'variables',
                                                  'status', 'engines', 'users'}
        server = facts['server']
        assert server['flavour'] == 'mariadb'
        assert server['port'] == instance.port
        assert server['server_id'] == instance.server_id
        assert server['version']['major'] >= 10
        assert server['uptime_seconds'] >= 0 and server['start_time'].endswith('Z')
        assert facts['host']['boot_epoch'] and facts['host']['is_database_host'] is True
        assert facts['engines']['default'] == 'InnoDB'
        assert facts['status']['derived']['buffer_pool_hit_ratio'] is not None
        assert facts['variables']['max_connections'] > 0
        assert run.results[name]['changed'] is False


def test_roles_read_only_and_replication_channel(fleet, run_module):
    run = run_all(run_module, gather_subset=['replication'])
    assert run.rc == 0, run.output
    primary, replica, analytics = (run.facts(name) for name in ('primary', 'replica', 'analytics'))
    assert primary['replication']['role'] == 'primary'
    assert primary['replication']['replica_count'] >= 1
    assert primary['server']['read_only'] is False and primary['server']['log_bin'] is True
    assert analytics['replication']['role'] == 'standalone'
    assert replica['server']['read_only'] is True
    assert replica['server']['gtid_mode'] == 'ON'
    replication = replica['replication']
    assert replication['role'] == 'replica' and replication['channel_count'] == 1
    channel = replication['channels'][0]
    assert channel['source_port'] == INSTANCES['primary'].port
    assert channel['io_running'] is True and channel['sql_running'] is True and channel['healthy'] is True
    assert channel['using_gtid'] == 'Slave_Pos' and channel['gtid_io_pos']
    assert replication['lag_seconds'] is not None and replication['lag_seconds'] >= 0


def _information_schema_sizes(connection):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_SCHEMA, COUNT(*), SUM(DATA_LENGTH), SUM(INDEX_LENGTH) FROM information_schema.TABLES"
            " WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN %s GROUP BY TABLE_SCHEMA", (SYSTEM,))
        return dict((row[0], (int(row[1]), int(row[2]), int(row[3]))) for row in cursor.fetchall())


@pytest.mark.parametrize('name', ['primary', 'analytics'])
def test_schema_sizes_equal_information_schema(fleet, run_module, name):
    admin = fleet.admin(name)
    before = _information_schema_sizes(admin)
    run = run_module({name: host_vars(name)}, module_args(gather_subset=['schemas']))
    after = _information_schema_sizes(admin)
    assert run.rc == 0, run.output
    assert before == after, 'statistics changed during the run; rerun'
    schemas = run.facts(name)['schemas']
    reported = dict((schema, (item['tables'], item['data_bytes'], item['index_bytes']))
                    for schema, item in schemas['items'].items() if item['tables'])
    assert reported == before
    assert schemas['totals']['total_bytes'] == sum(data + index for _t, data, index in before.values())
    assert schemas['totals']['tables'] == sum(tables for tables, _d, _i in before.values())
    assert not set(SYSTEM) & set(schemas['items'])
    if name == 'analytics':
        assert schemas['totals']['schemas'] >= 50 and schemas['totals']['tables'] >= 1000


def test_exact_mode_reports_bytes_on_disk(fleet, run_module):
    run = run_module({'primary': host_vars('primary')}, module_args(gather_subset=['schemas'], schema_sizes='exact'))
    assert run.rc == 0, run.output
    schemas = run.facts('primary')['schemas']
    assert schemas['mode'] == 'exact'
    for name, item in schemas['items'].items():
        if item['engines'].get('InnoDB'):
            assert item['disk_bytes'] >= item['data_bytes'], name
    assert schemas['totals']['disk_bytes'] == sum(item['disk_bytes'] for item in schemas['items'].values())


def test_schema_filter(fleet, run_module):
    run = run_module({'analytics': host_vars('analytics')},
                     module_args(gather_subset=['schemas'], schema_filter=['tenant_00*']))
    assert run.rc == 0, run.output
    names = set(run.facts('analytics')['schemas']['items'])
    assert names and all(name.startswith('tenant_00') for name in names)


def test_lag_is_reported_while_the_replica_is_delayed(fleet, run_module):
    with fleet.replica_delayed(60):
        run = run_module({'replica': host_vars('replica')}, module_args(gather_subset=['replication']))
    assert run.rc == 0, run.output
    replication = run.facts('replica')['replication']
    channel = replication['channels'][0]
    assert channel['sql_delay'] == 60
    assert replication['lag_seconds'] >= 2
    assert channel['sql_remaining_delay'] is not None


def test_stopped_sql_thread_makes_lag_unknown(fleet, run_module):
    with fleet.replica_sql_stopped():
        run = run_module({'replica': host_vars('replica')}, module_args(gather_subset=['replication']))
    replication = run.facts('replica')['replication']
    assert replication['lag_seconds'] is None
    assert replication['channels'][0]['sql_running'] is False
    assert replication['all_channels_healthy'] is False


def test_wrong_password_fails_clearly_without_echoing_it(fleet, run_module):
    secret = 'Wrong-Pass-%d' % time.time()
    run = run_module({'primary': host_vars('primary', password=secret)}, module_args(), extra_args=['-vvv'])
    result = run.results['primary']
    assert result['failed'] is True
    assert '127.0.0.1:%d' % INSTANCES['primary'].port in result['msg']
    assert 'access denied' in result['msg']
    assert secret not in run.output and secret not in json.dumps(result)


def test_unreachable_port_fails_clearly(fleet, run_module):
    run = run_module({'primary': host_vars('primary', login_port=1)}, module_args(connect_timeout=3))
    result = run.results['primary']
    assert result['failed'] is True
    assert '127.0.0.1:1' in result['msg'] and 'unreachable' in result['msg']
    assert MONITOR_PASSWORD not in run.output


def test_wrong_socket_fails_clearly(fleet, run_module):
    run = run_module({'primary': {}}, dict(login_unix_socket='/nonexistent/mysqld.sock', login_user=MONITOR_USER,
                                           login_password=MONITOR_PASSWORD, config_file=''))
    result = run.results['primary']
    assert result['failed'] is True and '/nonexistent/mysqld.sock' in result['msg']


def test_unix_socket_login(fleet, run_module):
    socket_path = str(INSTANCES['primary'].socket)
    run = run_module({'primary': {}}, dict(login_unix_socket=socket_path, login_user=MONITOR_USER,
                                           login_password=MONITOR_PASSWORD, config_file='', gather_subset=['!all']))
    assert run.rc == 0, run.output
    facts = run.facts('primary')
    assert facts['server']['port'] == INSTANCES['primary'].port
    assert facts['target']['socket'] == socket_path and facts['gathered_subsets'] == ['server']


def test_config_file_supplies_credentials(fleet, run_module, tmp_path):
    cnf = tmp_path / 'monitor.cnf'
    cnf.write_text('[client]\nuser=%s\npassword=%s\n' % (MONITOR_USER, MONITOR_PASSWORD))
    run = run_module({'analytics': {}}, dict(login_host='127.0.0.1', login_port=INSTANCES['analytics'].port,
                                             config_file=str(cnf), gather_subset=['!all']))
    assert run.rc == 0, run.output
    assert run.facts('analytics')['server']['server_id'] == INSTANCES['analytics'].server_id


def test_missing_privilege_fails_only_that_subset(fleet, run_module):
    from devtools.fleet import LIMITED_PASSWORD, LIMITED_USER

    run = run_module({'primary': host_vars('primary', user=LIMITED_USER, password=LIMITED_PASSWORD)}, module_args())
    assert run.rc == 0, run.output
    facts = run.facts('primary')
    assert 'users' in facts['errors'] and facts['users'] is None
    assert 'denied' in facts['errors']['users'].lower()
    assert facts['server']['flavour'] == 'mariadb' and facts['engines']['default'] == 'InnoDB'


def test_gather_subset_selection_and_bad_name(fleet, run_module):
    run = run_module({'primary': host_vars('primary')}, module_args(gather_subset=['all', '!users', '!schemas']))
    assert run.rc == 0, run.output
    facts = run.facts('primary')
    assert 'users' not in facts and 'schemas' not in facts and 'replication' in facts
    bad = run_module({'primary': host_vars('primary')}, module_args(gather_subset=['schemas', 'bogus']))
    assert bad.results['primary']['failed'] is True
    assert 'bogus' in bad.results['primary']['msg'] and 'replication' in bad.results['primary']['msg']


def test_check_mode_returns_the_same_facts(fleet, run_module):
    run = run_module({'analytics': host_vars('analytics')}, module_args(gather_subset=['!all']), extra_args=['--check'])
    assert run.rc == 0, run.output
    assert run.results['analytics']['changed'] is False
    assert run.facts('analytics')['server']['server_id'] == INSTANCES['analytics'].server_id


def test_users_risk_indicators_without_hashes(fleet, run_module):
    admin = fleet.admin('analytics')
    with admin.cursor() as cursor:
        cursor.execute("CREATE USER IF NOT EXISTS 'risky_nopass'@'%' IDENTIFIED BY ''")
        cursor.execute("CREATE USER IF NOT EXISTS ''@'localhost'")
        cursor.execute("CREATE USER IF NOT EXISTS 'hashed'@'10.0.0.1' IDENTIFIED BY 'Some-Pass-123'")
    try:
        run = run_module({'analytics': host_vars('analytics')}, module_args(gather_subset=['users']))
        assert run.rc == 0, run.output
        users = run.facts('analytics')['users']
        assert 'risky_nopass@%' in users['without_password'] and 'risky_nopass@%' in users['wildcard_host']
        assert '@localhost' in users['anonymous']
        assert 'hashed@10.0.0.1' not in users['without_password']
        dumped = json.dumps(run.results['analytics'])
        assert not re.search(r'\*[0-9A-F]{40}', dumped), 'a password hash leaked'
    finally:
        with admin.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS 'risky_nopass'@'%', ''@'localhost', 'hashed'@'10.0.0.1'")


def test_collect_facts_playbook_prints_a_summary(fleet):
    import subprocess

    from tests.conftest import REPO, VENV_BIN, ansible_env

    completed = subprocess.run([str(VENV_BIN / 'ansible-playbook'), '-i', 'inventories/local_fleet.yml',
                                'playbooks/collect_facts.yml'], cwd=REPO, env=ansible_env(),
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert re.search(r'mariadb 10\.\S+ \| role replica \| lag \d+ \| data [\d.]+ \w?B', completed.stdout)
    assert 'role primary' in completed.stdout and 'role standalone' in completed.stdout


def test_missing_pymysql_is_a_clear_failure(fleet, run_module, tmp_path):
    import subprocess
    import sys

    bare = tmp_path / 'bare-venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(bare)], check=True)
    hosts = {'primary': dict(host_vars('primary'), ansible_python_interpreter=str(bare / 'bin' / 'python'))}
    run = run_module(hosts, module_args())
    result = run.results['primary']
    assert result['failed'] is True
    assert 'PyMySQL' in result['msg']
    assert MONITOR_PASSWORD not in run.output


def test_multi_source_channels_are_listed_separately(fleet, run_module):
    """A second, named MariaDB connection (to a server without a binlog, so it cannot work) shows up as its
    own channel with its error, while the default channel stays healthy."""
    from devtools.fleet.seed import REPL_PASSWORD, REPL_USER

    fleet.on_replica(["CHANGE MASTER 'reporting' TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %d,"
                         " MASTER_USER = '%s', MASTER_PASSWORD = '%s', MASTER_CONNECT_RETRY = 1"
                         % (INSTANCES['analytics'].port, REPL_USER, REPL_PASSWORD),
                         "START SLAVE 'reporting'"])
    try:
        deadline = time.time() + 20
        while True:
            run = run_module({'replica': host_vars('replica')}, module_args(gather_subset=['replication']))
            channels = dict((channel['channel'], channel) for channel in run.facts('replica')['replication']['channels'])
            if channels.get('reporting', {}).get('last_io_errno') or time.time() > deadline:
                break
            time.sleep(1)
        replication = run.facts('replica')['replication']
        assert replication['channel_count'] == 2 and set(channels) == {'', 'reporting'}
        assert channels['']['healthy'] is True and channels['']['source_port'] == INSTANCES['primary'].port
        assert channels['reporting']['source_port'] == INSTANCES['analytics'].port
        assert channels['reporting']['io_running'] is False and channels['reporting']['last_io_errno']
        assert replication['all_channels_healthy'] is False
        assert REPL_PASSWORD not in run.output
    finally:
        fleet.on_replica(["STOP SLAVE 'reporting'", "RESET SLAVE 'reporting' ALL"])
