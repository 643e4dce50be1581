"""mysql_backup and playbooks/backup.yml through real ansible-playbook runs against the local fleet:
backups are restored into a scratch server and compared table by table with their source."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import MANIFEST, backup_path, read_xbstream

from dbfleet.store import open_store
from devtools.fleet import LIMITED_PASSWORD, LIMITED_USER, Fleet, Instance
from devtools.fleet.harness import _terminate
from devtools.fleet.seed import BACKUP_PASSWORD, BACKUP_USER, PRIMARY_SCHEMAS
from tests.collection.backup_helpers import backup_host, module_args, playbook, run_backup_module

pytestmark = pytest.mark.fleet

PRIMARY_DATABASES = sorted(PRIMARY_SCHEMAS + ('dbfleet_fleet',))
MANIFEST_KEYS = {'manifest_version', 'name', 'server', 'server_version', 'method', 'tool', 'databases', 'compress',
                 'archive', 'bytes', 'sha256', 'started', 'finished', 'duration_seconds', 'verify_seconds',
                 'verified', 'binlog_file', 'binlog_position', 'gtid', 'warnings'}
ISO_UTC = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$')


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    """Every run here records into a store of its own, never the default one under var/."""
    url = 'sqlite:///%s' % (tmp_path / 'store.db')
    monkeypatch.setenv('DBFLEET_STORE_URL', url)
    return url


def recap(output, host):
    match = re.search(r'^%s\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)' % re.escape(host),
                      output, re.M)
    assert match, output
    return dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, match.groups())))


def the_backup(dest, host):
    """(directory, manifest) of the one backup of `host` under dest."""
    (manifest_path,) = Path(dest, host).glob('*/*/' + MANIFEST)
    return manifest_path.parent, json.loads(manifest_path.read_text())


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def server_position(connection):
    with connection.cursor() as cursor:
        cursor.execute('SHOW MASTER STATUS')
        binlog_file, position = cursor.fetchone()[:2]
        cursor.execute('SELECT @@gtid_binlog_pos')
        return binlog_file, int(position), cursor.fetchone()[0]


def user_databases(connection):
    with connection.cursor() as cursor:
        cursor.execute('SHOW DATABASES')
        return sorted(name for (name,) in cursor.fetchall()
                      if name not in ('mysql', 'information_schema', 'performance_schema', 'sys'))


def gtid_at(connection, binlog_file, position):
    with connection.cursor() as cursor:
        cursor.execute('SELECT BINLOG_GTID_POS(%s, %s)', (binlog_file, position))
        return cursor.fetchone()[0]


def parent_pid(pid):
    try:
        return int(Path('/proc/%s/stat' % pid).read_text().rsplit(')', 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descends_from(pid, ancestor):
    while pid and pid > 1:
        if pid == ancestor:
            return True
        pid = parent_pid(pid)
    return False


def scan_processes(secrets, seen, ancestor):
    """One pass over /proc: any process whose command line or environment holds one of `secrets`
    (pid -> its command line), and the dumps started by `ancestor` (the playbook under test; other
    runs on the machine - concurrent tests, benchmarks - have dumps and option files of their own)."""
    for entry in os.scandir('/proc'):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, 'cmdline').read_bytes()
            environ = Path(entry.path, 'environ').read_bytes()
        except OSError:
            continue
        args = cmdline.decode(errors='replace').split('\0')
        for secret in secrets:
            if secret.encode() in cmdline or secret.encode() in environ:
                seen['leaks'][entry.name] = args
        if args and os.path.basename(args[0]) in ('mariadb-dump', 'mysqldump') and '--version' not in args \
                and descends_from(int(entry.name), ancestor):
            seen['dumps'][entry.name] = args
            defaults = next((arg.split('=', 1)[1] for arg in args if arg.startswith('--defaults-file=')), None)
            with contextlib.suppress(OSError, TypeError):
                seen['defaults_files'][defaults] = stat.S_IMODE(os.stat(defaults).st_mode)


# -- one logical backup of the primary, shared by the tests that examine it ---------------------

@pytest.fixture(scope='module')
def primary_backup(fleet, tmp_path_factory):
    """backup.yml for the primary, watched from /proc while it runs."""
    base = tmp_path_factory.mktemp('primary-backup')
    dest, store_url = base / 'backups', 'sqlite:///%s' % (base / 'store.db')
    with contextlib.closing(fleet.admin('primary')) as admin:
        before = server_position(admin)
        databases = user_databases(admin)
        process = playbook(dest, store_url, '-vvv', '--limit', 'primary', background=True)
        seen = dict(leaks={}, dumps={}, defaults_files={})
        while process.poll() is None:
            scan_processes([BACKUP_PASSWORD], seen, process.pid)
        output = process.stdout.read()
        after = server_position(admin)
    assert process.returncode == 0, output
    directory, manifest = the_backup(dest, 'primary')
    return dict(dest=dest, store_url=store_url, output=output, seen=seen, before=before, after=after,
                directory=directory, manifest=manifest, databases=databases)


def test_a_logical_backup_of_the_primary_with_its_manifest(primary_backup):
    manifest, directory = primary_backup['manifest'], primary_backup['directory']
    assert MANIFEST_KEYS <= set(manifest)
    assert manifest['method'] == 'logical' and manifest['name'] == 'primary' and manifest['compress'] == 'gzip'
    assert manifest['tool']['name'] in ('mariadb-dump', 'mysqldump') and manifest['tool']['version']
    assert manifest['server_version'].startswith('10.') and manifest['verified'] is True
    # Every user database (other tests may have added some, like lag_probe), the seeded ones among them.
    assert manifest['databases'] == primary_backup['databases'] and set(PRIMARY_DATABASES) <= set(manifest['databases'])
    assert ISO_UTC.match(manifest['started']) and ISO_UTC.match(manifest['finished'])
    assert manifest['started'] <= manifest['finished'] and manifest['duration_seconds'] > 0
    started = dt.datetime.strptime(manifest['started'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=dt.timezone.utc)
    assert str(directory) == backup_path(str(primary_backup['dest']), 'primary', started, 'logical')
    archive = directory / manifest['archive']
    assert archive.name == 'dump.sql.gz' and sorted(path.name for path in directory.iterdir()) == [
        'dump.sql.gz', MANIFEST]
    assert manifest['bytes'] == archive.stat().st_size and manifest['sha256'] == sha256(archive)
    assert manifest['uncompressed_bytes'] > manifest['bytes']
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600 and stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert not [path for path in directory.parent.iterdir() if path.name.startswith('.')], 'no partial left'
    assert 'primary: logical' in primary_backup['output'] and str(directory) in primary_backup['output']
    assert recap(primary_backup['output'], 'primary')['failed'] == 0


def test_the_position_in_the_manifest_is_the_servers(fleet, primary_backup):
    manifest = primary_backup['manifest']
    assert manifest['binlog_file'] and manifest['binlog_position'] > 0 and manifest['gtid']
    with contextlib.closing(fleet.admin('primary')) as admin:
        # The GTID position the server itself maps the dump's binlog coordinates to.
        assert gtid_at(admin, manifest['binlog_file'], manifest['binlog_position']) == manifest['gtid']
    if primary_backup['before'] == primary_backup['after']:  # nothing was written meanwhile
        assert (manifest['binlog_file'], manifest['binlog_position'], manifest['gtid']) == primary_backup['after']


def test_durations_land_in_the_store(primary_backup):
    manifest = primary_backup['manifest']
    assert re.search(r'recorded: true', primary_backup['output'])
    with open_store(primary_backup['store_url']) as store:
        (record,) = store.backups.list('primary')
        assert store.backups.durations(['primary']) == {'primary': [manifest['duration_seconds']]}
    assert record['status'] == 'ok' and record['method'] == 'logical'
    assert record['checksum'] == manifest['sha256'] and record['bytes'] == manifest['bytes']
    assert record['path'] == str(primary_backup['directory'])
    assert (record['binlog_file'], record['binlog_position'], record['gtid']) == (
        manifest['binlog_file'], manifest['binlog_position'], manifest['gtid'])


def test_the_password_is_never_shown_nor_written(primary_backup):
    seen = primary_backup['seen']
    assert seen['dumps'], 'the dump ran while /proc was watched'
    assert seen['leaks'] == {}, 'processes with the password in their command line or environment'
    for args in seen['dumps'].values():
        (defaults,) = [arg for arg in args if arg.startswith('--defaults-file=')]
        assert args[1] == defaults
        assert not any(arg.startswith(('-p', '--password')) for arg in args)
    assert set(seen['defaults_files'].values()) <= {0o600}
    for path in seen['defaults_files']:
        assert not os.path.exists(path), 'the option file is removed after the run'
        assert not path.startswith(str(primary_backup['dest']))
    output = primary_backup['output']
    assert BACKUP_PASSWORD not in output and 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' in output
    for path in Path(primary_backup['dest']).rglob('*'):
        if path.is_file():
            data = path.read_bytes()
            assert BACKUP_PASSWORD.encode() not in data, path
            if path.suffix == '.gz':
                assert BACKUP_PASSWORD.encode() not in gzip.decompress(data), path
    store_file = Path(primary_backup['store_url'][len('sqlite:///'):])
    assert BACKUP_PASSWORD.encode() not in store_file.read_bytes()


# -- restoring into a scratch server -----------------------------------------------------------

def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.fixture(scope='module')
def scratch_server(fleet, tmp_path_factory):
    """A throwaway mariadbd (own datadir, socket, free port) built with the fleet harness's steps."""
    base = tmp_path_factory.mktemp('scratch')
    builder = Fleet(base=base)
    instance = Instance(name='scratch', port=free_port(), server_id=99, socket=base / 'scratch' / 'mysqld.sock',
                        datadir=base / 'scratch' / 'data', base=base / 'scratch', role='standalone',
                        read_only=False)
    instance.base.mkdir()
    builder.instances = {'scratch': instance}
    builder._write_config(instance)
    builder._initialize(instance)
    pid, offset = builder._launch(instance)
    try:
        builder._wait_ready(instance, pid, offset)
        yield builder, instance
    finally:
        _terminate([pid])


def table_checksums(connection, schemas):
    """{schema.table: (rows, CHECKSUM TABLE)} of every base table of `schemas`."""
    result = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'"
                       ' AND TABLE_SCHEMA IN %s ORDER BY 1, 2', (tuple(schemas),))
        for schema, table in cursor.fetchall():
            name = '`%s`.`%s`' % (schema, table)
            cursor.execute('SELECT COUNT(*) FROM %s' % name)
            rows = cursor.fetchone()[0]
            cursor.execute('CHECKSUM TABLE %s EXTENDED' % name)
            result['%s.%s' % (schema, table)] = (rows, cursor.fetchone()[1])
    return result


def schema_objects(connection, schemas):
    queries = {
        'views': 'SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN %s',
        'routines': 'SELECT ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN %s',
        'triggers': 'SELECT TRIGGER_SCHEMA, TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN %s',
        'events': 'SELECT EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN %s',
    }
    with connection.cursor() as cursor:
        found = {}
        for kind, query in queries.items():
            cursor.execute(query, (tuple(schemas),))
            found[kind] = sorted(cursor.fetchall())
    return found


def test_the_dump_restores_to_identical_tables(fleet, primary_backup, scratch_server):
    builder, instance = scratch_server
    archive = primary_backup['directory'] / primary_backup['manifest']['archive']
    with open(archive, 'rb') as compressed:
        unzip = subprocess.Popen(['gzip', '-dc'], stdin=compressed, stdout=subprocess.PIPE)
        restore = subprocess.run(['mariadb', '--socket=%s' % instance.socket, '--user=%s' % builder.os_user],
                                 stdin=unzip.stdout, capture_output=True, text=True, timeout=600)
        unzip.stdout.close()
    assert unzip.wait() == 0 and restore.returncode == 0, restore.stderr
    schemas = PRIMARY_DATABASES  # the seeded ones: no test writes to them (lag_probe, say, may change meanwhile)
    with contextlib.closing(fleet.admin('primary')) as source, contextlib.closing(builder.admin('scratch')) as copy:
        expected = table_checksums(source, schemas)
        assert len(expected) >= 10 and sum(rows for rows, _ in expected.values()) > 100000
        assert table_checksums(copy, schemas) == expected
        objects = schema_objects(source, schemas)
        assert objects['views'] and objects['routines'] and objects['triggers'] and objects['events']
        assert schema_objects(copy, schemas) == objects


# -- physical ----------------------------------------------------------------------------------

PHYSICAL_USER = 'dbfleet_physical_test'
PHYSICAL_PASSWORD = 'physical-pw-Secret5'
# What docs/backups.md says a physical backup needs on MariaDB 10.11.
PHYSICAL_GRANTS = 'RELOAD, PROCESS, BINLOG MONITOR'


@contextlib.contextmanager
def physical_account(fleet):
    """An account with exactly the documented physical grants, on the primary only (not replicated)."""
    account = "'%s'@'127.0.0.1'" % PHYSICAL_USER
    with contextlib.closing(fleet.admin('primary')) as admin, admin.cursor() as cursor:
        cursor.execute('SET sql_log_bin = 0')
        cursor.execute("CREATE OR REPLACE USER %s IDENTIFIED BY '%s'" % (account, PHYSICAL_PASSWORD))
        cursor.execute('GRANT %s ON *.* TO %s' % (PHYSICAL_GRANTS, account))
        try:
            yield
        finally:
            cursor.execute('DROP USER IF EXISTS %s' % account)


@pytest.mark.skipif(not (shutil.which('mariabackup') or shutil.which('xtrabackup')),
                    reason='mariabackup (Debian package mariadb-backup) is not installed')
def test_a_physical_backup_of_the_primary_can_be_prepared(fleet, tmp_path, private_store):
    dest = tmp_path / 'backups'
    with physical_account(fleet):
        rc, output = playbook(dest, private_store, '--limit', 'primary', extra_vars=dict(
            dbfleet_backup_method='physical', dbfleet_backup_login_user=PHYSICAL_USER,
            dbfleet_backup_login_password=PHYSICAL_PASSWORD))
    assert rc == 0, output
    directory, manifest = the_backup(dest, 'primary')
    assert MANIFEST_KEYS <= set(manifest) and manifest['method'] == 'physical'
    assert manifest['tool']['name'] in ('mariabackup', 'mariadb-backup', 'xtrabackup')
    archive = directory / manifest['archive']
    assert archive.name == 'backup.xbstream.gz' and manifest['sha256'] == sha256(archive)
    with gzip.open(archive) as stream:
        summary = read_xbstream(stream)
    assert summary['files'] == manifest['files'] > 100
    with contextlib.closing(fleet.admin('primary')) as admin:
        assert gtid_at(admin, manifest['binlog_file'], manifest['binlog_position']) == manifest['gtid']
    # The real proof: mbstream extracts it and mariabackup --prepare makes a datadir of it.
    restored = tmp_path / 'restored'
    restored.mkdir()
    with open(archive, 'rb') as compressed:
        unzip = subprocess.Popen(['gzip', '-dc'], stdin=compressed, stdout=subprocess.PIPE)
        extract = subprocess.run(['mbstream', '-x', '-C', str(restored)], stdin=unzip.stdout, capture_output=True,
                                 text=True, timeout=600)
        unzip.stdout.close()
    assert unzip.wait() == 0 and extract.returncode == 0, extract.stderr
    prepare = subprocess.run([shutil.which('mariabackup') or 'xtrabackup', '--prepare',
                              '--target-dir=%s' % restored], capture_output=True, text=True, timeout=600)
    assert prepare.returncode == 0 and 'completed OK!' in prepare.stderr, prepare.stderr[-3000:]
    assert (restored / 'shop' / 'orders.ibd').exists()
    assert PHYSICAL_PASSWORD not in output


# -- the module on its own ---------------------------------------------------------------------

def fake_backup(dest, host, days_old, method='logical'):
    """A finished-looking backup started `days_old` days ago (retention reads names and manifests only)."""
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=days_old)
    path = Path(backup_path(str(dest), host, started, method))
    path.mkdir(parents=True)
    (path / MANIFEST).write_text('{"method": "%s"}' % method)
    (path / 'dump.sql.gz').write_bytes(b'old')
    return str(path)


def test_retention_by_count_and_by_age_removes_only_older_backups_of_that_host(fleet, run_module, tmp_path):
    dest = tmp_path / 'backups'
    recent, two_days, three_days, old = (fake_backup(dest, 'primary', days) for days in (0.5, 2, 3, 20))
    physical = fake_backup(dest, 'primary', 30, method='physical')
    other_host = fake_backup(dest, 'replica', 40)
    not_a_backup = dest / 'primary' / 'notes'
    not_a_backup.mkdir()
    run = run_backup_module(run_module, dest, databases=['dbfleet_fleet'], retention_count=3)
    result = run.results['primary']
    assert run.rc == 0 and result['changed'] is True, run.output
    assert sorted(result['removed']) == sorted([three_days, old])
    first = result['path']
    for kept in (first, recent, two_days, physical, other_host, str(not_a_backup)):
        assert os.path.isdir(kept), kept
    assert not os.path.exists(old) and not os.path.exists(os.path.dirname(old)), 'its empty day directory went too'

    run = run_backup_module(run_module, dest, databases=['dbfleet_fleet'], retention_days=1)
    result = run.results['primary']
    assert run.rc == 0 and result['removed'] == [two_days], run.output
    for kept in (result['path'], first, recent, physical, other_host):
        assert os.path.isdir(kept), kept


def test_check_mode_reports_and_writes_nothing(fleet, run_module, tmp_path):
    dest = tmp_path / 'backups'
    old = fake_backup(dest, 'primary', 30)
    run = run_backup_module(run_module, dest, extra_args=('--check',), retention_days=7)
    result = run.results['primary']
    assert run.rc == 0 and result['changed'] is True and result['manifest'] is None, run.output
    assert result['path'].startswith(str(dest / 'primary')) and not os.path.exists(result['path'])
    assert result['removed'] == [old] and os.path.isdir(old)
    assert 'would write a logical backup' in result['msg'] and result['recorded'] is False
    assert sorted(path.name for path in (dest / 'primary').rglob('*')) == sorted(
        ['dump.sql.gz', MANIFEST, os.path.basename(old), os.path.basename(os.path.dirname(old))])


def test_zstd_and_a_database_subset(fleet, run_module, tmp_path):
    if not shutil.which('zstd'):
        pytest.skip('zstd is not installed')
    run = run_backup_module(run_module, tmp_path, databases=['crm'], compress='zstd')
    manifest = run.results['primary']['manifest']
    assert run.rc == 0 and manifest['databases'] == ['crm'] and manifest['archive'] == 'dump.sql.zst', run.output
    text = subprocess.run(['zstd', '-dc', os.path.join(run.results['primary']['path'], manifest['archive'])],
                          capture_output=True, check=True).stdout.decode()
    assert 'CREATE DATABASE' in text and '`crm`' in text and '`shop`' not in text


def test_a_host_at_a_closed_port_fails_alone(fleet, tmp_path, private_store):
    dest = tmp_path / 'backups'
    closed = free_port()
    broken = tmp_path / 'broken.yml'
    broken.write_text(yaml.safe_dump({'all': {'children': {'mysql': {'hosts': {
        'broken': {'login_host': '127.0.0.1', 'login_port': closed}}}}}}))
    rc, output = playbook(dest, private_store, '--limit', 'primary,analytics,broken', inventories=[broken],
                          extra_vars=dict(dbfleet_backup_databases=['dbfleet_fleet']))
    assert rc == 2, output
    assert recap(output, 'broken')['failed'] == 1
    assert recap(output, 'primary')['failed'] == 0 and recap(output, 'analytics')['failed'] == 0
    message = 'cannot connect to %s@127.0.0.1:%d: server unreachable' % (BACKUP_USER, closed)
    assert message in output
    assert re.search(r'broken: FAILED - cannot connect', output) and re.search(r'primary: logical', output)
    assert the_backup(dest, 'primary')[1]['databases'] == ['dbfleet_fleet']
    assert the_backup(dest, 'analytics')[1]['databases'] == ['dbfleet_fleet']
    assert not (dest / 'broken').exists()
    with open_store(private_store) as store:
        (failure,) = store.backups.list('broken')
        assert set(store.backups.durations()) == {'primary', 'analytics'}
    assert failure['status'] == 'failed' and message in failure['error']


def test_a_failing_dump_tool_reports_its_error_and_leaves_nothing(fleet, run_module, tmp_path, private_store):
    dest = tmp_path / 'backups'
    run = run_module({'primary': backup_host('primary', user=LIMITED_USER, password=LIMITED_PASSWORD)},
                     module_args(dest), module='dbfleet.mysql.mysql_backup')
    result = run.results['primary']
    assert result['failed'] is True
    assert re.search(r'logical backup of .* failed: mariadb-dump exited with status \d+: .*denied', result['msg'],
                     re.S), result['msg']
    assert LIMITED_PASSWORD not in run.output
    assert list(dest.rglob('*')) == [], 'no partial archive, no empty directories of this run'
    with open_store(private_store) as store:
        (record,) = store.backups.list('primary')
    assert record['status'] == 'failed' and 'denied' in record['error']


def test_destination_not_a_directory_or_not_writable(fleet, run_module, tmp_path):
    a_file = tmp_path / 'a-file'
    a_file.write_text('x')
    run = run_backup_module(run_module, a_file)
    assert 'dest %s is not a directory' % a_file in run.results['primary']['msg']

    locked = tmp_path / 'locked'
    locked.mkdir()
    with read_only(locked):
        run = run_backup_module(run_module, locked, databases=['dbfleet_fleet'])
        listing = list(locked.iterdir())
    result = run.results['primary']
    assert result['failed'] is True and 'dest %s is not writable' % locked in result['msg'], result['msg']
    assert listing == []


@contextlib.contextmanager
def read_only(directory):
    """A directory this process cannot write to, also as root (chattr +i)."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(0o700)
        return
    if subprocess.run(['chattr', '+i', str(directory)], capture_output=True).returncode != 0:
        pytest.skip('cannot make a directory read-only for root here (chattr +i)')
    try:
        yield
    finally:
        subprocess.run(['chattr', '-i', str(directory)], check=True)


@contextlib.contextmanager
def small_filesystem(path, size='1m'):
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s' % size, 'tmpfs', str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip('cannot mount a small tmpfs here (needs root)')
    try:
        yield path
    finally:
        subprocess.run(['umount', str(path)], check=True)


def test_a_full_disk_fails_clearly_and_leaves_no_partial_archive(fleet, run_module, tmp_path, private_store):
    with small_filesystem(tmp_path / 'tiny') as dest:
        run = run_backup_module(run_module, dest, compress='none')
        left = [str(path) for path in dest.rglob('*')]
    result = run.results['primary']
    assert result['failed'] is True and 'disk full while writing' in result['msg'], result['msg']
    assert left == []
    with open_store(private_store) as store:
        (record,) = store.backups.list('primary')
    assert record['status'] == 'failed' and 'disk full' in record['error']


def test_physical_refused_for_databases_and_a_missing_tool_is_named(fleet, run_module, tmp_path, monkeypatch):
    run = run_backup_module(run_module, tmp_path, method='physical', databases=['shop'])
    assert 'databases applies to logical backups only' in run.results['primary']['msg']
    # A PATH with every program of the machine but the backup programs.
    programs = tmp_path / 'bin'
    programs.mkdir()
    for directory in ('/usr/local/bin', '/usr/bin', '/bin'):
        for entry in os.scandir(directory) if os.path.isdir(directory) else ():
            if entry.name not in ('mariabackup', 'mariadb-backup', 'xtrabackup') \
                    and not (programs / entry.name).exists():
                (programs / entry.name).symlink_to(entry.path)
    monkeypatch.setenv('PATH', str(programs))
    run = run_backup_module(run_module, tmp_path, method='physical')
    assert 'physical backups need mariabackup or mariadb-backup or xtrabackup on %s, and none is installed: ' \
        'install mariadb-backup (MariaDB) or percona-xtrabackup (MySQL, Percona)' % socket.gethostname() \
        in run.results['primary']['msg'], run.output
