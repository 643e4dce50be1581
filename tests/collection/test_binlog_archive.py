"""dbfleet.mysql.binlog_archive through ansible-playbook: the shared fleet's primary for what only reads
it (a schema of the test's own is written, flushed into a complete log and dropped), a scratch mariadbd
for what breaks an archive (a purged log, a server id change)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import subprocess
import uuid
from pathlib import Path

import pymysql
import pytest
import yaml

from dbfleet.store import open_store
from devtools.fleet import Fleet
from tests.conftest import REPO, VENV_BIN, ansible_env
from tests.scratch_server import ARCHIVE_PASSWORD, ScratchServer

pytestmark = pytest.mark.fleet

PLAYBOOK = REPO / 'playbooks' / 'binlog_archive.yml'
INVENTORY = REPO / 'inventories' / 'local_fleet.yml'
MANIFEST_KEYS = {'manifest_version', 'file', 'server_id', 'bytes', 'sha256', 'first_gtid', 'last_gtid', 'domains',
                 'first_event_at', 'last_event_at', 'archived_at'}
ISO_UTC = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$')


def archive(dest, store_url, *args, inventory=INVENTORY, extra_vars=None):
    """ansible-playbook playbooks/binlog_archive.yml; (rc, output, the registered result per host)."""
    variables = dict(dict(dbfleet_backup_dest=str(dest)), **(extra_vars or {}))
    command = [str(VENV_BIN / 'ansible-playbook'), '-i', str(inventory), str(PLAYBOOK), '-e', json.dumps(variables),
               *args]
    completed = subprocess.run(command, cwd=REPO, env=ansible_env(DBFLEET_STORE_URL=store_url, ANSIBLE_CALLBACK_RESULT_FORMAT='json'),
                               capture_output=True,
                               text=True, timeout=900)
    return completed.returncode, completed.stdout + completed.stderr


def registered(output):
    """The module results printed with -v in JSON ('changed: [host] => {...}' on one line)."""
    found = {}
    for match in re.finditer(r'^(?:ok|changed|fatal): \[([^\]]+)\](?: FAILED!)? => (\{.*\})$', output, re.M):
        found[match.group(1)] = json.loads(match.group(2))
    return found


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def gtid_seq(gtid):
    domain, _server, seq = (int(part) for part in gtid.split('-'))
    return domain, seq


@pytest.fixture(scope='module')
def fleet():
    """The running local fleet, only used (never started, restarted or stopped here): a worktree's var/fleet
    may link to the checkout whose fleet runs, so its real path is the one the servers were started with."""
    fleet = Fleet(base=(REPO / 'var' / 'fleet').resolve())
    try:
        fleet.admin('primary').close()
    except pymysql.err.MySQLError as exc:
        pytest.skip('the local fleet is not running (python -m devtools.fleet start): %s' % exc)
    return fleet


@pytest.fixture
def store_url(tmp_path):
    return 'sqlite:///%s' % (tmp_path / 'store.db')


# -- the fleet's primary ------------------------------------------------------------------------

@pytest.fixture
def written_and_flushed(fleet):
    """Rows written in a schema of this test's own, then FLUSH BINARY LOGS: the log that holds them is complete."""
    schema = 'archive_test_%s' % uuid.uuid4().hex[:10]
    with contextlib.closing(fleet.admin('primary')) as admin, admin.cursor() as cursor:
        cursor.execute('CREATE DATABASE %s' % schema)
        cursor.execute('CREATE TABLE %s.t (id INT PRIMARY KEY, v VARCHAR(20))' % schema)
        cursor.execute("INSERT INTO %s.t VALUES (1, 'one'), (2, 'two')" % schema)
        cursor.execute('SELECT @@gtid_binlog_pos')
        positions = dict(gtid_seq(gtid) for gtid in cursor.fetchone()[0].split(','))
        cursor.execute('SHOW BINARY LOGS')
        current = cursor.fetchall()[-1][0]
        cursor.execute('FLUSH BINARY LOGS')
        cursor.execute('SELECT @@datadir')
        datadir = cursor.fetchone()[0]
    try:
        yield dict(schema=schema, file=current, seq=positions[0], datadir=datadir)
    finally:
        with contextlib.closing(fleet.admin('primary')) as admin, admin.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS %s' % schema)


def primary_as_root(fleet):
    """The archive logs in as the fleet's administrator over its socket: the seeded accounts have either
    REPLICATION SLAVE (replication) or BINLOG MONITOR (monitoring), the archive needs both."""
    return dict(dbfleet_archive_login_user=os.environ.get('USER') or 'root',
                login_unix_socket=str(fleet.instance('primary').socket))


def test_a_complete_log_of_the_primary_is_archived_with_its_manifest(fleet, written_and_flushed, tmp_path, store_url):
    dest = tmp_path / 'backups'
    rc, output = archive(dest, store_url, '-v', '--limit', 'primary', extra_vars=primary_as_root(fleet))
    assert rc == 0, output
    result = registered(output)['primary']
    directory = dest / 'primary' / 'binlogs'
    name = written_and_flushed['file']
    raw, manifest_path = directory / name, directory / (name + '.json')
    manifest = json.loads(manifest_path.read_text())
    assert set(manifest) == MANIFEST_KEYS
    assert manifest['file'] == name and manifest['server_id'] == 1 and manifest['manifest_version'] == 1
    # The raw file is the server's own, byte for byte, and its hash and size are the manifest's.
    assert raw.read_bytes() == Path(written_and_flushed['datadir'], name).read_bytes()
    assert manifest['sha256'] == sha256(raw) and manifest['bytes'] == raw.stat().st_size
    first, last = gtid_seq(manifest['first_gtid']), gtid_seq(manifest['last_gtid'])
    assert first[0] == last[0] == 0 and first[1] <= written_and_flushed['seq'] <= last[1]
    assert all(ISO_UTC.match(manifest[key]) for key in ('first_event_at', 'last_event_at', 'archived_at'))
    assert manifest['first_event_at'] <= manifest['last_event_at'] <= manifest['archived_at']
    assert stat.S_IMODE(raw.stat().st_mode) == 0o600 and stat.S_IMODE(directory.stat().st_mode) == 0o750
    # Every complete log is archived, the current one is not, and nothing is incomplete.
    server_logs = sorted(path.name for path in directory.iterdir() if not path.name.endswith('.json')
                         and path.name != '.archive.lock')
    assert all((directory / (log + '.json')).is_file() for log in server_logs)
    assert result['current_file'] not in server_logs and result['gaps'] == []
    assert result['recorded'] is True and result['lag_seconds'] >= 0
    with open_store(store_url) as store:
        rows = {row['file']: row for row in store.binlogs.list('primary')}
        state = store.binlogs.state('primary')
    assert set(rows) == set(server_logs)
    assert rows[name]['sha256'] == manifest['sha256'] and rows[name]['last_gtid'] == manifest['last_gtid']
    assert rows[name]['path'] == str(raw) and rows[name]['gap'] is None
    assert state['current_file'] == result['current_file'] and state['gaps'] == []

    # Again: everything complete is there already, nothing is fetched twice.
    rc, output = archive(dest, store_url, '-v', '--limit', 'primary', extra_vars=primary_as_root(fleet))
    assert rc == 0, output
    again = registered(output)['primary']
    assert again['archived'] == [] and again['changed'] is False
    assert json.loads(manifest_path.read_text()) == manifest


def test_a_pass_never_writes_beside_another_archiver(fleet, written_and_flushed, tmp_path, store_url):
    """While another archiver (a stream: here this test) holds the directory's lock, a pass fetches nothing
    and says why; once it is released, the pass archives."""
    from ansible_collections.dbfleet.mysql.plugins.module_utils.binlog_archive import ArchiveBusy, hold_archive
    dest = tmp_path / 'backups'
    directory = dest / 'primary' / 'binlogs'
    directory.mkdir(parents=True)
    lock = hold_archive(str(directory))
    try:
        with pytest.raises(ArchiveBusy):
            hold_archive(str(directory))
        rc, output = archive(dest, store_url, '-v', '--limit', 'primary', extra_vars=primary_as_root(fleet))
        assert rc == 0, output
        busy = registered(output)['primary']
        assert busy['archived'] == [] and busy['changed'] is False
        assert 'another archiver writes %s' % directory in busy['busy'] and 'left' in busy['busy']
        assert not (directory / written_and_flushed['file']).exists()
    finally:
        os.close(lock)
    rc, output = archive(dest, store_url, '-v', '--limit', 'primary', extra_vars=primary_as_root(fleet))
    assert rc == 0, output
    done = registered(output)['primary']
    assert written_and_flushed['file'] in [manifest['file'] for manifest in done['archived']]
    assert done['busy'] is None


def test_check_mode_names_what_it_would_fetch_and_writes_nothing(fleet, written_and_flushed, tmp_path, store_url):
    dest = tmp_path / 'backups'
    rc, output = archive(dest, store_url, '-v', '--check', '--limit', 'primary', extra_vars=primary_as_root(fleet))
    assert rc == 0, output
    result = registered(output)['primary']
    assert written_and_flushed['file'] in result['pending'] and result['archived'] == []
    assert not dest.exists()
    with open_store(store_url) as store:
        assert store.binlogs.newest_by_host() == {}


# -- a scratch server: purged logs, a server id change -----------------------------------------

@pytest.fixture
def scratch(tmp_path):
    server = ScratchServer(tmp_path / 'scratch').start()
    try:
        yield server
    finally:
        server.stop()


def scratch_inventory(tmp_path, server):
    inventory = tmp_path / 'scratch.yml'
    inventory.write_text(yaml.safe_dump({'all': {'children': {'mysql': {'hosts': {'scratch': dict(
        server.login(), ansible_connection='local', ansible_python_interpreter=str(VENV_BIN / 'python'))}}}}}))
    return inventory


def write_and_flush(server, rows=1):
    server.execute('CREATE DATABASE IF NOT EXISTS t', 'CREATE TABLE IF NOT EXISTS t.r (id INT AUTO_INCREMENT PRIMARY KEY)',
                   *['INSERT INTO t.r VALUES ()'] * rows, 'FLUSH BINARY LOGS')


def test_a_log_purged_before_it_was_archived_is_a_gap(scratch, tmp_path, store_url):
    inventory, dest = scratch_inventory(tmp_path, scratch), tmp_path / 'backups'
    write_and_flush(scratch)
    rc, output = archive(dest, store_url, '-v', inventory=inventory)
    assert rc == 0, output
    first = registered(output)['scratch']
    assert [manifest['file'] for manifest in first['archived']] == ['mysql-bin.000001'] and first['gaps'] == []
    # Two logs come and go before the archive looks again.
    write_and_flush(scratch)
    write_and_flush(scratch)
    scratch.purge_to('mysql-bin.000004')
    assert scratch.binlogs() == ['mysql-bin.000004']
    rc, output = archive(dest, store_url, '-v', inventory=inventory)
    assert rc == 0, output
    result = registered(output)['scratch']
    (gap,) = result['gaps']
    assert gap['kind'] == 'purged' and gap['missing'] == ['mysql-bin.000002', 'mysql-bin.000003']
    assert gap['previous'] == 'mysql-bin.000001' and gap['file'] == 'mysql-bin.000004'
    assert gap['at'] == first['archived'][0]['last_event_at']
    assert '[WARNING]: archive gap before mysql-bin.000004' in output
    assert ARCHIVE_PASSWORD not in output
    # Once the log after the gap is complete it is archived with the gap before it, in the store too.
    write_and_flush(scratch)
    rc, output = archive(dest, store_url, '-v', inventory=inventory)
    assert rc == 0, output
    with open_store(store_url) as store:
        rows = {row['file']: row for row in store.binlogs.list('scratch')}
    assert sorted(rows) == ['mysql-bin.000001', 'mysql-bin.000004']
    assert rows['mysql-bin.000004']['gap']['kind'] == 'purged' and rows['mysql-bin.000001']['gap'] is None
    # The GTIDs say so too: the sequence jumps over the purged logs' transactions.
    assert 'GTID discontinuity in domain 0' in rows['mysql-bin.000004']['gap']['detail']


def test_a_new_server_id_is_a_gap(scratch, tmp_path, store_url):
    inventory, dest = scratch_inventory(tmp_path, scratch), tmp_path / 'backups'
    write_and_flush(scratch)
    scratch.restart(server_id=72)
    write_and_flush(scratch)
    rc, output = archive(dest, store_url, '-v', inventory=inventory)
    assert rc == 0, output
    result = registered(output)['scratch']
    kinds = dict((gap['kind'], gap) for gap in result['gaps'])
    assert set(kinds) == {'server'}, result['gaps']
    assert kinds['server']['detail'].startswith('the server id changed from 71 to 72')
    by_file = dict((manifest['file'], manifest) for manifest in result['archived'])
    assert by_file[kinds['server']['file']]['server_id'] == 72


@pytest.mark.parametrize('extra, message', [
    (dict(dbfleet_backup_dest='relative/dir'), 'dest must be an absolute path'),
])
def test_hostile_input_fails_with_a_message(scratch, tmp_path, store_url, extra, message):
    rc, output = archive(tmp_path / 'backups', store_url, '-v', inventory=scratch_inventory(tmp_path, scratch),
                         extra_vars=extra)
    assert rc != 0 and message in output, output


def test_a_wrong_password_fails_without_showing_it(scratch, tmp_path, store_url):
    inventory = scratch_inventory(tmp_path, scratch)
    rc, output = archive(tmp_path / 'backups', store_url, '-v', inventory=inventory,
                         extra_vars=dict(dbfleet_archive_login_password='wrong-Secret-77'))
    assert rc != 0 and 'access denied' in output and 'wrong-Secret-77' not in output
