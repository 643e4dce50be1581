"""mysql_backup's encryption with age, throttling and prefer=replica, through real ansible-playbook runs
against the local fleet; an encrypted backup is read back with open_backup_stream and loaded."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import (
    BackupError,
    Throttle,
    Tool,
    open_backup_stream,
)

from devtools.fleet import INSTANCES
from devtools.fleet.seed import BACKUP_PASSWORD, BACKUP_USER, MONITOR_PASSWORD, MONITOR_USER
from tests.collection.backup_helpers import backup_host, run_backup_module

pytestmark = pytest.mark.fleet


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    monkeypatch.setenv('DBFLEET_STORE_URL', 'sqlite:///%s' % (tmp_path / 'store.db'))


def age_key(directory: Path, name: str) -> tuple[Path, str]:
    """(identity file, public key) of a new age key pair."""
    identity = directory / ('%s.key' % name)
    subprocess.run(['age-keygen', '-o', str(identity)], check=True, capture_output=True)
    public = subprocess.run(['age-keygen', '-y', str(identity)], check=True, capture_output=True, text=True)
    return identity, public.stdout.strip()


def tcp(name, user=BACKUP_USER, password=BACKUP_PASSWORD, **options):
    import pymysql
    return pymysql.connect(host='127.0.0.1', port=INSTANCES[name].port, user=user, password=password, **options)


def checksums(connection, schema):
    """{table: (rows, CHECKSUM TABLE)} of a schema's base tables."""
    found = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                       " AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1", (schema,))
        for (table,) in cursor.fetchall():
            cursor.execute('SELECT COUNT(*) FROM `%s`.`%s`' % (schema, table))
            rows = cursor.fetchone()[0]
            cursor.execute('CHECKSUM TABLE `%s`.`%s` EXTENDED' % (schema, table))
            found[table] = (rows, cursor.fetchone()[1])
    return found


def renamed(stream, source, target):
    """The dump's lines with the database `source` renamed `target` (its CREATE DATABASE and USE)."""
    for line in stream:
        if line.startswith((b'CREATE DATABASE', b'USE ')) and b'`%s`' % source.encode() in line:
            line = line.replace(b'`%s`' % source.encode(), b'`%s`' % target.encode())
        yield line


def test_an_encrypted_backup_round_trips_through_open_backup_stream(fleet, run_module, tmp_path):
    """crm of the primary, encrypted to two keys; read back with one of them through open_backup_stream
    and loaded into a scratch schema of the machine's MariaDB: every table is the same."""
    import pymysql
    identity, public = age_key(tmp_path, 'restore')
    _other_identity, other_public = age_key(tmp_path, 'offsite')
    dest = tmp_path / 'backups'
    run = run_backup_module(run_module, dest, databases=['crm'], encrypt_recipients=[public, other_public])
    result = run.results['primary']
    assert run.rc == 0, run.output
    manifest, path = result['manifest'], Path(result['path'])
    assert manifest['archive'] == 'dump.sql.gz.age' and manifest['encrypted'] == 'age'
    assert manifest['recipients'] == [public, other_public]
    assert 'without the private key' in manifest['verification'] and manifest['verified'] is True
    archive = path / manifest['archive']
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == manifest['sha256']
    # Nothing in clear: the archive is age, and no other file but the manifest is there.
    assert archive.read_bytes().startswith(b'age-encryption.org/v1\n')
    assert sorted(p.name for p in path.iterdir()) == ['dump.sql.gz.age', 'manifest.json']
    assert manifest['binlog_file'] and manifest['gtid'], 'the position is read from the stream before encryption'

    with pytest.raises(BackupError, match='give the identity'):
        with open_backup_stream(str(path)):
            pass
    scratch = 'copies_test_%s' % uuid.uuid4().hex[:10]
    server = pymysql.connect(host='127.0.0.1', port=3306, user='root', autocommit=True)
    try:
        with open_backup_stream(str(path), identity_file=str(identity)) as stream:
            loader = subprocess.Popen(['mariadb', '-h127.0.0.1', '-P3306', '-uroot'], stdin=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
            for line in renamed(stream, 'crm', scratch):
                loader.stdin.write(line)
            loader.stdin.close()
            assert loader.wait(timeout=300) == 0, loader.stderr.read()
        with contextlib.closing(tcp('primary')) as source:
            expected = checksums(source, 'crm')
        assert len(expected) >= 2 and checksums(server, scratch) == expected
    finally:
        with server.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS `%s`' % scratch)
        server.close()

    # A wrong key is an error naming age, once the stream is read.
    wrong, _ = age_key(tmp_path, 'wrong')
    with pytest.raises(BackupError, match='age exited'):
        with open_backup_stream(str(archive), identity_file=str(wrong)) as stream:
            stream.read()


def test_a_recipient_that_is_not_an_age_key_is_refused(fleet, run_module, tmp_path):
    run = run_backup_module(run_module, tmp_path, databases=['crm'], encrypt_recipients=['-o/etc/passwd'])
    result = run.results['primary']
    assert result['failed'] and 'encrypt_recipients must be age public keys' in result['msg'], run.output
    assert not (tmp_path / 'primary').exists()


def test_throttle_paces_the_stream_with_an_injected_clock():
    now, slept = [100.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle(1024 * 1024, clock=lambda: now[0], sleep=sleep)
    for _ in range(8):
        throttle.passed(512 * 1024)   # 4 MiB at no cost: 4 s due at 1 MiB/s
    assert now[0] - 100.0 == pytest.approx(4.0) and throttle.slept == pytest.approx(4.0)
    assert slept == [pytest.approx(0.5)] * 8
    # Time spent elsewhere counts: no sleep while the stream is slower than the rate anyway.
    now[0] += 10
    throttle.passed(1024 * 1024)
    assert len(slept) == 8
    throttle.passed(10 * 1024 * 1024)  # 15 MiB due at 115 s; it is 114 s
    assert slept[-1] == pytest.approx(1.0)


def test_throttled_logical_backup_takes_at_least_its_size_over_the_rate(fleet, run_module, tmp_path):
    """A slow rate on a small dump: the dump cannot end before bytes / rate seconds (a lower bound,
    which no machine's speed makes flaky)."""
    rate = 0.25  # MiB/s
    run = run_backup_module(run_module, tmp_path, databases=['crm'], throttle_mb_per_second=rate, verify=False)
    manifest = run.results['primary']['manifest']
    assert run.rc == 0, run.output
    due = manifest['uncompressed_bytes'] / (rate * 1024 * 1024)
    assert manifest['uncompressed_bytes'] > 2 * 1024 * 1024
    assert manifest['duration_seconds'] >= due and manifest['throttle_mb_per_second'] == rate


def test_physical_throttle_converts_to_io_operations():
    mariabackup = Tool('mariabackup', '/usr/bin/mariabackup', 'mariabackup based on MariaDB server 10.11.6-MariaDB')
    xtrabackup = Tool('xtrabackup', '/usr/bin/xtrabackup', 'xtrabackup version 8.0.35-30 based on MySQL server')
    assert mariabackup.throttle_operations(50) == 50 and mariabackup.throttle_operations(0.5) == 1
    assert xtrabackup.throttle_operations(50) == 5 and xtrabackup.throttle_operations(55) == 6
    assert '--throttle=20' in mariabackup.backup_arguments('/t', '/d', 20)
    assert not any(a.startswith('--throttle') for a in mariabackup.backup_arguments('/t', '/d'))


def replica_status():
    with contextlib.closing(tcp('replica')) as connection, connection.cursor() as cursor:
        cursor.execute('SELECT @@gtid_slave_pos')
        return cursor.fetchone()[0]


def test_prefer_replica_backs_up_the_healthy_replica_and_records_it(fleet, run_module, tmp_path):
    replica = '127.0.0.1:%d' % INSTANCES['replica'].port
    run = run_module({'primary': backup_host('primary')},
                     dict(login_host='{{ login_host }}', login_port='{{ login_port }}', login_user='{{ login_user }}',
                          login_password='{{ login_password }}', config_file='', dest=str(tmp_path),
                          name='{{ inventory_hostname }}', databases=['crm'], prefer='replica', replicas=[replica],
                          monitor_login_user=MONITOR_USER, monitor_login_password=MONITOR_PASSWORD),
                     module='dbfleet.mysql.mysql_backup')
    result = run.results['primary']
    assert run.rc == 0, run.output
    manifest = result['manifest']
    assert manifest['source']['replica'] == replica and manifest['source']['lag_seconds'] <= 60
    assert manifest['source']['gtid'] and manifest['server'].endswith(':%d' % INSTANCES['replica'].port)
    assert manifest['name'] == 'primary'
    gtid_now = replica_status()
    assert int(manifest['source']['gtid'].split('-')[-1]) <= int(gtid_now.split('-')[-1])
    assert MONITOR_PASSWORD not in run.output and BACKUP_PASSWORD not in run.output
    from dbfleet.store import open_store
    with open_store() as store:
        (row,) = store.backups.list(host='primary')
    assert row['source_replica'] == replica and row['source_gtid'] == manifest['source']['gtid']


def test_prefer_replica_without_a_healthy_one_backs_up_the_server_with_a_warning(fleet, run_module, tmp_path):
    replica = '127.0.0.1:%d' % INSTANCES['replica'].port
    # The backup account may not read the replica's status: passed over, said why, the primary is used.
    run = run_backup_module(run_module, tmp_path, databases=['crm'], prefer='replica', replicas=[replica],
                            max_replica_lag_seconds=5)
    result = run.results['primary']
    assert run.rc == 0, run.output
    assert 'source' not in result['manifest']
    assert result['manifest']['server'].endswith(':%d' % INSTANCES['primary'].port)
    assert 'SLAVE MONITOR' in json.dumps(result.get('warnings')) and BACKUP_USER in result['manifest']['server']
    bad = run_backup_module(run_module, tmp_path, databases=['crm'], prefer='replica', replicas=['nohostport'])
    assert 'is not host:port' in bad.results['primary']['msg']


def test_prefer_replica_finds_the_replicas_in_the_stores_facts(fleet, run_module, tmp_path):
    """No replicas given: the inspection's facts in the store say the replica replicates from the primary."""
    from tests.conftest import REPO, VENV_BIN, ansible_env
    inspected = subprocess.run([str(VENV_BIN / 'ansible-playbook'), '-i', str(REPO / 'inventories' / 'local_fleet.yml'),
                                str(REPO / 'playbooks' / 'inspect.yml'), '--limit', 'primary,replica'],
                               cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=600)
    assert inspected.returncode == 0, inspected.stdout[-3000:]
    run = run_module({'primary': backup_host('primary')},
                     dict(login_host='{{ login_host }}', login_port='{{ login_port }}', login_user='{{ login_user }}',
                          login_password='{{ login_password }}', config_file='', dest=str(tmp_path),
                          name='{{ inventory_hostname }}', databases=['crm'], prefer='replica',
                          monitor_login_user=MONITOR_USER, monitor_login_password=MONITOR_PASSWORD),
                     module='dbfleet.mysql.mysql_backup')
    result = run.results['primary']
    assert run.rc == 0, run.output
    assert result['manifest']['source']['replica'] == '127.0.0.1:%d' % INSTANCES['replica'].port
