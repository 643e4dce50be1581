"""What the backup catalog relies on, for real through ansible-playbook against the local fleet: a
backup killed mid-dump (its process group, as a job deadline kills it) is swept and recorded by the
next run; retention by recovery window with pins from the store, a minimum of fulls and archived
binlogs; removed backups marked in the store."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import MANIFEST, backup_path

from dbfleet.store import open_store
from runner_service.jobs.lifecycle import JOB_ENV, kill_job_processes
from devtools.fleet import LIMITED_PASSWORD, LIMITED_USER
from tests.collection.backup_helpers import INVENTORY, PLAYBOOK, backup_host, module_args, playbook, run_backup_module
from tests.conftest import REPO, VENV_BIN, ansible_env

pytestmark = pytest.mark.fleet

HOST = 'analytics'   # standalone: a schema made for the test replicates nowhere
PARTIAL_TIMEOUT = 120


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    url = 'sqlite:///%s' % (tmp_path / 'store.db')
    monkeypatch.setenv('DBFLEET_STORE_URL', url)
    return url


@pytest.fixture
def locked_schema(fleet):
    """A schema of the test's own on analytics whose one table another session holds with LOCK TABLES
    ... WRITE: a dump of it blocks there, mid-dump, until the lock goes. Dropped afterwards."""
    name = 'catalog_test_%s' % secrets.token_hex(4)
    admin = fleet.admin(HOST)
    try:
        with admin.cursor() as cursor:
            cursor.execute('CREATE DATABASE `%s`' % name)
            cursor.execute('CREATE TABLE `%s`.t (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB' % name)
            cursor.execute("INSERT INTO `%s`.t VALUES (1, 'one'), (2, 'two')" % name)
        locker = fleet.admin(HOST)
        try:
            yield name, locker
        finally:
            locker.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS `%s`' % name)
        admin.close()


def lock(locker, schema):
    with locker.cursor() as cursor:
        cursor.execute('LOCK TABLES `%s`.t WRITE' % schema)


def unlock(locker):
    with locker.cursor() as cursor:
        cursor.execute('UNLOCK TABLES')


def partials(dest):
    return sorted(str(path) for path in Path(dest, HOST).glob('*/.*.partial-*'))


def start_and_kill(dest, store_url, schema, locker):
    """backup.yml for analytics; once its dump blocks on the locked table (the partial directory
    exists), SIGKILL every process of the play as the worker does at a job's deadline or cancel
    (Ansible's workers start sessions of their own, so the worker finds them by DBFLEET_JOB_ID in
    their environment, not by process group). Returns the partial directory it left."""
    marker = 'catalog-test-%s' % secrets.token_hex(6)
    lock(locker, schema)
    command = [str(VENV_BIN / 'ansible-playbook'), '-i', str(INVENTORY), str(PLAYBOOK), '--limit', HOST,
               '-e', json.dumps(dict(dbfleet_backup_dest=str(dest), dbfleet_backup_databases=[schema]))]
    process = subprocess.Popen(command, cwd=REPO, env=ansible_env(DBFLEET_STORE_URL=store_url, **{JOB_ENV: marker}),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + PARTIAL_TIMEOUT
        while not partials(dest) or not list(Path(partials(dest)[0]).glob('dump.sql*')):
            assert process.poll() is None, 'the playbook ended before its dump blocked'
            assert time.monotonic() < deadline, 'no partial directory within %d s' % PARTIAL_TIMEOUT
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        assert kill_job_processes(marker) >= 1, 'the module and the dump outlive the process group'
        process.wait()
        unlock(locker)
    (left,) = partials(dest)
    return left


def test_a_killed_backup_is_swept_and_recorded_by_the_next_run(fleet, tmp_path, private_store, locked_schema):
    schema, locker = locked_schema
    dest = tmp_path / 'backups'
    left = start_and_kill(dest, private_store, schema, locker)
    attempt = json.loads(Path(left, 'attempt.json').read_text())
    assert attempt['method'] == 'logical' and attempt['name'] == HOST and attempt['pid'] == int(left.rsplit('-', 1)[1])
    with open_store(private_store) as store:
        assert store.backups.list(HOST) == [], 'killed: nothing recorded it'

    rc, output = playbook(dest, private_store, '--limit', HOST, extra_vars=dict(dbfleet_backup_databases=[schema]))
    assert rc == 0, output
    assert not os.path.exists(left) and partials(dest) == []
    with open_store(private_store) as store:
        ok, killed = store.backups.list(HOST)
    assert ok['status'] == 'ok' and ok['partial_path'] is None
    assert killed['status'] == 'failed' and killed['error'] == 'killed or interrupted (partial directory removed)'
    assert killed['started_at'] == dt.datetime.strptime(attempt['started'], '%Y-%m-%dT%H:%M:%SZ').replace(
        tzinfo=dt.timezone.utc)
    assert killed['partial_path'] == left and killed['kept_partial'] is False and killed['finished_at'] is None

    # With keep_partial, the next dead run's directory is kept, flagged, and recorded where it is.
    left = start_and_kill(dest, private_store, schema, locker)
    rc, output = playbook(dest, private_store, '--limit', HOST,
                          extra_vars=dict(dbfleet_backup_databases=[schema], dbfleet_backup_keep_partial=True))
    assert rc == 0, output
    flagged = left.replace('.partial-', '.failed-')
    assert not os.path.exists(left) and os.path.isdir(flagged)
    assert sorted(os.listdir(flagged))[:2] == ['.lock', 'attempt.json']
    with open_store(private_store) as store:
        kept = [row for row in store.backups.list(HOST) if row['kept_partial']]
    assert [row['partial_path'] for row in kept] == [flagged]
    assert kept[0]['error'] == 'killed or interrupted (partial directory kept at %s)' % flagged


def test_a_failing_backup_keeps_its_partial_directory_when_asked(fleet, run_module, tmp_path, private_store):
    dest = tmp_path / 'backups'
    run = run_backup_module(run_module, dest, hosts=(HOST,), keep_partial=True, retention_count=0)
    assert run.results[HOST]['failed'] is True and 'retention_count must be at least 1' in run.results[HOST]['msg']
    assert not dest.exists(), 'bad options fail before anything is written'
    # The dump tool fails (the limited account may not read the routines): its partial archive is kept.
    run = run_module({'primary': backup_host('primary', user=LIMITED_USER, password=LIMITED_PASSWORD)},
                     module_args(dest, keep_partial=True), module='dbfleet.mysql.mysql_backup')
    result = run.results['primary']
    assert result['failed'] is True and 'denied' in result['msg'], run.output
    kept = result['backup']['partial_path']
    assert '.failed-' in os.path.basename(kept) and os.path.isdir(kept)
    assert 'dump.sql.gz' in os.listdir(kept)
    assert 'denied' in json.loads(Path(kept, 'attempt.json').read_text())['failed']
    assert LIMITED_PASSWORD not in run.output
    with open_store(private_store) as store:
        (record,) = store.backups.list('primary')
    assert record['status'] == 'failed' and record['kept_partial'] is True and record['partial_path'] == kept
    # The next run leaves a flagged directory alone.
    run = run_module({'primary': backup_host('primary')}, module_args(dest, databases=['dbfleet_fleet']),
                     module='dbfleet.mysql.mysql_backup')
    assert run.results['primary']['abandoned'] == [] and os.path.isdir(kept), run.output


# -- retention by recovery window, pins and the binlog archive ---------------------------------

def fake_backup(dest, started, binlog_file, method='logical'):
    path = Path(backup_path(str(dest), HOST, started, method))
    path.mkdir(parents=True)
    (path / MANIFEST).write_text(json.dumps({'method': method, 'binlog_file': binlog_file}))
    (path / 'dump.sql.gz').write_bytes(b'old')
    return str(path)


def archived_binlog(dest, name, manifest=True):
    directory = Path(dest, HOST, 'binlogs')
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(b'\xfebin')
    if manifest:
        (directory / (name + '.json')).write_text(json.dumps({'manifest_version': 1, 'file': name}))
    return str(directory / name)


def test_retention_by_window_keeps_pins_and_a_minimum_and_prunes_the_binlog_archive(fleet, run_module, tmp_path,
                                                                                    private_store):
    dest = tmp_path / 'backups'
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    day = dt.timedelta(days=1)
    recent = fake_backup(dest, now - 2 * day, 'mysql-bin.000009')
    base = fake_backup(dest, now - 8 * day, 'mysql-bin.000007')       # restores day 7 of the window
    old = fake_backup(dest, now - 12 * day, 'mysql-bin.000005')
    pinned = fake_backup(dest, now - 20 * day, 'mysql-bin.000003')    # pinned in the catalog
    marked = fake_backup(dest, now - 25 * day, 'mysql-bin.000002')    # pinned on the host (.keep)
    Path(marked, '.keep').touch()
    older = fake_backup(dest, now - 30 * day, 'mysql-bin.000001')
    binlogs = [archived_binlog(dest, 'mysql-bin.%06d' % number) for number in range(1, 10)]
    cut_short = archived_binlog(dest, 'mysql-bin.000000', manifest=False)
    with open_store(private_store) as store:
        rows = dict((path, store.backups.record(HOST, method='logical', started_at=now - days * day, path=path))
                    for path, days in ((recent, 2), (base, 8), (old, 12), (pinned, 20), (marked, 25), (older, 30)))
        store.backups.set_pinned(rows[pinned]['id'], True)
        for number in range(1, 10):  # the archive's files as the binlog archive recorded them
            store.binlogs.record(HOST, 'mysql-bin.%06d' % number, first_event_at=now - (31 - number) * day,
                                 last_event_at=now - (30 - number) * day, bytes=1, sha256='0' * 64, archived_at=now,
                                 path=os.path.join(dest, HOST, 'binlogs', 'mysql-bin.%06d' % number))

    run = run_backup_module(run_module, dest, hosts=(HOST,), databases=['tenant_001'], retention_window_days=7,
                            retention_count=1, retention_days=1)
    result = run.results[HOST]
    assert run.rc == 0 and result['recorded'] is True, run.output
    assert sorted(result['removed']) == sorted([old, older])
    for kept in (result['path'], recent, base, pinned, marked):
        assert os.path.isdir(kept), kept
    # The oldest backup left is the pinned one at mysql-bin.000002 (.keep): files before it go, if complete.
    assert result['removed_binlogs'] == [binlogs[0]]
    assert os.path.exists(cut_short) and all(os.path.exists(path) for path in binlogs[1:])
    with open_store(private_store) as store:
        after = dict((row['path'], row) for row in store.backups.list(HOST))
    assert after[old]['removed_at'] is not None and after[older]['removed_at'] is not None
    assert all(after[path]['removed_at'] is None for path in (recent, base, pinned, marked))
    with open_store(private_store) as store:  # the removed file is out of the catalog's chain, the others stay
        assert [row['file'] for row in store.binlogs.list(HOST)] == ['mysql-bin.%06d' % n for n in range(2, 10)]

    # Unpinned, and with a minimum of fulls: the window alone decides, the two newest stay anyway.
    with open_store(private_store) as store:
        store.backups.set_pinned(rows[pinned]['id'], False)
    os.unlink(os.path.join(marked, '.keep'))
    run = run_backup_module(run_module, dest, hosts=(HOST,), databases=['tenant_001'], retention_window_days=0,
                            retention_min_full=3)
    result = run.results[HOST]
    assert run.rc == 0, run.output
    assert sorted(result['removed']) == sorted([base, pinned, marked])
    assert os.path.isdir(recent), 'third newest: kept by the minimum'
    # The logical backups left have no binlog position (the dumps of analytics, which writes no binlog)
    # but the 2-day-old one at mysql-bin.000009: the files before it go.
    assert result['removed_binlogs'] == binlogs[1:8]


def test_retention_is_skipped_when_the_pins_cannot_be_read(fleet, run_module, tmp_path, monkeypatch):
    dest = tmp_path / 'backups'
    old = fake_backup(dest, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30), None)
    monkeypatch.setenv('DBFLEET_STORE_URL', 'mysql+pymysql://nobody@127.0.0.1:1/none')
    run = run_backup_module(run_module, dest, hosts=(HOST,), databases=['tenant_001'], retention_days=1)
    result = run.results[HOST]
    assert run.rc == 0 and result['removed'] == [] and os.path.isdir(old), run.output
    assert any('retention skipped for %s' % HOST in warning for warning in result['warnings'])
