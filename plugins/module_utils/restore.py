# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restores of a dbfleet backup, for the mysql_restore module.

A restore takes a backup directory written by mysql_backup (manifest.json plus a logical dump or a
physical xbstream), brings it into a target server, replays the archived binary logs from the
backup's position up to a target instant or GTID, and verifies the result.

The target is a sandbox (a temporary mariadbd of the installed version on a fresh datadir in a
private temporary directory, loopback only, binary logging off, event scheduler off) or an existing
server reached by login options. Nothing a restore does goes to a binary log: the dump and the
replayed binlogs are loaded by the client with `SET SESSION sql_log_bin=0` as its init command (the
bug this fixes: a hand restore written to the restored server's binlog and replicated on), and a
server's databases are dropped before its dump is loaded over it, so that tables created after the
backup cannot stop the replay with `ERROR 1050 Table ... already exists`.

The dump streams from its decompressor straight into the client (no second copy on disk); only a
single-schema restore passes it through Python, to cut that schema's sections out of it. An archive
encrypted with age (mysql_backup's encrypt_recipients) is decrypted in the same stream
(`age -d -i IDENTITY archive | gzip -dc | client`): the identity, given as the module's no_log
`age_identity`, lives in a 0600 file of the restore's private directory while it runs.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import (
    AGE_SUFFIX,
    COMPRESSIONS,
    MANIFEST,
    BackupError,
    Compression,
    _tail,
    defaults_file_text,
    open_backup_stream,
    option_value,
    reader_commands,
    sha256_file,
)
from ansible_collections.dbfleet.mysql.plugins.module_utils.facts import SYSTEM_SCHEMAS

SANDBOX_READY_TIMEOUT = 300
SANDBOX_STOP_TIMEOUT = 120
ARCHIVE_NAME = re.compile(r'^(dump\.sql|backup\.xbstream)(\.gz|\.zst)?(\.age)?$')
# An age identity file: comment lines and at least one X25519 secret key (what age-keygen writes).
AGE_SECRET_KEY = re.compile(r'^AGE-SECRET-KEY-1[0-9A-Z]{58}$', re.M)
SCHEMA_NAME = re.compile(r'^[^`/\\\x00.]{1,64}$')
STOP_DATETIME = re.compile(r'^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(Z|\+00:00)?$')
SECTION = re.compile(rb'^-- Current Database: `((?:[^`]|``)+)`\s*$')
# What mariadb-dump writes for each object (checked against 10.11's output).
DUMP_OBJECTS = {
    'tables': re.compile(r'^-- Table structure for table `'),
    'views': re.compile(r'^-- Final view structure for view `'),
    'routines': re.compile(r'^CREATE (?:DEFINER=\S+ )?(?:AGGREGATE )?(?:PROCEDURE|FUNCTION) ', re.I),
    'triggers': re.compile(r'^/\*!50003 CREATE\*/ (?:/\*!50017 DEFINER=.*?\*/ )?/\*!50003 trigger ', re.I),
    'events': re.compile(r'^/\*!50106 CREATE\*/ .*?/\*!50106 EVENT ', re.I),
}
OBJECT_QUERIES = {
    'tables': "SELECT TABLE_SCHEMA, COUNT(*) FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'"
              " AND TABLE_SCHEMA IN %s GROUP BY 1",
    'views': 'SELECT TABLE_SCHEMA, COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN %s GROUP BY 1',
    'routines': 'SELECT ROUTINE_SCHEMA, COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN %s GROUP BY 1',
    'triggers': 'SELECT TRIGGER_SCHEMA, COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN %s GROUP BY 1',
    'events': 'SELECT EVENT_SCHEMA, COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN %s GROUP BY 1',
}


class RestoreError(Exception):
    """The restore failed or was refused; the message says why and what to do (never a password)."""


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def parse_stop_datetime(text):
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM:SS' (UTC, optionally with Z); RestoreError otherwise."""
    match = STOP_DATETIME.match((text or '').strip())
    if not match:
        raise RestoreError('stop_datetime must be a UTC time as YYYY-MM-DD HH:MM:SS (e.g. 2026-12-04 03:12:00), '
                           'got %r' % (text[:100] if isinstance(text, str) else text,))
    try:
        moment = datetime.datetime.strptime('%s %s' % match.group(1, 2), '%Y-%m-%d %H:%M:%S')
    except ValueError:
        raise RestoreError('stop_datetime %r is not a real date and time' % text[:100])
    return moment.replace(tzinfo=datetime.timezone.utc)


def parse_iso(text):
    try:
        return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


def quote_name(name):
    return '`%s`' % name.replace('`', '``')


# -- the backup ----------------------------------------------------------------------------

class BackupDir(object):
    """A backup directory and its manifest, checked before anything is changed."""

    def __init__(self, path, check_sha256=True):
        if not path or not os.path.isabs(path):
            raise RestoreError('backup must be the absolute path of a backup directory, got %r' % (path,))
        self.path = os.path.normpath(path)
        manifest_path = os.path.join(self.path, MANIFEST)
        if not os.path.isdir(self.path) or os.path.islink(self.path):
            raise RestoreError('backup %s is not a directory' % self.path)
        try:
            with open(manifest_path) as handle:
                manifest = json.load(handle)
        except FileNotFoundError:
            raise RestoreError('backup %s has no %s: it is not a backup written by dbfleet.mysql.mysql_backup (a '
                               '.partial directory is never one)' % (self.path, MANIFEST))
        except (OSError, ValueError) as exc:
            raise RestoreError('the manifest of backup %s is unreadable: %s' % (self.path, exc))
        if not isinstance(manifest, dict) or manifest.get('method') not in ('logical', 'physical'):
            raise RestoreError('the manifest of backup %s has no method logical or physical' % self.path)
        archive = manifest.get('archive')
        if not isinstance(archive, str) or not ARCHIVE_NAME.match(archive) or \
                (archive.startswith('dump') != (manifest['method'] == 'logical')):
            raise RestoreError('the manifest of backup %s names an unexpected archive %r' % (self.path, archive))
        self.encrypted = manifest.get('encrypted')
        if self.encrypted not in (None, 'age') or (self.encrypted == 'age') != archive.endswith(AGE_SUFFIX):
            raise RestoreError('the manifest of backup %s says encrypted %r for the archive %s: this version reads '
                               'age-encrypted archives (.age) and clear ones' % (self.path, self.encrypted, archive))
        if manifest.get('compress') not in COMPRESSIONS:
            raise RestoreError('the manifest of backup %s has an unknown compression %r'
                               % (self.path, manifest.get('compress')))
        self.manifest = manifest
        self.method = manifest['method']
        self.archive = os.path.join(self.path, archive)
        if not os.path.isfile(self.archive) or os.path.islink(self.archive):
            raise RestoreError('backup %s lacks its archive %s' % (self.path, archive))
        self.databases = [name for name in manifest.get('databases') or [] if isinstance(name, str)]
        self.started = parse_iso(manifest.get('started'))
        if check_sha256 and manifest.get('sha256') and sha256_file(self.archive) != manifest['sha256']:
            raise RestoreError('the archive %s does not match the sha256 of its manifest: the backup is damaged; '
                               'restore another one' % self.archive)

    @property
    def host_dir(self):
        """<dest>/<name>: a backup lives in <dest>/<name>/<day>/<time>-<method>/."""
        return os.path.dirname(os.path.dirname(self.path))


# -- processes -----------------------------------------------------------------------------

def _which(which, names, package):
    for name in names:
        path = which(name)
        if path:
            return path
    raise RestoreError('restores need %s on %s, which is not installed: install %s'
                       % (' or '.join(names), socket.gethostname(), package))


class Tools(object):
    """The programs a restore runs, found once."""

    def __init__(self, which, physical=False, sandbox=False, encrypted=False):
        self.client = _which(which, ('mariadb', 'mysql'), 'mariadb-client')
        self.age = _which(which, ('age',), 'age') if encrypted else None
        self.binlog = which('mariadb-binlog') or which('mysqlbinlog')
        self.which = which
        if sandbox:
            self.server = _which(which, ('mariadbd', 'mysqld'), 'mariadb-server')
            self.install_db = _which(which, ('mariadb-install-db', 'mysql_install_db'), 'mariadb-server')
        if physical:
            self.backup = _which(which, ('mariabackup', 'mariadb-backup'), 'mariadb-backup')
            self.mbstream = _which(which, ('mbstream',), 'mariadb-backup')

    def need_binlog(self):
        if not self.binlog:
            raise RestoreError('a point-in-time restore needs mariadb-binlog (or mysqlbinlog) on %s: install '
                               'mariadb-client' % socket.gethostname())
        return self.binlog


def _run(argv, what, env=None, stdin=None, cwd=None, secret=None, scratch=None, timeout=None):
    """Run a program to its end; RestoreError with the tail of its error output when it fails."""
    log = tempfile.NamedTemporaryFile(prefix='restore-', suffix='.log', dir=scratch, delete=False)
    try:
        with log:
            process = subprocess.run(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, timeout=timeout,
                                     close_fds=True, check=False)
        if process.returncode != 0:
            raise RestoreError('%s failed: %s exited with status %d: %s' % (
                what, os.path.basename(argv[0]), process.returncode, _tail(log.name, secret) or 'no output'))
    finally:
        os.unlink(log.name)


class Pipeline(object):
    """producer | [producer ...] | [python filter] | consumer, with each stage's exit status and error
    output. `producers` is a list of commands chained in order (age -d | gzip -dc), at least one."""

    def __init__(self, producers, consumer, scratch, filter_=None, env=None, secret=None, producer_stdin=None):
        self.producers = producers
        self.consumer_argv = consumer
        self.scratch, self.filter, self.env, self.secret = scratch, filter_, env, secret
        self.producer_stdin = producer_stdin
        self.bytes = 0

    def run(self, what):
        logs = [os.path.join(self.scratch, 'producer%d.log' % index) for index in range(len(self.producers))]
        consumer_log = os.path.join(self.scratch, 'consumer.log')
        failures, started = [], []
        try:
            previous = None
            for argv, log in zip(self.producers, logs):
                with open(log, 'wb') as stderr:
                    stdin = previous.stdout if previous is not None else (self.producer_stdin or subprocess.DEVNULL)
                    process = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr,
                                               env=self.env, close_fds=True)
                if previous is not None:
                    previous.stdout.close()   # the next stage holds it now: a dead reader stops the writer
                started.append(process)
                previous = process
            with open(consumer_log, 'wb') as cerr:
                if self.filter is None:
                    consumer = subprocess.Popen(self.consumer_argv, stdin=previous.stdout, stdout=cerr, stderr=cerr,
                                                env=self.env, close_fds=True)
                    previous.stdout.close()
                    pump = None
                else:
                    consumer = subprocess.Popen(self.consumer_argv, stdin=subprocess.PIPE, stdout=cerr, stderr=cerr,
                                                env=self.env, close_fds=True)
                    pump = threading.Thread(target=self._pump, args=(previous.stdout, consumer.stdin, failures))
                    pump.daemon = True
                    pump.start()
            started.append(consumer)
            consumer_rc = consumer.wait()
            if pump is not None:
                pump.join()
            producer_rcs = [process.wait() for process in started[:-1]]
        except BaseException:
            for process in started:
                if process.poll() is None:
                    process.kill()
                process.wait()
            raise
        # A producer that failed by itself (a wrong key makes age fail, then gzip on an empty stream) is
        # named; one killed by SIGPIPE only lost its reader. A failed consumer is named first, as the
        # restore's error (its SQL error), with the first producer that failed beside it.
        failed = ['%s exited with status %d: %s' % (os.path.basename(argv[0]), rc,
                                                    _tail(log, self.secret) or 'no output')
                  for argv, rc, log in zip(self.producers, producer_rcs, logs) if rc not in (0, -signal.SIGPIPE)]
        if consumer_rc != 0:
            raise RestoreError('%s failed: %s exited with status %d: %s%s' % (
                what, os.path.basename(self.consumer_argv[0]), consumer_rc,
                _tail(consumer_log, self.secret) or 'no output', '; reading it, %s' % failed[0] if failed else ''))
        if failed:
            raise RestoreError('%s failed: %s' % (what, failed[0]))
        if any(producer_rcs):
            argv, rc = next((argv, rc) for argv, rc in zip(self.producers, producer_rcs) if rc)
            raise RestoreError('%s failed: %s exited with status %d' % (what, os.path.basename(argv[0]), rc))
        if failures:
            raise RestoreError('%s failed: %s' % (what, failures[0]))

    def _pump(self, source, sink, failures):
        try:
            for chunk in self.filter(source):
                self.bytes += len(chunk)
                sink.write(chunk)
        except (OSError, ValueError) as exc:
            failures.append(exc)
        finally:
            try:
                sink.close()
            except OSError:
                pass
            source.close()


def schema_sections(schema):
    """A filter keeping the dump's header and the sections of one database (the dump has one or more
    sections per database, each starting with a `-- Current Database:` line)."""
    wanted = schema.encode('utf-8').replace(b'`', b'``')

    def keep(stream):
        keeping, buffered = True, []
        for line in stream:
            match = SECTION.match(line)
            if match:
                keeping = match.group(1) == wanted
            if keeping:
                buffered.append(line)
                if len(buffered) >= 256:
                    yield b''.join(buffered)
                    buffered = []
        if buffered:
            yield b''.join(buffered)
    return keep


def count_dump_objects(stream, schemas):
    """{schema: {tables, views, routines, triggers, events}} as the dump creates them."""
    counts = dict((schema, dict((kind, 0) for kind in DUMP_OBJECTS)) for schema in schemas)
    current = None
    for raw in stream:
        match = SECTION.match(raw)
        if match:
            current = match.group(1).replace(b'``', b'`').decode('utf-8', 'replace')
            continue
        if current not in counts or not raw[:1] in (b'-', b'C', b'/', b'c'):
            continue
        line = raw.decode('utf-8', 'replace')
        for kind, pattern in DUMP_OBJECTS.items():
            if pattern.match(line):
                counts[current][kind] += 1
                break
    return counts


# -- targets -------------------------------------------------------------------------------

def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def _os_user():
    import pwd
    return pwd.getpwuid(os.geteuid()).pw_name


class Sandbox(object):
    """A temporary mariadbd of the installed version: own datadir, socket and loopback port in a
    private temporary directory, binary logging off and the event scheduler stopped (OFF, not DISABLED,
    which would hide information_schema.EVENTS). Its root is the OS
    user running the module, by unix socket."""

    def __init__(self, tools, base=None):
        self.tools = tools
        self.home = tempfile.mkdtemp(prefix='dbfleet-restore-', dir=base)
        os.chmod(self.home, 0o700)
        self.datadir = os.path.join(self.home, 'data')
        self.socket = os.path.join(self.home, 'mysqld.sock')
        self.defaults_file = os.path.join(self.home, 'my.cnf')
        self.client_file = os.path.join(self.home, 'client.cnf')
        self.error_log = os.path.join(self.home, 'error.log')
        self.pid_file = os.path.join(self.home, 'mysqld.pid')
        # Its own temporary directory: mariadb-install-db run beside another (drills in lanes) in a shared
        # /tmp failed about one time in six ("Unknown table 'mysql.tmp_proxies_priv'").
        self.tmpdir = os.path.join(self.home, 'tmp')
        self.port = free_port()
        self.pid = None
        self.user = _os_user()

    def write_config(self):
        lines = ['# dbfleet.mysql.mysql_restore: a sandbox server for one restore', '[client-server]',
                 'socket = %s' % self.socket, 'port = %d' % self.port, '', '[mariadbd]',
                 'bind-address = 127.0.0.1', 'datadir = %s' % self.datadir, 'pid-file = %s' % self.pid_file,
                 'tmpdir = %s' % self.tmpdir,
                 'log-error = %s' % self.error_log, 'skip-log-bin', 'skip-name-resolve', 'skip-slave-start',
                 'event-scheduler = OFF', 'performance_schema = OFF', 'server-id = %d' % (4000 + os.getpid() % 4000),
                 'character-set-server = utf8mb4', 'collation-server = utf8mb4_general_ci',
                 'innodb_buffer_pool_size = 256M', 'innodb_log_file_size = 256M',
                 'innodb_flush_log_at_trx_commit = 2', 'max_allowed_packet = 1G', 'table_open_cache_instances = 1']
        if not os.path.isdir(self.tmpdir):
            os.mkdir(self.tmpdir, 0o700)
        with open(self.defaults_file, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        with open(self.client_file, 'w') as handle:
            handle.write('[client]\nsocket=%s\nuser=%s\nprotocol=socket\n'
                         % (option_value(self.socket), option_value(self.user)))

    def initialize(self, scratch):
        os.mkdir(self.datadir, 0o750)
        command = [self.tools.install_db, '--defaults-file=%s' % self.defaults_file, '--user=%s' % self.user,
                   '--datadir=%s' % self.datadir, '--auth-root-authentication-method=socket', '--skip-test-db']
        if self.user != 'root':
            command.append('--auth-root-socket-user=%s' % self.user)
        _run(command, 'initialising the sandbox datadir', scratch=scratch, timeout=600)

    def start(self):
        """Start mariadbd detached (it outlives the module with keep_sandbox) and wait until it answers."""
        command = [self.tools.server, '--defaults-file=%s' % self.defaults_file, '--user=%s' % self.user]
        result = subprocess.run(['/bin/sh', '-c', '"$@" </dev/null >>"$DBFLEET_ERROR_LOG" 2>&1 & echo $!', 'sh']
                                + command, env=dict(os.environ, DBFLEET_ERROR_LOG=self.error_log),
                                capture_output=True, text=True, start_new_session=True, check=False)
        if result.returncode != 0 or not result.stdout.strip().isdigit():
            raise RestoreError('could not start the sandbox server: %s' % result.stderr.strip()[-500:])
        self.pid = int(result.stdout.strip())
        deadline = time.monotonic() + SANDBOX_READY_TIMEOUT
        while True:
            if os.path.exists(self.socket) and self._answers():
                return
            if not _alive(self.pid):
                raise RestoreError('the sandbox server exited while starting: %s (see %s)'
                                   % (self._last_error(), self.error_log))
            if time.monotonic() > deadline:
                raise RestoreError('the sandbox server did not answer within %d s: %s'
                                   % (SANDBOX_READY_TIMEOUT, self._last_error()))
            time.sleep(0.1)

    def _answers(self):
        try:
            subprocess.run([self.tools.client, '--defaults-file=%s' % self.client_file, '-e', 'SELECT 1'],
                           capture_output=True, timeout=10, check=True)
            return True
        except (subprocess.SubprocessError, OSError):
            return False

    def _last_error(self):
        try:
            with open(self.error_log, errors='replace') as handle:
                lines = handle.read()[-20000:].splitlines()
        except OSError:
            return 'no error log'
        errors = [line for line in lines if '[ERROR]' in line]
        return (errors or lines or ['error log is empty'])[-1].strip()

    def login(self):
        return dict(login_unix_socket=self.socket, login_user=self.user, login_password=None, config_file=None,
                    connect_timeout=30)

    def stop(self):
        if self.pid is not None and _alive(self.pid):
            try:
                os.kill(self.pid, signal.SIGTERM)
            except OSError:
                pass
            deadline = time.monotonic() + SANDBOX_STOP_TIMEOUT
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(self.pid):
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)

    def remove(self):
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def describe(self):
        return dict(socket=self.socket, port=self.port, datadir=self.datadir, defaults_file=self.defaults_file,
                    client_defaults_file=self.client_file, pid=self.pid, error_log=self.error_log,
                    stop='kill %d; rm -rf %s' % (self.pid or 0, self.home))


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            state = handle.read().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
    return state not in ('Z', 'X')


class ServerState(object):
    """What a restore over an existing server must know before it changes anything."""

    def __init__(self, connection, dialect_version):
        with connection.cursor() as cursor:
            cursor.execute('SELECT @@log_bin AS log_bin, @@version AS version')
            row = cursor.fetchone()
            self.log_bin = bool(int(row['log_bin'] or 0))
            self.version = row['version']
            cursor.execute('SHOW DATABASES')
            self.databases = sorted(list(item.values())[0] for item in cursor.fetchall())
            self.replicas = []
            try:
                cursor.execute(dialect_version.replica_hosts)
                self.replicas = ['%s:%s (server_id %s)' % (
                    item.get('Host') or '?', item.get('Port') or '?', item.get('Server_id') or item.get('Server_Id'))
                    for item in cursor.fetchall()]
            except Exception:  # noqa: BLE001 - an account without the privilege: the processlist still tells
                pass
            cursor.execute('SELECT HOST, COMMAND FROM information_schema.PROCESSLIST WHERE COMMAND IN %s',
                           (tuple(dialect_version.binlog_dump_commands),))
            for item in cursor.fetchall():
                described = 'a replica connected from %s' % (item['HOST'] or '?').rsplit(':', 1)[0]
                if not any(described.split(' from ')[1] in replica for replica in self.replicas):
                    self.replicas.append(described)


# -- verification --------------------------------------------------------------------------

def object_counts(connection, schemas):
    counts = dict((schema, dict((kind, 0) for kind in OBJECT_QUERIES)) for schema in schemas)
    if not schemas:
        return counts
    with connection.cursor() as cursor:
        for kind, query in OBJECT_QUERIES.items():
            cursor.execute(query, (tuple(schemas),))
            for row in cursor.fetchall():
                schema, number = list(row.values())
                counts[schema][kind] = int(number)
    return counts


def base_tables(connection, schemas):
    if not schemas:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES "
                       "WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN %s ORDER BY 1, 2", (tuple(schemas),))
        return [(row['s'], row['t']) for row in cursor.fetchall()]


def check_tables(connection, tables):
    """(number checked, [problems]) from CHECK TABLE of every table."""
    problems = []
    with connection.cursor() as cursor:
        for start in range(0, len(tables), 50):
            batch = tables[start:start + 50]
            cursor.execute('CHECK TABLE %s' % ', '.join('%s.%s' % (quote_name(s), quote_name(t)) for s, t in batch))
            for row in cursor.fetchall():
                kind, text = (row.get('Msg_type') or '').lower(), row.get('Msg_text') or ''
                if kind == 'error' or (kind == 'status' and text.upper() != 'OK'):
                    problems.append('%s: %s' % (row.get('Table'), text))
    return len(tables), problems


def table_figures(connection, tables):
    """{'schema.table': [rows, checksum]}."""
    figures = {}
    with connection.cursor() as cursor:
        for schema, table in tables:
            name = '%s.%s' % (quote_name(schema), quote_name(table))
            cursor.execute('SELECT COUNT(*) AS n FROM %s' % name)
            rows = int(cursor.fetchone()['n'])
            cursor.execute('CHECKSUM TABLE %s' % name)
            figures['%s.%s' % (schema, table)] = [rows, cursor.fetchone()['Checksum']]
    return figures


def gtid_covers(restored, source):
    """Whether the restored GTID position includes everything of the source's (per domain)."""
    mine = {}
    for part in (restored or '').split(','):
        if part.strip():
            domain, _server, sequence = part.strip().split('-')
            mine[int(domain)] = int(sequence)
    for part in (source or '').split(','):
        if part.strip():
            domain, _server, sequence = part.strip().split('-')
            if mine.get(int(domain), -1) < int(sequence):
                return False
    return True


def merge_gtid(base, last):
    """The GTID position after replaying up to transaction `last` ('D-S-N') from position `base`."""
    positions = {}
    for part in (base or '').split(','):
        if part.strip():
            positions[part.strip().split('-')[0]] = part.strip()
    if last:
        positions[last.split('-')[0]] = last
    return ','.join(positions[key] for key in sorted(positions, key=int)) or None


def differences(expected, found):
    lines = []
    for schema in sorted(expected):
        for kind in sorted(expected[schema]):
            want, have = expected[schema][kind], found.get(schema, {}).get(kind, 0)
            if want != have:
                lines.append('%s: %d %s expected, %d restored' % (schema, want, kind, have))
    return lines


def restored_schemas(backup, schema):
    if schema:
        return [schema]
    return [name for name in backup.databases if name not in SYSTEM_SCHEMAS]


# -- one restore ---------------------------------------------------------------------------

class Restore(object):
    """One restore: plan (everything checked, nothing changed), then run. `connect(params)` opens a
    PyMySQL connection from login options; `which(name)` finds a program."""

    def __init__(self, params, connect, which):
        self.params = params
        self.connect = connect
        self.seconds = {}
        self.result = dict(changed=False, warnings=[])
        self.backup = BackupDir(params.get('backup'), check_sha256=params.get('check_sha256', True))
        self.sandboxed = params.get('target') == 'sandbox'
        if self.backup.method == 'physical' and not self.sandboxed:
            raise RestoreError('a physical backup restores into a sandbox only (target: sandbox): it replaces a whole '
                               'datadir, which this module never does to a running server')
        self.schema = params.get('schema')
        if self.schema is not None:
            if self.backup.method != 'logical':
                raise RestoreError('schema restores one database of a logical backup; %s is physical: restore it '
                                   'whole into a sandbox and dump the database from there' % self.backup.path)
            if not SCHEMA_NAME.match(self.schema) or self.schema in SYSTEM_SCHEMAS:
                raise RestoreError('schema %r is not a database name this module restores' % (self.schema[:100],))
            if self.schema not in self.backup.databases:
                raise RestoreError('backup %s has no database %s (it has: %s)' % (
                    self.backup.path, self.schema, ', '.join(self.backup.databases) or 'none'))
        self.stop_datetime = parse_stop_datetime(params['stop_datetime']) if params.get('stop_datetime') else None
        self.stop_gtid = params.get('stop_gtid')
        self.schemas = restored_schemas(self.backup, self.schema)
        self.identity, self.identity_file = params.get('age_identity'), None
        if self.backup.encrypted:
            recipients = ', '.join(str(key)[:70] for key in (self.backup.manifest.get('recipients') or [])[:5])
            if not self.identity:
                raise RestoreError('backup %s is encrypted with age (to %s): give age_identity, the private key of one '
                                   'of its recipients (a dbfleet age_identity credential on the restore template)'
                                   % (self.backup.path, recipients or 'recipients the manifest does not name'))
            if not AGE_SECRET_KEY.search(self.identity):
                raise RestoreError('age_identity is not an age identity: it holds no AGE-SECRET-KEY-1... line (the '
                                   'file age-keygen writes)')
        self.tools = Tools(which, physical=self.backup.method == 'physical', sandbox=self.sandboxed,
                           encrypted=bool(self.backup.encrypted))
        self.replay = None
        if self.stop_datetime is not None or self.stop_gtid:
            self._plan_replay()

    def _plan_replay(self):
        from ansible_collections.dbfleet.mysql.plugins.module_utils.binlogs import ChainError, plan_replay
        manifest = self.backup.manifest
        if not manifest.get('binlog_file') or manifest.get('binlog_position') is None:
            raise RestoreError('backup %s has no binlog position (its server wrote no binary log, or the account '
                               'could not read it): it cannot start a point-in-time recovery; restore it as it is '
                               '(no stop_datetime / stop_gtid)' % self.backup.path)
        binlog_dir = self.params.get('binlog_dir') or os.path.join(self.backup.host_dir, 'binlogs')
        if not os.path.isabs(binlog_dir):
            raise RestoreError('binlog_dir must be an absolute path, got %r' % binlog_dir[:200])
        self.tools.need_binlog()
        try:
            self.replay = plan_replay(os.path.normpath(binlog_dir), manifest['binlog_file'],
                                      int(manifest['binlog_position']), stop_datetime=self.stop_datetime,
                                      stop_gtid=self.stop_gtid, backup_gtid=manifest.get('gtid'),
                                      backup_started=self.backup.started)
        except (ChainError, ValueError) as exc:
            raise RestoreError('point-in-time recovery of %s refused: %s' % (self.backup.path, exc))
        self.result['warnings'].extend(self.replay.warnings)

    # -- what it would do -------------------------------------------------------------------

    def describe_plan(self, target):
        steps = []
        if self.sandboxed:
            steps.append('start a sandbox mariadbd (binary logging off) in a temporary directory')
        if self.backup.method == 'logical':
            if not self.sandboxed:
                steps.append('drop the databases %s on %s' % (', '.join(self.schemas), target))
            steps.append('load %s%s with sql_log_bin=0' % (
                os.path.basename(self.backup.archive), ' (database %s only)' % self.schema if self.schema else ''))
        else:
            steps.append('extract, prepare and copy back %s into the sandbox\'s datadir'
                         % os.path.basename(self.backup.archive))
        if self.replay is not None:
            steps.append('replay %s from position %d%s with sql_log_bin=0, up to %s' % (
                ', '.join(item.name for item in self.replay.files) or 'nothing', self.replay.start_position,
                ' (database %s only)' % self.schema if self.schema else '',
                self.replay.last.gtid if self.replay.last else 'the backup\'s own position'))
        return steps

    def refuse_unless_forced(self, state, target):
        """An existing server: refuse without force when it has a binlog, replicas or the databases."""
        reasons = []
        if state.log_bin:
            reasons.append('it writes a binary log (the restore itself is kept out of it with sql_log_bin=0, so its '
                           'replicas and binlog archive will not have what the restore changed)')
        if state.replicas:
            reasons.append('it has replicas (%s), which will diverge from it' % ', '.join(state.replicas[:10]))
        present = [name for name in self.schemas if name in state.databases]
        if present:
            reasons.append('it has the databases %s, which will be dropped and replaced' % ', '.join(present))
        if reasons and not self.params.get('force'):
            raise RestoreError('refusing to restore over %s without force: %s. With force: true this restore would %s'
                               % (target, '; '.join(reasons), '; '.join(self.describe_plan(target))))

    # -- doing it ----------------------------------------------------------------------------

    def _phase(self, name, started):
        self.seconds[name] = round(self.seconds.get(name, 0) + time.monotonic() - started, 3)

    def run(self, login, target, private_dir):
        """Restore into the server of `login` (None: a sandbox). Returns the result dict."""
        from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import PrivateDir
        self.result.update(backup=dict(path=self.backup.path, method=self.backup.method,
                                       started=self.backup.manifest.get('started'),
                                       binlog_file=self.backup.manifest.get('binlog_file'),
                                       binlog_position=self.backup.manifest.get('binlog_position'),
                                       gtid=self.backup.manifest.get('gtid'), bytes=self.backup.manifest.get('bytes')),
                           schemas=self.schemas)
        sandbox = None
        keep = bool(self.params.get('keep_sandbox'))
        with PrivateDir() as scratch:
            if self.backup.encrypted:
                self.identity_file = scratch.write_secret('age_identity', self.identity.strip() + '\n')
            try:
                if self.sandboxed:
                    clock = time.monotonic()
                    sandbox = Sandbox(self.tools, base=private_dir)
                    sandbox.write_config()
                    if self.backup.method == 'logical':
                        sandbox.initialize(scratch.path)
                    self._phase('sandbox', clock)
                    if self.backup.method == 'physical':
                        self._physical(sandbox, scratch.path)
                    clock = time.monotonic()
                    sandbox.start()
                    self._phase('sandbox', clock)
                    login = sandbox.login()
                    defaults = sandbox.client_file
                    target = 'the sandbox (socket %s)' % sandbox.socket
                else:
                    defaults = scratch.write_secret('client.cnf', defaults_file_text(login))
                self.result['changed'] = True
                if self.backup.method == 'logical':
                    self._logical(login, defaults, scratch.path, drop=not self.sandboxed)
                if self.replay is not None:
                    self._replay(defaults, scratch.path, login)
                self._verify(login)
            except BaseException:
                if sandbox is not None and not keep:
                    sandbox.remove()
                    sandbox = None
                raise
            finally:
                if sandbox is not None and keep:
                    self.result['sandbox'] = sandbox.describe()
        if sandbox is not None and not keep:
            clock = time.monotonic()
            sandbox.remove()
            self._phase('cleanup', clock)
        self.result['target'] = target
        self.result['seconds'] = self.seconds
        return self.result

    def _logical(self, login, defaults, scratch, drop):
        clock = time.monotonic()
        if drop:
            connection = self.connect(login)
            try:
                with connection.cursor() as cursor:
                    cursor.execute('SET SESSION sql_log_bin = 0')
                    for name in self.schemas:
                        cursor.execute('DROP DATABASE IF EXISTS %s' % quote_name(name))
            finally:
                connection.close()
            self.result['dropped'] = list(self.schemas)
        client = [self.tools.client, '--defaults-file=%s' % defaults, '--init-command=SET SESSION sql_log_bin=0',
                  '--max-allowed-packet=1G']
        pipeline = Pipeline(self._reader(), client, scratch, filter_=schema_sections(self.schema) if self.schema else None,
                            secret=login.get('login_password'))
        pipeline.run('loading %s' % self.backup.archive)
        self.result['loaded'] = dict(archive=self.backup.archive, archive_bytes=os.path.getsize(self.backup.archive),
                                     sql_bytes=pipeline.bytes if self.schema else
                                     self.backup.manifest.get('uncompressed_bytes'))
        self._phase('load', clock)

    def _reader(self):
        """The commands whose output is the archive's content: [age -d,] the decompressor, or cat."""
        compression = Compression.resolve(self.backup.manifest['compress'], self.tools.which)
        try:
            commands = reader_commands(self.backup.archive, compression, self.backup.encrypted, self.identity_file,
                                       age=self.tools.age)
        except BackupError as exc:
            raise RestoreError(str(exc))
        return commands or [['cat', self.backup.archive]]

    def _physical(self, sandbox, scratch):
        clock = time.monotonic()
        extracted = os.path.join(scratch, 'backup')
        os.mkdir(extracted, 0o700)
        Pipeline(self._reader(), [self.tools.mbstream, '-x', '-C', extracted], scratch).run(
            'extracting %s' % self.backup.archive)
        self._phase('extract', clock)
        clock = time.monotonic()
        _run([self.tools.backup, '--prepare', '--target-dir=%s' % extracted], 'mariabackup --prepare',
             scratch=scratch)
        self._phase('prepare', clock)
        clock = time.monotonic()
        os.mkdir(sandbox.datadir, 0o750)
        _run([self.tools.backup, '--defaults-file=%s' % sandbox.defaults_file, '--copy-back',
              '--target-dir=%s' % extracted, '--datadir=%s' % sandbox.datadir], 'mariabackup --copy-back',
             scratch=scratch)
        shutil.rmtree(extracted, ignore_errors=True)
        self._phase('copy_back', clock)
        self.result['loaded'] = dict(archive=self.backup.archive, archive_bytes=os.path.getsize(self.backup.archive),
                                     datadir_bytes=_tree_bytes(sandbox.datadir))

    def _replay(self, defaults, scratch, login):
        clock = time.monotonic()
        replay = self.replay
        outcome = replay.as_result()
        if replay.last is not None:
            producer = [self.tools.binlog, '--start-position=%d' % replay.start_position]
            if replay.stop_position is not None:
                producer.append('--stop-position=%d' % replay.stop_position)
            if self.schema:
                producer.append('--database=%s' % self.schema)
            producer += [item.path for item in replay.files]
            client = [self.tools.client, '--defaults-file=%s' % defaults, '--binary-mode',
                      '--init-command=SET SESSION sql_log_bin=0', '--max-allowed-packet=1G']
            # mariadb-binlog prints event times in the local time zone: UTC, like everything else here.
            Pipeline([producer], client, scratch, env=dict(os.environ, TZ='UTC'),
                     secret=login.get('login_password')).run('replaying the binary logs')
        else:
            outcome['files'] = []
        self.result['replayed'] = outcome
        self.result['stop_point'] = dict(gtid=merge_gtid(self.backup.manifest.get('gtid'),
                                                         replay.last.gtid if replay.last else None),
                                         last_event_at=outcome['stop_event_at'],
                                         requested=self.params.get('stop_datetime') or self.stop_gtid)
        self._phase('replay', clock)

    def _restored_gtid(self):
        if self.replay is not None:
            return self.result['stop_point']['gtid']
        return self.backup.manifest.get('gtid')

    def _verify(self, login):
        clock = time.monotonic()
        verification = dict(compared=[])
        problems = []
        connection = self.connect(login)
        try:
            tables = base_tables(connection, self.schemas)
            checked, errors = check_tables(connection, tables)
            verification['check_table'] = dict(tables=checked, errors=errors)
            problems.extend(errors)
            restored = object_counts(connection, self.schemas)
            verification['objects'] = dict(restored=restored)
            mine = table_figures(connection, tables) if self.params.get('checksum_tables', True) else None
            if mine is not None:
                verification['tables'] = mine
            source, source_gtid = self._source()
            restored_gtid = self._restored_gtid()
            same_instant = False
            if source is not None:
                try:
                    with source.cursor() as cursor:
                        cursor.execute('SELECT @@gtid_binlog_pos AS g')
                        source_gtid = cursor.fetchone()['g']
                    same_instant = bool(restored_gtid) and gtid_covers(restored_gtid, source_gtid)
                    expected = object_counts(source, self.schemas)
                    verification['objects'].update(reference='source', expected=expected,
                                                   differences=differences(expected, restored),
                                                   binding=same_instant)
                    verification['compared'].append('object counts per schema vs the source (%s)'
                                                    % ('at the restored instant' if same_instant else
                                                       'informational: the source has moved on to %s, the restore '
                                                       'is at %s' % (source_gtid, restored_gtid)))
                    if same_instant:
                        problems.extend(verification['objects']['differences'])
                        theirs = table_figures(source, base_tables(source, self.schemas))
                        mine = mine if mine is not None else table_figures(connection, tables)
                        mismatched = sorted(name for name in set(theirs) | set(mine) if theirs.get(name) != mine.get(name))
                        verification['data'] = dict(tables=len(mine), mismatched=mismatched, source_gtid=source_gtid)
                        verification['compared'].append('row counts and CHECKSUM TABLE of %d tables vs the source'
                                                        % len(mine))
                        problems.extend('%s: rows/checksum %s restored, %s on the source'
                                        % (name, mine.get(name), theirs.get(name)) for name in mismatched)
                    else:
                        verification['data'] = dict(
                            tables=0, skipped='the source (at %s) is past the restored instant (%s): row counts and '
                                              'checksums would differ by design' % (source_gtid, restored_gtid))
                finally:
                    source.close()
            else:
                expected = self._dump_objects() if self.backup.method == 'logical' else None
                if expected is not None:
                    binding = self.replay is None or self.replay.last is None
                    verification['objects'].update(reference='dump', expected=expected,
                                                   differences=differences(expected, restored), binding=binding)
                    verification['compared'].append('object counts per schema vs the dump%s' % (
                        '' if binding else ' (informational: binlogs were replayed after it)'))
                    if binding:
                        problems.extend(verification['objects']['differences'])
                verification['data'] = dict(tables=0, skipped=source_gtid or 'no source given: row counts and '
                                                                             'checksums were not compared')
            verification['compared'].insert(0, 'CHECK TABLE of %d tables' % checked)
        finally:
            connection.close()
        verification['ok'] = not problems
        verification['problems'] = problems[:50]
        self.result['verification'] = verification
        self._phase('verify', clock)

    def _source(self):
        """(connection to the source, None) or (None, why it is not compared)."""
        source = self.params.get('source')
        if not source:
            return None, None
        try:
            return self.connect(source), None
        except Exception as exc:  # noqa: BLE001 - unreachable source: compare with the dump instead
            self.result['warnings'].append('the source is not reachable (%s): compared with the dump instead' % exc)
            return None, 'the source was not reachable: row counts and checksums were not compared'

    def _dump_objects(self):
        """Objects per schema counted in the dump itself (decrypted and decompressed as it is read)."""
        try:
            with open_backup_stream(self.backup.path, self.identity_file) as stream:
                return count_dump_objects(stream, self.schemas)
        except BackupError as exc:
            raise RestoreError('reading the dump of %s to verify the restore failed: %s' % (self.backup.path, exc))


def _tree_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total
