"""`dbfleet archive run` as a real process: a --stop-never stream of the fleet's primary (a schema of the
test's own written, flushed, dropped; its own dump thread killed and the stream seen to come back with no
gap), and of a scratch mariadbd whose logs are purged while the archive is stopped (a gap reported)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pymysql
import pytest

from ansible_collections.dbfleet.mysql.plugins.module_utils.binlog_archive import (
    ArchiveBusy,
    detect_gaps,
    hold_archive,
    load_manifests,
)
from dbfleet.store import open_store
from devtools.fleet import Fleet
from tests.conftest import REPO
from tests.scratch_server import ARCHIVE_PASSWORD, ARCHIVE_USER, ScratchServer

pytestmark = pytest.mark.fleet
TIMEOUT = 120


def wait_for(what, check, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, 'waited %d s for %s' % (timeout, what)
        time.sleep(0.3)


class Streamer:
    """`dbfleet archive run` in the background, its output in a file."""

    def __init__(self, tmp_path: Path, host: str, defaults_text: str, store_url: str, tags: str | None = None):
        self.dest = tmp_path / 'backups'
        # --tags: the host is found in the store by its tags, as a unit streaming every primary does.
        self.selection = ['--tags', tags] if tags else ['--host', host]
        self.defaults = tmp_path / ('%s.cnf' % host)
        self.defaults.write_text(defaults_text)
        self.defaults.chmod(0o600)
        self.log = tmp_path / ('%s-stream.log' % host)
        self.host, self.store_url = host, store_url
        self.process: subprocess.Popen | None = None

    @property
    def directory(self) -> Path:
        return self.dest / self.host / 'binlogs'

    def start(self) -> 'Streamer':
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'runner_service.cli', 'archive', 'run', *self.selection, '--dest',
             str(self.dest), '--defaults-file', str(self.defaults), '--poll', '0.5', '--store', self.store_url],
            cwd=REPO, stdout=self.log.open('a'), stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, PYTHONPATH='%s:%s' % (REPO / 'collections', REPO)))
        return self

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        assert self.process.returncode == 0, self.output()
        # Nothing of it left: the stream's mariadb-binlog went with it.
        leftovers = subprocess.run(['pgrep', '-s', str(self.process.pid)], capture_output=True, text=True).stdout
        assert leftovers.strip() == ''

    def manifest(self, name: str) -> dict | None:
        path = self.directory / (name + '.json')
        return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def store_url(tmp_path):
    url = 'sqlite:///%s' % (tmp_path / 'store.db')
    subprocess.run([sys.executable, '-m', 'runner_service.cli', 'store', 'upgrade', '--store', url], cwd=REPO,
                   check=True, capture_output=True)
    return url


def gtid_pos(cursor) -> int:
    cursor.execute('SELECT @@gtid_binlog_pos')
    return dict((int(gtid.split('-')[0]), int(gtid.split('-')[2])) for gtid in cursor.fetchone()[0].split(','))[0]


def dump_threads(cursor) -> set[int]:
    cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%%' AND USER = %s",
                   (os.environ.get('USER') or 'root',))
    return {row[0] for row in cursor.fetchall()}


def test_the_primary_is_streamed_and_a_killed_stream_comes_back_without_a_gap(tmp_path, store_url):
    fleet = Fleet(base=(REPO / 'var' / 'fleet').resolve())
    try:
        admin = fleet.admin('primary')
    except pymysql.err.MySQLError as exc:
        pytest.skip('the local fleet is not running (python -m devtools.fleet start): %s' % exc)
    schema = 'archive_stream_%s' % uuid.uuid4().hex[:10]
    with open_store(store_url) as store:
        store.tags.add('primary', 'primary', who='test')  # what an inspection of the fleet records
    streamer = Streamer(tmp_path, 'primary', '[client]\nuser=%s\nsocket=%s\n' % (
        os.environ.get('USER') or 'root', fleet.instance('primary').socket), store_url, tags='primary')
    with contextlib.closing(admin), admin.cursor() as cursor:
        before = dump_threads(cursor)
        cursor.execute('SHOW BINARY LOGS')
        current = cursor.fetchall()[-1][0]
        streamer.start()
        try:
            wait_for('the stream of the current log', lambda: (streamer.directory / current).exists())
            ours = wait_for('our dump thread', lambda: dump_threads(cursor) - before)
            cursor.execute('CREATE DATABASE %s' % schema)
            cursor.execute('CREATE TABLE %s.t (id INT PRIMARY KEY)' % schema)
            cursor.execute('INSERT INTO %s.t VALUES (1), (2), (3)' % schema)
            written = gtid_pos(cursor)
            cursor.execute('SHOW BINARY LOGS')
            flushed = cursor.fetchall()[-1][0]
            cursor.execute('FLUSH BINARY LOGS')
            manifest = wait_for('the manifest of %s' % flushed, lambda: streamer.manifest(flushed))
            cursor.execute('SELECT @@datadir')
            on_server = Path(cursor.fetchone()[0], flushed).read_bytes()
            assert (streamer.directory / flushed).read_bytes() == on_server
            assert manifest['sha256'] == hashlib.sha256(on_server).hexdigest() and manifest['bytes'] == len(on_server)
            assert int(manifest['first_gtid'].split('-')[2]) <= written <= int(manifest['last_gtid'].split('-')[2])
            # The stream holds the directory: a pass (or a second stream) never writes beside it.
            with pytest.raises(ArchiveBusy, match='another archiver writes'):
                hold_archive(str(streamer.directory))

            # mariadb-binlog does not reconnect: the supervisor restarts it, and nothing is lost.
            for thread in ours:
                cursor.execute('KILL %d' % thread)
            wait_for('the stream to end and restart', lambda: 'the stream ended' in streamer.output()
                     and dump_threads(cursor) - before - ours)
            cursor.execute('INSERT INTO %s.t VALUES (4)' % schema)
            after_kill = gtid_pos(cursor)
            cursor.execute('SHOW BINARY LOGS')
            next_file = cursor.fetchall()[-1][0]
            cursor.execute('FLUSH BINARY LOGS')
            resumed = wait_for('the manifest of %s' % next_file, lambda: streamer.manifest(next_file))
            assert int(resumed['last_gtid'].split('-')[2]) >= after_kill
            assert (streamer.directory / next_file).read_bytes() == Path(
                fleet.instance('primary').datadir, next_file).read_bytes()
            manifests = [item for item in load_manifests(str(streamer.directory))
                         if item['file'] in (flushed, next_file)]
            assert detect_gaps(manifests) == []
            with open_store(store_url) as store:
                rows = {row['file']: row for row in store.binlogs.list('primary')}
                state = store.binlogs.state('primary')
            assert rows[flushed]['sha256'] == manifest['sha256'] and rows[next_file]['gap'] is None
            assert state['lag_seconds'] is not None and state['gaps'] == []
        finally:
            streamer.stop()
            cursor.execute('DROP DATABASE IF EXISTS %s' % schema)


def test_logs_purged_while_the_archive_was_stopped_are_a_gap(tmp_path, store_url):
    server = ScratchServer(tmp_path / 'scratch').start()
    defaults = '[client]\nuser=%s\npassword="%s"\nhost=127.0.0.1\nport=%d\nprotocol=tcp\n' % (
        ARCHIVE_USER, ARCHIVE_PASSWORD.replace('\\', '\\\\').replace('"', '\\"'), server.port)
    streamer = Streamer(tmp_path, 'scratch', defaults, store_url)
    try:
        server.execute('CREATE DATABASE t', 'CREATE TABLE t.r (id INT AUTO_INCREMENT PRIMARY KEY)',
                       'INSERT INTO t.r VALUES ()', 'FLUSH BINARY LOGS')
        streamer.start()
        wait_for('mysql-bin.000001 archived', lambda: streamer.manifest('mysql-bin.000001'))
        streamer.stop()
        for _ in range(2):
            server.execute('INSERT INTO t.r VALUES ()', 'FLUSH BINARY LOGS')
        # The server notices the stopped stream's dump thread is gone only when it next writes to it (the
        # events just written); until then it will not purge the log that thread was reading.
        wait_for('the dump thread gone', lambda: server.scalar(
            "SELECT COUNT(*) = 0 FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'"))
        server.purge_to('mysql-bin.000004')
        assert server.binlogs() == ['mysql-bin.000004']
        streamer.start()
        server.execute('INSERT INTO t.r VALUES ()', 'FLUSH BINARY LOGS')
        wait_for('mysql-bin.000004 archived', lambda: streamer.manifest('mysql-bin.000004'))

        def recorded():
            with open_store(store_url) as store:
                rows = {row['file']: row for row in store.binlogs.list('scratch')}
            return rows if 'mysql-bin.000004' in rows else None

        rows = wait_for('the store', recorded)
        gap = rows['mysql-bin.000004']['gap']
        assert gap['kind'] == 'purged' and gap['missing'] == ['mysql-bin.000002', 'mysql-bin.000003']
        assert ARCHIVE_PASSWORD not in streamer.output()
    finally:
        streamer.stop()
        server.stop()
