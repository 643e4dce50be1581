"""The namespace fleet itself: each host a machine of its own, reached over SSH with host key
checking, its own mariadbd (primary, replica over the fleet network, standalones), its own
hostname, boot time, files and crontab; cut off and back; removed without a trace."""

from __future__ import annotations

import os
import subprocess
import time

import pymysql
import pytest

from devtools.netfleet import topology
from devtools.netfleet.harness import NetFleet, NetFleetError
from tests.conftest import REPO, ansible_env

pytestmark = pytest.mark.netfleet

DB_HOSTS = ('db1', 'db2', 'db3', 'db4')
DAY = 86400


def test_each_host_is_its_own_machine_over_ssh(netfleet):
    seen = {}
    for host in netfleet.topology.hosts:
        out = netfleet.ssh(host.name, 'hostname; cut -d" " -f1 /proc/uptime; grep btime /proc/stat').stdout.split()
        seen[host.name] = dict(hostname=out[0], uptime=float(out[1]), btime=int(out[3]))
    assert {name: info['hostname'] for name, info in seen.items()} == {h.name: h.name for h in netfleet.topology.hosts}
    # A time namespace per host: db3 has not been restarted for more than 3 years, db4 for 2 days.
    assert seen['db3']['uptime'] > 3 * 365 * DAY
    assert DAY < seen['db4']['uptime'] < 3 * DAY
    assert len({info['btime'] // 60 for info in seen.values() if info}) >= 4


def test_host_key_checking_refuses_a_wrong_key(netfleet, tmp_path):
    wrong = tmp_path / 'known_hosts'
    db2_key = netfleet.files('db2').host_public_key()
    wrong.write_text('%s %s\n' % (netfleet.host('db1').address, db2_key))  # db2's key claimed for db1
    options = [option.replace(str(netfleet.known_hosts), str(wrong)) for option in netfleet.ssh_options()]
    result = subprocess.run(['ssh', *options, 'root@%s' % netfleet.host('db1').address, 'true'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 255
    assert 'REMOTE HOST IDENTIFICATION HAS CHANGED' in result.stderr or 'verification failed' in result.stderr


def test_an_unauthorized_key_is_refused(netfleet, tmp_path):
    stranger = tmp_path / 'stranger'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(stranger)], check=True)
    options = netfleet.ssh_options()
    options[options.index('-i') + 1] = str(stranger)
    result = subprocess.run(['ssh', *options, 'root@%s' % netfleet.host('db1').address, 'true'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 255 and 'Permission denied' in result.stderr


def test_database_hosts_replicate_over_the_fleet_network(netfleet):
    for name in DB_HOSTS:
        assert netfleet.sql(name, 'SELECT @@hostname').strip() == name
    primary = netfleet.sql('db1', 'SELECT @@log_bin, @@gtid_strict_mode, @@bind_address').split()
    assert primary == ['1', '1', netfleet.host('db1').address]
    assert netfleet.sql('db3', 'SELECT @@log_bin').strip() == '0'
    marker = 'netfleet_%d' % time.monotonic_ns()
    with netfleet.admin('db1') as connection:
        connection.cursor().execute('CREATE OR REPLACE TABLE dbfleet_fleet.%s (id INT PRIMARY KEY)' % marker)
    try:
        netfleet.wait_replica_caught_up(timeout=60)
        assert netfleet.sql('db2', "SHOW TABLES FROM dbfleet_fleet LIKE '%s'" % marker).strip() == marker
        with netfleet.admin('db2', cursorclass=pymysql.cursors.DictCursor) as connection:
            cursor = connection.cursor()
            cursor.execute('SHOW SLAVE STATUS')
            status = cursor.fetchone()
        assert status['Master_Host'] == netfleet.host('db1').address
        assert (status['Slave_IO_Running'], status['Slave_SQL_Running'], status['Using_Gtid']) == ('Yes', 'Yes',
                                                                                                  'Slave_Pos')
    finally:
        with netfleet.admin('db1') as connection:
            connection.cursor().execute('DROP TABLE IF EXISTS dbfleet_fleet.%s' % marker)


def test_each_host_has_its_own_files_and_crontab(netfleet):
    netfleet.ssh('db1', "echo '17 3 * * * /usr/bin/true netfleet-test' | crontab - && touch /etc/dbfleet/only-on-db1")
    try:
        assert 'netfleet-test' in netfleet.ssh('db1', 'crontab -l').stdout
        other = netfleet.ssh('db2', 'crontab -l; ls /etc/dbfleet', check=False)
        assert 'netfleet-test' not in other.stdout and 'only-on-db1' not in other.stdout
        assert not (REPO / 'etc').exists()
        # the machine's own crontab spool and /etc/dbfleet are untouched
        machine = subprocess.run(['crontab', '-l'], capture_output=True, text=True)
        assert 'netfleet-test' not in machine.stdout
        assert not os.path.exists('/etc/dbfleet/only-on-db1')
        # a cron of the host's own, in its mount namespace (reading its spool), not the machine's
        inside = os.stat('/proc/%d/ns/mnt' % netfleet.status()['db1']['holder']).st_ino
        crons = subprocess.run(['pgrep', '-x', 'cron'], capture_output=True, text=True).stdout.split()
        assert any(os.stat('/proc/%s/ns/mnt' % pid).st_ino == inside for pid in crons)
    finally:
        netfleet.ssh('db1', 'crontab -r; rm -f /etc/dbfleet/only-on-db1', check=False)


def test_a_cut_host_is_unreachable_until_restored(netfleet):
    netfleet.cut('db4')
    try:
        result = subprocess.run(['ssh', *netfleet.ssh_options(), '-o', 'ConnectTimeout=2',
                                 'root@%s' % netfleet.host('db4').address, 'true'], capture_output=True, timeout=60)
        assert result.returncode == 255
    finally:
        netfleet.restore('db4')
    deadline = time.monotonic() + 30
    while netfleet.ssh('db4', 'true', check=False).returncode != 0:
        assert time.monotonic() < deadline, 'db4 did not come back after its link was restored'
        time.sleep(0.2)


def test_namespace_hosts_reach_nothing_outside_the_fleet(netfleet):
    routes = netfleet.run_inside('db1', ['ip', '-4', 'route']).stdout
    assert 'default' not in routes
    assert routes.split()[0] == netfleet.topology.subnet


def test_ansible_reaches_the_fleet_with_the_committed_inventory(netfleet):
    if netfleet.topology.fleet_id != 0 or netfleet.spec not in (None, '', topology.DEFAULT_SPEC):
        pytest.skip('inventories/ssh_fleet.yml describes fleet 0 with the default hosts')
    result = subprocess.run(
        ['ansible', '-i', 'inventories/ssh_fleet.yml', 'all', '-m', 'raw', '-a', 'hostname', '--private-key',
         str(netfleet.key), '-o'], cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split(' | ')[0]: line for line in result.stdout.splitlines() if ' | ' in line}
    for host in netfleet.topology.hosts:
        assert lines[host.name].startswith('%s | CHANGED | rc=0 | (stdout) ' % host.name), result.stdout
        # The host's own name among its output lines (the oneline callback writes them as \r\n). Root's
        # shell start-up on a host is the machine's (pyenv's rehash), and may say something first.
        output = lines[host.name].split('(stdout) ', 1)[1].split(' (stderr) ')[0]
        assert host.name in output.split('\\r\\n'), lines[host.name]


def test_the_committed_inventory_is_current():
    expected = NetFleet(spec='', fleet_id=0).inventory(
        known_hosts='{{ inventory_dir }}/../var/netfleet/0/ssh/known_hosts')
    assert (REPO / 'inventories' / 'ssh_fleet.yml').read_text() == expected


def test_a_second_fleet_starts_beside_and_stops_without_a_trace(netfleet, tmp_path):
    """Fleet 201 (one database host, one backup host) beside the suite's: stop leaves no
    namespace, veth, bridge, process or mount point."""
    other = NetFleet(spec='db=1,backup=1', fleet_id=201, base=tmp_path / 'fleet201')
    try:
        info = other.start()
        assert set(info) - {'_summary'} == {'db1', 'backup1'}
        assert other.ssh('db1', 'hostname').stdout.strip() == 'db1'
        assert other.host('db1').address == '10.213.201.11'
        holders = [info[name]['holder'] for name in ('db1', 'backup1')]
        assert other.sql('db1', 'SELECT 1').strip() == '1'
        # the suite's fleet is untouched by the other's start
        assert netfleet.ssh('db1', 'hostname').stdout.strip() == 'db1'
    finally:
        other.stop()
    assert other.leftovers() == []
    for pid in holders:
        assert not os.path.exists('/proc/%d' % pid)
    mounts = open('/proc/self/mountinfo').read()
    assert str(tmp_path) not in mounts


@pytest.mark.parametrize('spec, message', [
    ('db=4,worker=x', 'not KIND=COUNT'),
    ('db=10', 'at most 9'),
    ('db=0', 'no host at all'),
    ('web=2', 'not KIND=COUNT'),
])
def test_fleet_hosts_is_checked(spec, message):
    with pytest.raises(topology.TopologyError, match=message):
        topology.build(spec)


def test_the_cli_refuses_a_bad_fleet_hosts_with_exit_2():
    result = subprocess.run(['python', '-m', 'devtools.netfleet', 'status'], cwd=REPO, capture_output=True,
                            text=True, env=ansible_env(FLEET_HOSTS='db=many'))
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and 'FLEET_HOSTS' in result.stderr


def test_a_namespace_of_another_checkout_is_not_taken_over(netfleet, tmp_path):
    """The same fleet id from another directory refuses to start instead of killing the running one."""
    intruder = NetFleet(fleet_id=netfleet.topology.fleet_id, base=tmp_path / 'elsewhere')
    with pytest.raises(NetFleetError, match='belongs to the fleet under'):
        intruder.start()
    assert netfleet.ssh('db1', 'hostname').stdout.strip() == 'db1'
