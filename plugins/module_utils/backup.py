# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of one MySQL/MariaDB server, for the mysql_backup module.

A backup is a directory `<dest>/<name>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>-<method>/` holding one
archive (`dump.sql[.gz|.zst]` or `backup.xbstream[.gz|.zst]`) and `manifest.json`. It is built
under a hidden temporary name in the same date directory and renamed into place only once the
archive is complete, verified and described by its manifest: a directory with a backup's name
is always a whole backup, and retention and restores never see anything else.

The dump tool's output goes through Python on its way to the compressor (so the dump's header
and footer, where the binlog position is written, can be read without a second pass), and the
compressor's output is written by Python (so the archive's SHA-256 and size come for free and a
full disk is an ENOSPC this module can name). Credentials reach the tool in a 0600 option file
in a private temporary directory, never on a command line or in the environment.

Differences between tools (mariadb-dump / mysqldump 5.7 / 8.0.26+, mariabackup / xtrabackup)
are in `Tool`; everything else is the same for every flavour.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib

from ansible_collections.dbfleet.mysql.plugins.module_utils.backup_attempt import ATTEMPT, LOCK, Attempt, work_dir_name
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup_retention import (
    BINLOG_DIR,
    RetentionPolicy,
    expired_binlogs,
    oldest_position,
    remove_binlogs,
    select_expired,
)
from ansible_collections.dbfleet.mysql.plugins.module_utils.command_resolver import ServerVersion
from ansible_collections.dbfleet.mysql.plugins.module_utils.facts import SYSTEM_SCHEMAS
from ansible_collections.dbfleet.mysql.plugins.module_utils.mysql import _config_file_path, redact

METHODS = ('logical', 'physical')
COMPRESSIONS = ('gzip', 'zstd', 'none')
MANIFEST = 'manifest.json'
MANIFEST_VERSION = 1
ARCHIVE_BASENAMES = {'logical': 'dump.sql', 'physical': 'backup.xbstream'}
CHUNK = 1024 * 1024
HEAD_BYTES = 64 * 1024       # the dump header (where the binlog file and position are) fits in far less
TAIL_BYTES = 64 * 1024       # the footer: MariaDB 10.11+ writes the GTID position at the end of the dump
STDERR_TAIL_CHARS = 1500
TIMESTAMP_FORMAT = '%Y%m%dT%H%M%SZ'

_DATE_DIR = re.compile(r'^\d{4}-\d{2}-\d{2}$')
_BACKUP_DIR = re.compile(r'^(\d{8}T\d{6}Z)-(logical|physical)(?:-(\d+))?$')


class BackupError(Exception):
    """The backup failed for a reason the message states (never with a password in it)."""


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


# -- compression ---------------------------------------------------------------------------

class Compression(object):
    """A compressor as a pair of commands: output to stdout, and back."""

    _SPECS = {
        'gzip': ('.gz', 'gzip', ['-c'], ['-dc'], 'gzip'),
        'zstd': ('.zst', 'zstd', ['-q', '-c'], ['-q', '-dc'], 'zstd'),
        'none': ('', None, None, None, None),
    }

    def __init__(self, name, binary=None):
        self.name = name
        self.suffix, self._compress_args, self._decompress_args, self.package = (
            self._SPECS[name][0], self._SPECS[name][2], self._SPECS[name][3], self._SPECS[name][4])
        self.binary = binary

    @classmethod
    def resolve(cls, name, which):
        """The compressor called `name`; BackupError naming the package when its binary is missing."""
        if name not in cls._SPECS:
            raise BackupError('compress must be one of %s, got %r' % (', '.join(COMPRESSIONS), name))
        program = cls._SPECS[name][1]
        if program is None:
            return cls(name)
        binary = which(program)
        if not binary:
            raise BackupError('compress=%s needs the %s program on %s, which is not installed: install the %s '
                              'package, or choose compress=gzip or none'
                              % (name, program, socket.gethostname(), cls._SPECS[name][4]))
        return cls(name, binary)

    @property
    def compress_command(self):
        return [self.binary] + self._compress_args if self.binary else None

    def decompress_command(self, path):
        return [self.binary] + self._decompress_args + [path] if self.binary else None


# -- encryption and pace --------------------------------------------------------------------

# An age X25519 recipient: 'age1' and 58 bech32 characters (the public key); nothing else is taken,
# so a value can never be an option or a file name on age's command line.
AGE_RECIPIENT = re.compile(r'^age1[02-9ac-hj-np-z]{58}$')
AGE_SUFFIX = '.age'
AGE_HEADER = b'age-encryption.org/v1\n'


class Encryption(object):
    """`age -r KEY ...`: whoever holds the archive without the private key reads nothing. Only the
    public keys reach the host writing the backup, so a worker writes backups it cannot read."""

    name = 'age'

    def __init__(self, binary, recipients):
        self.binary = binary
        self.recipients = list(recipients)

    @classmethod
    def resolve(cls, recipients, which):
        """None without recipients; BackupError for a recipient that is not an age public key or a missing age."""
        if not recipients:
            return None
        for recipient in recipients:
            if not isinstance(recipient, str) or not AGE_RECIPIENT.match(recipient):
                raise BackupError('encrypt_recipients must be age public keys (age1 and 58 letters and digits, as '
                                  'age-keygen -y prints them), got %r' % (str(recipient)[:80],))
        binary = which('age')
        if not binary:
            raise BackupError('encrypt_recipients needs the age program on %s, which is not installed: install the '
                              'age package' % socket.gethostname())
        return cls(binary, recipients)

    @property
    def encrypt_command(self):
        command = [self.binary]
        for recipient in self.recipients:
            command += ['-r', recipient]
        return command


def check_age_header(path, recipients):
    """What can be checked of an age file without its private key: the version line, one X25519
    stanza per recipient, and the header's end (its MAC line). BackupError saying what is wrong."""
    with open(path, 'rb') as handle:
        head = handle.read(64 * 1024)
    if not head.startswith(AGE_HEADER):
        raise BackupError('verification failed: %s is not an age file (its first line is not %r)'
                          % (path, AGE_HEADER.decode().strip()))
    lines = head.split(b'\n')
    stanzas = [line for line in lines if line.startswith(b'-> X25519 ')]
    if not any(line.startswith(b'--- ') for line in lines):
        raise BackupError('verification failed: the age header of %s has no end (no "---" line)' % path)
    if len(stanzas) != len(recipients):
        raise BackupError('verification failed: %s is encrypted to %d recipient(s), the backup asked for %d'
                          % (path, len(stanzas), len(recipients)))


class Throttle(object):
    """Paces a stream to `bytes_per_second`: after each chunk, sleeps until the bytes passed so far
    are due. `clock` and `sleep` are injectable (tests pace a stream without waiting for it)."""

    def __init__(self, bytes_per_second, clock=time.monotonic, sleep=time.sleep):
        if bytes_per_second <= 0:
            raise ValueError('a throttle needs a positive rate')
        self.rate = float(bytes_per_second)
        self._clock = clock
        self._sleep = sleep
        self.started = None
        self.bytes = 0
        self.slept = 0.0

    def passed(self, count):
        now = self._clock()
        if self.started is None:
            self.started = now
        self.bytes += count
        ahead = self.started + self.bytes / self.rate - now
        if ahead > 0:
            self._sleep(ahead)
            self.slept += ahead


MIB = 1024 * 1024


def throttle_for(mb_per_second):
    """The Throttle of a logical dump's stream (the uncompressed dump), or None for no limit."""
    return Throttle(mb_per_second * MIB) if mb_per_second else None


# -- dump and backup tools -----------------------------------------------------------------

TOOL_CANDIDATES = {
    'logical': ('mariadb-dump', 'mysqldump'),
    'physical': ('mariabackup', 'mariadb-backup', 'xtrabackup'),
}
TOOL_PACKAGES = {
    'logical': 'mariadb-client (mariadb-dump) or mysql-client (mysqldump)',
    'physical': 'mariadb-backup (MariaDB) or percona-xtrabackup (MySQL, Percona)',
}
# 'mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB', 'mariadb-dump from 11.4.2-MariaDB, client 10.19',
# 'mariabackup based on MariaDB server 10.11.6-MariaDB', 'xtrabackup version 8.0.35-30 based on ...',
# 'mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)'.
_TOOL_VERSION = (re.compile(r'\b(?:Distrib|from|server|version)\s+(\d+\.\d+\.\d+[^\s,]*)', re.I),
                 re.compile(r'\bVer\s+(\d+\.\d+\.\d+[^\s,]*)'))


def parse_tool_version(text):
    """(version string, flavour 'mariadb' | 'mysql') from a tool's --version output."""
    for pattern in _TOOL_VERSION:
        match = pattern.search(text or '')
        if match:
            version = match.group(1)
            return version, ('mariadb' if 'mariadb' in (text or '').lower() else 'mysql')
    return None, ('mariadb' if 'mariadb' in (text or '').lower() else 'mysql')


class Tool(object):
    """One installed dump or backup program, its version, and the arguments it needs."""

    def __init__(self, name, path, version_text):
        self.name = name
        self.path = path
        self.version_text = (version_text or '').strip()
        self.version, self.flavour = parse_tool_version(self.version_text)
        parts = re.match(r'(\d+)\.(\d+)\.(\d+)', self.version or '')
        self.version_tuple = tuple(int(part) for part in parts.groups()) if parts else (0, 0, 0)

    def as_manifest(self):
        return dict(name=self.name, version=self.version or self.version_text)

    # logical -------------------------------------------------------------------------------

    def position_arguments(self):
        """What makes the dump record the binlog file, position and GTID (as comments, option =2)."""
        if self.flavour == 'mariadb':
            return ['--master-data=2', '--gtid']
        if self.version_tuple >= (8, 0, 26):
            return ['--source-data=2']
        return ['--master-data=2']

    def dump_arguments(self, databases, with_position):
        arguments = ['--single-transaction', '--quick', '--routines', '--triggers', '--events', '--hex-blob',
                     '--no-tablespaces']
        if with_position:
            arguments += self.position_arguments()
        if self.flavour == 'mysql' and self.version_tuple >= (8, 0, 17):
            # Record GTID_PURGED as a comment, like the position: a restore decides whether to apply it.
            arguments.append('--set-gtid-purged=COMMENTED')
        return arguments + ['--databases'] + list(databases)

    # physical ------------------------------------------------------------------------------

    def backup_arguments(self, target_dir, datadir, throttle_mb_per_second=None):
        arguments = ['--backup', '--stream=xbstream', '--target-dir=%s' % target_dir, '--datadir=%s' % datadir]
        if throttle_mb_per_second:
            arguments.append('--throttle=%d' % self.throttle_operations(throttle_mb_per_second))
        return arguments

    def throttle_operations(self, mb_per_second):
        """--throttle counts I/O operations (a read and a write of one chunk) per second, not bytes:
        mariabackup copies data files 64 pages (1 MiB of 16 KiB pages) at a time, xtrabackup 10 MB
        chunks (Percona's documentation). Rounded up, at least 1: never slower than asked."""
        chunk_mib = 1.0 if self.name in ('mariabackup', 'mariadb-backup') else 10.0
        return max(1, int(-(-float(mb_per_second) // chunk_mib)))


def find_tool(method, which, run, server_flavour=None):
    """The program for `method`, preferring one of the server's flavour when several are installed.
    `which(name)` finds a program, `run(argv)` returns (rc, stdout, stderr)."""
    found = []
    for name in TOOL_CANDIDATES[method]:
        path = which(name)
        if path and os.path.realpath(path) not in [os.path.realpath(tool.path) for tool in found]:
            _rc, out, err = run([path, '--version'])
            found.append(Tool(name, path, (out or '') + (err or '')))
    if not found:
        raise BackupError('%s backups need %s on %s, and none is installed: install %s'
                          % (method, ' or '.join(TOOL_CANDIDATES[method]), socket.gethostname(),
                             TOOL_PACKAGES[method]))
    family = 'mariadb' if server_flavour == 'mariadb' else 'mysql'
    return next((tool for tool in found if tool.flavour == family), found[0])


# -- credentials ---------------------------------------------------------------------------

def option_value(value):
    """A value for an option file, quoted so that '#', quotes, backslashes and spaces survive."""
    text = str(value)
    for raw, escaped in (('\\', '\\\\'), ('"', '\\"'), ('\n', '\\n'), ('\r', '\\r'), ('\t', '\\t')):
        text = text.replace(raw, escaped)
    return '"%s"' % text


def defaults_file_text(params):
    """Option file for the dump tool from the module's login options: the config_file the module
    would read (included first), then the options given to the module, which take precedence,
    as they do for the module's own connection. Only options every tool accepts."""
    lines = ['# dbfleet.mysql.mysql_backup: login options for one run, removed when it ends']
    config_file = _config_file_path(params)
    if config_file:
        lines.append('!include %s' % os.path.abspath(config_file))
    lines.append('[client]')
    if params.get('login_user'):
        lines.append('user=%s' % option_value(params['login_user']))
    if params.get('login_password') is not None:
        lines.append('password=%s' % option_value(params['login_password']))
    if params.get('login_unix_socket'):
        lines.append('socket=%s' % option_value(params['login_unix_socket']))
        lines.append('protocol=socket')
    else:
        lines.append('host=%s' % option_value(params.get('login_host') or 'localhost'))
        lines.append('port=%d' % int(params.get('login_port') or 3306))
        # PyMySQL always uses TCP without a socket; the command line clients would take
        # 'localhost' to mean the default socket, which may be another server.
        lines.append('protocol=tcp')
    for option, name in (('ca_cert', 'ssl-ca'), ('client_cert', 'ssl-cert'), ('client_key', 'ssl-key')):
        if params.get(option):
            lines.append('%s=%s' % (name, option_value(params[option])))
    if params.get('ca_cert') and params.get('check_hostname') is not None:
        lines.append('ssl-verify-server-cert=%d' % int(bool(params['check_hostname'])))
    return '\n'.join(lines) + '\n'


class PrivateDir(object):
    """A 0700 temporary directory (the option file, the backup tool's scratch files), always removed."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix='dbfleet-backup-')
        os.chmod(self.path, 0o700)

    def write_secret(self, name, text):
        path = os.path.join(self.path, name)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, 'w') as handle:
            handle.write(text)
        return path

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()


# -- reading what the tools wrote ----------------------------------------------------------

# Anchored at a line start, so row data in INSERT lines never matches.
_MASTER_POSITION = re.compile(
    r"^(?:-- )?CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)',\s*"
    r"(?:MASTER|SOURCE)_LOG_POS=(\d+)", re.M)
_MARIADB_GTID = re.compile(r"^(?:-- )?SET GLOBAL gtid_slave_pos\s*=\s*'([^']*)'", re.M | re.I)
_MYSQL_GTID = re.compile(r"^(?:/\* |-- )?SET @@GLOBAL\.GTID_PURGED\s*=\s*(?:/\*!80000 '\+'\*/\s*)?'([^']*)'",
                         re.M | re.I)
_DUMP_COMPLETED = re.compile(r'^-- Dump completed(?: on .*)?$')
_PHYSICAL_POSITION = re.compile(r"binlog position: filename '([^']+)', position '?(\d+)'?"
                                r"(?:, GTID of the last change '([^']*)')?")


def parse_dump_position(text):
    """{binlog_file, binlog_position, gtid} from the header and footer of a dump (None where absent)."""
    position = dict(binlog_file=None, binlog_position=None, gtid=None)
    match = _MASTER_POSITION.search(text or '')
    if match:
        position['binlog_file'], position['binlog_position'] = match.group(1), int(match.group(2))
    match = _MARIADB_GTID.search(text or '') or _MYSQL_GTID.search(text or '')
    if match:
        # MySQL writes long GTID sets over several lines, each commented out.
        gtid = re.sub(r'\s+|--', '', match.group(1))
        position['gtid'] = gtid or None
    return position


def parse_backup_position(text):
    """{binlog_file, binlog_position, gtid} from mariabackup / xtrabackup's log (None where absent)."""
    matches = _PHYSICAL_POSITION.findall(text or '')
    if not matches:
        return dict(binlog_file=None, binlog_position=None, gtid=None)
    binlog_file, binlog_position, gtid = matches[-1]
    return dict(binlog_file=binlog_file, binlog_position=int(binlog_position), gtid=gtid or None)


def dump_is_complete(tail):
    """True when the dump ends with the line mysqldump / mariadb-dump writes after everything else."""
    lines = [line for line in (tail or '').splitlines() if line.strip()]
    return bool(lines) and bool(_DUMP_COMPLETED.match(lines[-1].strip()))


_POSITION_REFUSED = re.compile(
    r"(FLUSH TABLES WITH READ LOCK|SHOW (?:MASTER|BINARY LOG) STATUS|RELOAD|REPLICATION CLIENT|BINLOG MONITOR"
    r"|gtid_executed|GTID_PURGED).*(denied|privilege)|Binlogging on server not active", re.I)


def position_refused(stderr):
    """Whether a dump failed only because recording the binlog position was refused."""
    return bool(_POSITION_REFUSED.search(stderr or ''))


class StreamEnds(object):
    """The first and last bytes of a stream, kept while it passes."""

    def __init__(self, head=HEAD_BYTES, tail=TAIL_BYTES):
        self._head_size, self._tail_size = head, tail
        self.head = b''
        self.tail = b''
        self.bytes = 0

    def feed(self, chunk):
        if len(self.head) < self._head_size:
            self.head += chunk[:self._head_size - len(self.head)]
        self.tail = (self.tail + chunk[-self._tail_size:])[-self._tail_size:]
        self.bytes += len(chunk)

    def text(self):
        return (self.head.decode('utf-8', 'replace') + '\n' + self.tail.decode('utf-8', 'replace'))


class XbstreamError(ValueError):
    """The xbstream is unreadable; the message says where."""


XBSTREAM_MAGIC = b'XBSTCK01'
_XB_FLAG_IGNORABLE = 0x01


def read_xbstream(stream, keep=('xtrabackup_binlog_info', 'mariadb_backup_binlog_info')):
    """Walk an xbstream (the format mbstream / xbstream extract) chunk by chunk, checking each
    chunk's CRC-32, without writing anything. Returns {files, chunks, payload_bytes, kept}, kept
    holding the content of the small files named in `keep`. XbstreamError when it is not whole."""
    offset = 0
    files, kept = {}, {}
    chunks = payload_bytes = 0

    def read_exact(size, what):
        data = stream.read(size) if size else b''
        if len(data) != size:
            raise XbstreamError('truncated xbstream: %s at offset %d is cut short' % (what, offset))
        return data

    while True:
        header = stream.read(14)
        if not header:
            break
        if len(header) < 14:
            raise XbstreamError('truncated xbstream: chunk header at offset %d is cut short' % offset)
        if header[:8] != XBSTREAM_MAGIC:
            raise XbstreamError('not an xbstream: wrong chunk magic at offset %d' % offset)
        flags, chunk_type = header[8], header[9:10]
        path_length = struct.unpack('<I', header[10:14])[0]
        if path_length >= 4096:
            raise XbstreamError('corrupt xbstream: path length %d at offset %d' % (path_length, offset))
        path = read_exact(path_length, 'a path').decode('utf-8', 'replace')
        offset += 14 + path_length
        if chunk_type == b'E':
            files.setdefault(path, 0)
            continue
        if chunk_type != b'P' and not flags & _XB_FLAG_IGNORABLE:
            raise XbstreamError('corrupt xbstream: unknown chunk type %r at offset %d' % (chunk_type, offset))
        length, _payload_offset, checksum = struct.unpack('<QQI', read_exact(20, 'a chunk header'))
        offset += 20
        payload = read_exact(length, 'the payload of %s' % path)
        if zlib.crc32(payload) & 0xffffffff != checksum:
            raise XbstreamError('corrupt xbstream: checksum mismatch in %s at offset %d' % (path, offset))
        offset += length
        chunks += 1
        payload_bytes += length
        files[path] = files.get(path, 0) + length
        if os.path.basename(path) in keep:
            kept[os.path.basename(path)] = kept.get(os.path.basename(path), b'') + payload
    if not files:
        raise XbstreamError('empty xbstream')
    return dict(files=len(files), chunks=chunks, payload_bytes=payload_bytes,
                kept=dict((name, data.decode('utf-8', 'replace')) for name, data in kept.items()))


def binlog_info_position(text):
    """{binlog_file, binlog_position, gtid} from xtrabackup_binlog_info ('file<TAB>pos<TAB>gtid')."""
    fields = (text or '').strip().split('\t')
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return dict(binlog_file=fields[0], binlog_position=int(fields[1]),
                gtid=fields[2].strip() if len(fields) > 2 and fields[2].strip() else None)


# -- streaming into the archive ------------------------------------------------------------

class DiskFull(BackupError):
    pass


def _write_all(descriptor, data):
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def _pump(source, sink, ends, failures, throttle=None):
    """Copy the tool's output into the compressor, keeping the stream's ends (and its pace)."""
    try:
        for chunk in iter(lambda: source.read(CHUNK), b''):
            if ends is not None:
                ends.feed(chunk)
            if throttle is not None:
                throttle.passed(len(chunk))
            sink.write(chunk)
    except (OSError, ValueError) as exc:  # the compressor died (its exit status tells) or the run was aborted
        failures.append(exc)
    finally:
        try:
            sink.close()
        except OSError:
            pass


def _stop(process):
    if process is not None and process.poll() is None:
        try:
            process.kill()
        except OSError:
            pass
    if process is not None:
        process.wait()


def _tail(path, secret):
    try:
        with open(path, 'rb') as handle:
            handle.seek(max(0, os.path.getsize(path) - 64 * 1024))
            text = handle.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    # Progress lines of mariabackup are noise next to the error that ended it.
    lines = [line for line in text.splitlines() if line.strip() and ' Streaming ' not in line
             and not line.strip().endswith('...done')]
    return redact('\n'.join(lines), secret)[-STDERR_TAIL_CHARS:].strip()


class StreamResult(object):
    def __init__(self):
        self.rc = None
        self.compressor_rc = None
        self.bytes = 0
        self.sha256 = None
        self.ends = None
        self.stderr_tail = ''
        self.compressor_stderr_tail = ''
        self.stages = []


def stream_to_archive(argv, compression, archive_path, scratch, secret=None, keep_ends=True, encryption=None,
                      throttle=None):
    """Run `argv`, compress its output (then encrypt it, with an `Encryption`) and write it to
    `archive_path` (created, 0600): one pipeline, no clear copy on disk. `throttle` (a Throttle)
    paces the tool's output. DiskFull on ENOSPC/EDQUOT; the caller removes the partial archive."""
    result = StreamResult()
    result.ends = StreamEnds() if keep_ends else None
    stderr_path = os.path.join(scratch, 'tool.stderr')
    compressor_stderr_path = os.path.join(scratch, 'compressor.stderr')
    digest = hashlib.sha256()
    producer = compressor = pump = None
    failures = []
    try:
        with open(stderr_path, 'wb') as stderr:
            producer = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                        close_fds=True)
        source = producer.stdout
        # The compressor and the encryptor as one shell-free pipeline: compressor | age.
        stages = [command for command in (compression.compress_command,
                                          encryption.encrypt_command if encryption else None) if command]
        if stages:
            first_stdin = subprocess.PIPE
            previous = None
            with open(compressor_stderr_path, 'wb') as stderr:
                for command in stages:
                    stage = subprocess.Popen(command, stdin=first_stdin if previous is None else previous.stdout,
                                             stdout=subprocess.PIPE, stderr=stderr, close_fds=True)
                    if previous is not None:
                        previous.stdout.close()  # the next stage holds it now
                    result.stages.append(stage)
                    previous = stage
            compressor = result.stages[0]
            pump = threading.Thread(target=_pump, args=(producer.stdout, compressor.stdin, result.ends, failures,
                                                        throttle))
            pump.daemon = True
            pump.start()
            source = result.stages[-1].stdout
        descriptor = os.open(archive_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for chunk in iter(lambda: source.read(CHUNK), b''):
                if compressor is None and result.ends is not None:
                    result.ends.feed(chunk)
                if compressor is None and throttle is not None:
                    throttle.passed(len(chunk))
                _write_all(descriptor, chunk)
                digest.update(chunk)
                result.bytes += len(chunk)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        for process in [producer] + result.stages:
            _stop(process)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull('disk full while writing %s (%d bytes written): %s'
                           % (archive_path, result.bytes, os.strerror(exc.errno)))
        raise
    except BaseException:
        for process in [producer] + result.stages:
            _stop(process)
        raise
    finally:
        if pump is not None:
            pump.join()
        for process in [producer] + result.stages[-1:]:
            if process is not None and process.stdout is not None:
                process.stdout.close()
    result.rc = producer.wait()
    # The first stage that failed (the encryptor fails when the compressor does not).
    result.compressor_rc = next((rc for rc in [stage.wait() for stage in result.stages] if rc != 0), 0)
    result.sha256 = digest.hexdigest()
    result.stderr_tail = _tail(stderr_path, secret)
    if compressor is not None:
        result.compressor_stderr_tail = _tail(compressor_stderr_path, secret)
    return result


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


class _Decompressed(object):
    """The archive's content as a readable stream (a decompressor's output, or the file itself)."""

    def __init__(self, path, compression, scratch):
        self._process = None
        self._stderr_path = os.path.join(scratch, 'decompressor.stderr')
        command = compression.decompress_command(path)
        if command:
            with open(self._stderr_path, 'wb') as stderr:
                self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                 stderr=stderr, close_fds=True)
            self.stream = self._process.stdout
        else:
            self.stream = open(path, 'rb')

    def finish(self):
        """Read to the end and close; the decompressor's complaint, or None when it was happy."""
        while self.stream.read(CHUNK):
            pass
        self.stream.close()
        if self._process is None:
            return None
        if self._process.wait() != 0:
            return _tail(self._stderr_path, None) or 'decompressor exited with status %d' % self._process.returncode
        return None

    def abort(self):
        self.stream.close()
        _stop(self._process)


def verify_encrypted(path, sha256, encryption):
    """What can be verified of an encrypted archive without its private key: the SHA-256 and the
    age header. A dump's completion line was checked in the stream, before encryption."""
    actual = sha256_file(path)
    if actual != sha256:
        raise BackupError('verification failed: the SHA-256 of %s is %s, the manifest says %s' % (path, actual, sha256))
    check_age_header(path, encryption.recipients)
    return dict(verification='sha256 and age header only: the content cannot be read without the private key')


def verify_archive(path, method, compression, sha256, scratch):
    """Check that the archive is whole: its checksum is `sha256`, it decompresses to the end, and
    it is a complete dump (the completion footer) or a readable xbstream (every chunk's CRC).
    Returns what was learnt ({'xbstream': ...} for physical); BackupError saying what is wrong."""
    actual = sha256_file(path)
    if actual != sha256:
        raise BackupError('verification failed: the SHA-256 of %s is %s, the manifest says %s' % (path, actual, sha256))
    content = _Decompressed(path, compression, scratch)
    details = {}
    try:
        if method == 'logical':
            tail = b''
            for chunk in iter(lambda: content.stream.read(CHUNK), b''):
                tail = (tail + chunk)[-4096:]
            complete = dump_is_complete(tail.decode('utf-8', 'replace'))
        else:
            try:
                details['xbstream'] = read_xbstream(content.stream)
            except XbstreamError as exc:
                content.abort()
                raise BackupError('verification failed: %s in %s' % (exc, path))
            complete = True
    except BaseException:
        content.abort()
        raise
    complaint = content.finish()
    if complaint:
        raise BackupError('verification failed: %s does not decompress: %s' % (path, complaint))
    if not complete:
        raise BackupError('verification failed: %s does not end with the dump tool\'s "-- Dump completed" line'
                          % path)
    return details


# -- layout and retention ------------------------------------------------------------------

def check_name(name):
    """The per-host directory name: one path component."""
    if not name or name in ('.', '..') or '/' in name or '\0' in name:
        raise BackupError('name %r cannot be a directory name: give a host name without "/"' % (name,))
    return name


def default_name(params):
    if params.get('login_unix_socket'):
        return 'localhost' + params['login_unix_socket'].replace('/', '_')
    return '%s:%s' % (params.get('login_host') or 'localhost', params.get('login_port') or 3306)


def backup_dir_name(started, method, sequence=0):
    name = '%s-%s' % (started.strftime(TIMESTAMP_FORMAT), method)
    return '%s-%d' % (name, sequence) if sequence else name


def backup_path(dest, name, started, method, sequence=0):
    """<dest>/<name>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>-<method>[-<n>] (dates in UTC)."""
    return os.path.join(dest, name, started.strftime('%Y-%m-%d'), backup_dir_name(started, method, sequence))


class Backup(object):
    """A finished backup found on disk."""

    def __init__(self, path, started, method, sequence=0):
        self.path = path
        self.started = started
        self.method = method
        self.sequence = sequence

    @property
    def sort_key(self):
        return (self.started, self.sequence)

    def __repr__(self):
        return '<Backup %s>' % self.path


def parse_backup_dir(path):
    """A Backup for a directory named like one (not checked on disk), else None."""
    match = _BACKUP_DIR.match(os.path.basename(path))
    if not match or not _DATE_DIR.match(os.path.basename(os.path.dirname(path))):
        return None
    started = datetime.datetime.strptime(match.group(1), TIMESTAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)
    return Backup(path, started, match.group(2), int(match.group(3) or 0))


def find_backups(host_dir):
    """Finished backups under a host's directory, newest first: only real directories (no symlinks)
    named like a backup, in a date directory, holding a manifest. Nothing else is ever a backup."""
    backups = []
    if not os.path.isdir(host_dir):
        return backups
    with os.scandir(host_dir) as dates:
        date_dirs = [entry.path for entry in dates
                     if _DATE_DIR.match(entry.name) and entry.is_dir(follow_symlinks=False)]
    for date_dir in date_dirs:
        with os.scandir(date_dir) as entries:
            for entry in entries:
                backup = parse_backup_dir(entry.path)
                if backup is None or not entry.is_dir(follow_symlinks=False):
                    continue
                manifest = os.path.join(entry.path, MANIFEST)
                if os.path.isfile(manifest) and not os.path.islink(manifest):
                    backups.append(backup)
    return sorted(backups, key=lambda backup: backup.sort_key, reverse=True)


def remove_backups(host_dir, backups):
    """Delete backups, only inside `host_dir` and never through a symlink; date directories left
    empty go too. Returns (removed paths, problems)."""
    root = os.path.realpath(host_dir)
    removed, problems = [], []
    for backup in backups:
        real = os.path.realpath(backup.path)
        if os.path.islink(backup.path) or os.path.dirname(os.path.dirname(real)) != root:
            problems.append('%s is not a backup directory of %s; left alone' % (backup.path, host_dir))
            continue
        try:
            shutil.rmtree(real)
        except OSError as exc:
            problems.append('cannot remove %s: %s' % (backup.path, exc.strerror or exc))
            continue
        removed.append(backup.path)
        try:
            os.rmdir(os.path.dirname(real))
        except OSError:
            pass  # not empty: other backups of that day
    return removed, problems


# -- the server ----------------------------------------------------------------------------

class ServerInfo(object):
    def __init__(self, version, flavour, log_bin, datadir, hostname, databases):
        self.version = version
        self.flavour = flavour
        self.log_bin = log_bin
        self.datadir = datadir
        self.hostname = hostname
        self.databases = databases


def read_server(connection):
    with connection.cursor() as cursor:
        cursor.execute('SELECT @@version AS version, @@version_comment AS comment, @@log_bin AS log_bin,'
                       ' @@datadir AS datadir, @@hostname AS hostname')
        row = cursor.fetchone()
        cursor.execute('SHOW DATABASES')
        databases = sorted(list(database.values())[0] for database in cursor.fetchall())
    version = ServerVersion(row['version'], row['comment'])
    return ServerInfo(version=row['version'], flavour=version.flavour, log_bin=bool(int(row['log_bin'] or 0)),
                      datadir=row['datadir'], hostname=row['hostname'],
                      databases=[name for name in databases if name not in SYSTEM_SCHEMAS])


def _replica_status(connection):
    """(SHOW SLAVE STATUS row or None, GTID position the replica has applied, hostname, datadir)."""
    with connection.cursor() as cursor:
        cursor.execute('SHOW SLAVE STATUS')
        status = cursor.fetchone()
        try:
            cursor.execute('SELECT @@gtid_slave_pos AS gtid')  # MariaDB
        except Exception:  # MySQL: no gtid_slave_pos; what it has executed is its position
            cursor.execute('SELECT @@gtid_executed AS gtid')
        gtid = cursor.fetchone()['gtid']
        cursor.execute('SELECT @@hostname AS hostname, @@datadir AS datadir')
        row = cursor.fetchone()
    return status, gtid or None, row['hostname'], row['datadir']


def choose_replica(params, connect, target):
    """For prefer=replica: ({replica, gtid, lag_seconds, login_host, login_port} of the first healthy
    replica of `params['replicas']` (host:port), or None; notes saying why each other was passed
    over). Healthy: both replication threads running and Seconds_Behind_Master known and at most
    max_replica_lag_seconds. A physical backup takes only a replica whose datadir is on this host."""
    notes = []
    limit = params.get('max_replica_lag_seconds')
    limit = 60 if limit is None else limit
    for candidate in params.get('replicas') or []:
        host, _colon, port = str(candidate).rpartition(':')
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise BackupError('replicas: %r is not host:port (for example db2.example.com:3306)' % (candidate,))
        check = dict(params, login_host=host, login_port=int(port), login_unix_socket=None)
        if params.get('monitor_login_user'):
            check.update(login_user=params['monitor_login_user'], login_password=params.get('monitor_login_password'))
        try:
            connection = connect(check)
        except Exception as exc:
            notes.append('replica %s passed over: %s' % (candidate, redact(str(exc), check.get('login_password'))))
            continue
        try:
            status, gtid, hostname, datadir = _replica_status(connection)
        except Exception as exc:
            notes.append('replica %s passed over: cannot read its replication status (%s); grant SLAVE MONITOR '
                         '(MariaDB) or REPLICATION CLIENT (MySQL) to the account, or give monitor_login_user'
                         % (candidate, redact(str(exc), check.get('login_password'))))
            continue
        finally:
            connection.close()
        if not status:
            notes.append('replica %s passed over: it replicates from no server' % candidate)
            continue
        running = (status.get('Slave_IO_Running') or status.get('Replica_IO_Running'),
                   status.get('Slave_SQL_Running') or status.get('Replica_SQL_Running'))
        lag = status.get('Seconds_Behind_Master', status.get('Seconds_Behind_Source'))
        if running != ('Yes', 'Yes'):
            notes.append('replica %s passed over: replication is not running (IO %s, SQL %s)'
                         % (candidate, running[0], running[1]))
            continue
        if lag is None or int(lag) > limit:
            notes.append('replica %s passed over: it lags %s s, more than max_replica_lag_seconds=%d'
                         % (candidate, 'an unknown number of' if lag is None else lag, limit))
            continue
        if params.get('method') == 'physical':
            try:
                check_local_server(ServerInfo(None, None, None, datadir, hostname, []), candidate)
            except BackupError:
                notes.append('replica %s passed over: a physical backup must run on its host (%s), not here'
                             % (candidate, hostname))
                continue
        return dict(replica=candidate, gtid=gtid, lag_seconds=int(lag), login_host=host, login_port=int(port)), notes
    notes.append('no healthy replica of %s among %s: backed up from the server itself'
                 % (target, ', '.join(map(str, params.get('replicas') or [])) or 'none given'))
    return None, notes


def choose_databases(server, requested, target):
    if not requested:
        if not server.databases:
            raise BackupError('%s has no databases besides the system ones: nothing to back up' % target)
        return list(server.databases)
    missing = [name for name in requested if name not in server.databases]
    if missing:
        raise BackupError('%s has no database %s (it has: %s)' % (target, ', '.join(missing),
                                                                  ', '.join(server.databases) or 'none'))
    return list(requested)


def check_local_server(server, target):
    """Physical backups copy the data files, so they must run on the machine of the server."""
    here = socket.gethostname().split('.')[0].lower()
    there = (server.hostname or '').split('.')[0].lower()
    if there != here or not server.datadir or not os.path.isdir(server.datadir):
        raise BackupError('physical backups copy the data files, so they must run on the database host: %s runs on '
                          '%s with datadir %s, and this is %s%s; run the task there (e.g. without delegate_to) or use '
                          'method=logical' % (target, server.hostname, server.datadir, socket.gethostname(),
                                              '' if os.path.isdir(server.datadir or '') else
                                              ' where that directory does not exist'))


# -- directories ---------------------------------------------------------------------------

def prepare_dest(dest):
    """Create dest when missing; BackupError when it is not a writable directory."""
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise BackupError('dest %s is not a directory' % dest)
    try:
        make_dirs(dest)
    except OSError as exc:
        raise _unwritable(dest, dest, exc)


def make_dirs(path, mode=0o750):
    """os.makedirs, with `mode` for every directory it creates (not only the last)."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise


def _unwritable(dest, path, exc):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull('disk full under dest %s: cannot create %s: %s' % (dest, path, os.strerror(exc.errno)))
    if exc.errno == errno.ENOTDIR:
        return BackupError('dest %s is not a directory (or a part of its path is a file): cannot create %s'
                           % (dest, path))
    return BackupError('dest %s is not writable: cannot create %s: %s (check that user %s may write there and that '
                       'the filesystem is not read-only)' % (dest, path, exc.strerror or exc, _user()))


def _user():
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


def make_partial_dir(dest, attempt):
    """The attempt's locked, hidden directory next to where the backup will live (backup_attempt);
    retention never looks at it."""
    parent = os.path.dirname(attempt.final_path)
    try:
        make_dirs(parent)
        return attempt.open()
    except OSError as exc:
        raise _unwritable(dest, os.path.join(parent, work_dir_name(attempt.final_path, 'partial')), exc)


def publish(partial, final_path):
    """Rename the finished backup into place (with -2, -3, ... if that second is taken); its path."""
    base = parse_backup_dir(final_path)
    candidate = final_path
    for sequence in range(2, 100):
        if not os.path.lexists(candidate):
            os.rename(partial, candidate)
            _sync_dir(os.path.dirname(candidate))
            return candidate
        candidate = os.path.join(os.path.dirname(final_path), backup_dir_name(base.started, base.method, sequence))
    raise BackupError('cannot name the backup: %s and 98 variants exist already' % final_path)


def _sync_dir(path):
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_manifest(directory, manifest):
    path = os.path.join(directory, MANIFEST)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(descriptor, (json.dumps(manifest, indent=2, sort_keys=True) + '\n').encode('utf-8'))
        os.fsync(descriptor)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull('disk full while writing %s: %s' % (path, os.strerror(exc.errno)))
        raise
    finally:
        os.close(descriptor)


# -- one backup ----------------------------------------------------------------------------

class Plan(object):
    """What a run will do, known before anything is written (all that check mode reports)."""

    def __init__(self, params, server, tool, compression, databases, started, encryption=None):
        self.params = params
        self.encryption = encryption
        self.server = server
        self.tool = tool
        self.compression = compression
        self.databases = databases
        self.started = started
        self.method = params['method']
        self.name = check_name(params.get('name') or default_name(params))
        if not os.path.isabs(params['dest']):
            raise BackupError('dest must be an absolute path, got %s' % params['dest'])
        self.dest = os.path.normpath(params['dest'])
        self.host_dir = os.path.join(self.dest, self.name)
        self.path = backup_path(self.dest, self.name, started, self.method)
        self.source = None  # {replica, gtid, lag_seconds} when taken from a replica (prefer=replica)
        self.archive_name = ARCHIVE_BASENAMES[self.method] + compression.suffix + (AGE_SUFFIX if encryption else '')

    def check_dest(self):
        """What check mode can find out about dest without writing."""
        existing = self.dest
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise BackupError('dest %s is not a directory (or a part of its path is a file: %s)' % (self.dest, existing))
        if not os.access(existing, os.W_OK | os.X_OK):
            raise BackupError('dest %s is not writable: user %s may not write to %s' % (self.dest, _user(), existing))

    def expired(self, now):
        keep = parse_backup_dir(self.path)
        return select_expired(find_backups(self.host_dir), keep, now, retention_policy(self.params))


def retention_policy(params):
    return RetentionPolicy(count=params.get('retention_count'), days=params.get('retention_days'),
                           window_days=params.get('retention_window_days'), min_full=params.get('retention_min_full'),
                           keep_paths=params.get('keep_paths') or ())


class Outcome(object):
    def __init__(self):
        self.path = None
        self.manifest = None
        self.removed = []
        self.removed_binlogs = []
        self.warnings = []
        # A failed run's partial directory when the policy keeps it (keep_partial), else None.
        self.partial_path = None


def run_backup(plan, target, outcome=None):
    """Write, verify, describe and publish one backup, then apply retention. BackupError on failure,
    after removing everything the run wrote - or, with keep_partial, keeping its partial directory
    flagged `.failed-` (outcome.partial_path says where)."""
    outcome = outcome or Outcome()
    params = plan.params
    prepare_dest(plan.dest)
    attempt = Attempt(plan.path, dict(name=plan.name, method=plan.method, started=iso(plan.started), server=target))
    partial = make_partial_dir(plan.dest, attempt)
    archive = os.path.join(partial, plan.archive_name)
    clock = time.monotonic()
    try:
        with PrivateDir() as scratch:
            defaults = scratch.write_secret('client.cnf', defaults_file_text(params))
            if plan.method == 'logical':
                result, position = _logical(plan, defaults, archive, scratch.path, outcome, target)
            else:
                result, position = _physical(plan, defaults, archive, scratch.path, target)
            dumped = time.monotonic()
            details = {}
            if params.get('verify', True) and plan.encryption:
                details = verify_encrypted(archive, result.sha256, plan.encryption)
            elif params.get('verify', True):
                details = verify_archive(archive, plan.method, plan.compression, result.sha256, scratch.path)
                if plan.method == 'physical':
                    recorded = binlog_info_position(details['xbstream']['kept'].get('xtrabackup_binlog_info')
                                                    or details['xbstream']['kept'].get('mariadb_backup_binlog_info'))
                    position = recorded or position
            finished = utcnow()
            manifest = dict(
                manifest_version=MANIFEST_VERSION,
                name=plan.name,
                server=target,
                server_version=plan.server.version,
                method=plan.method,
                tool=plan.tool.as_manifest(),
                databases=plan.databases,
                compress=plan.compression.name,
                archive=plan.archive_name,
                bytes=result.bytes,
                sha256=result.sha256,
                started=iso(plan.started),
                finished=iso(finished),
                duration_seconds=round(time.monotonic() - clock, 3),
                verify_seconds=round(time.monotonic() - dumped, 3) if params.get('verify', True) else None,
                verified=bool(params.get('verify', True)),
                binlog_file=position['binlog_file'],
                binlog_position=position['binlog_position'],
                gtid=position['gtid'],
                warnings=list(outcome.warnings),
            )
            if plan.method == 'logical':
                manifest['uncompressed_bytes'] = result.ends.bytes
            if details.get('xbstream'):
                manifest['files'] = details['xbstream']['files']
            if plan.encryption:
                manifest.update(encrypted=plan.encryption.name, recipients=plan.encryption.recipients)
            if details.get('verification'):
                manifest['verification'] = details['verification']
            if plan.source is not None:
                manifest['source'] = plan.source
            if params.get('throttle_mb_per_second'):
                manifest['throttle_mb_per_second'] = params['throttle_mb_per_second']
            write_manifest(partial, manifest)
        # The lock stays held through its open descriptor until the rename is done.
        for name in (ATTEMPT, LOCK):
            os.unlink(os.path.join(partial, name))
        outcome.path = publish(partial, plan.path)
        outcome.manifest = manifest
    except BaseException as exc:
        if params.get('keep_partial'):
            try:
                outcome.partial_path = attempt.flag_failed(str(exc) or exc.__class__.__name__)
            except OSError:
                outcome.partial_path = None
        if outcome.partial_path is None:
            shutil.rmtree(partial, ignore_errors=True)
            for directory in (os.path.dirname(partial), plan.host_dir):
                try:
                    os.rmdir(directory)  # only when this run left it empty
                except OSError:
                    break
        raise
    finally:
        attempt.release()
    apply_retention(plan, outcome)
    return outcome


def apply_retention(plan, outcome, now=None):
    """Remove the backups the policy expires, then (with a recovery window) the archived binlogs
    older than the oldest backup left needs; problems become warnings, never a failed backup."""
    policy = retention_policy(plan.params)
    if not policy.removes:
        return
    keep = parse_backup_dir(outcome.path)
    now = now or utcnow()
    try:
        expired = select_expired(find_backups(plan.host_dir), keep, now, policy)
        outcome.removed, problems = remove_backups(plan.host_dir, expired)
        if policy.window_days is not None:
            first_needed = oldest_position(find_backups(plan.host_dir))
            outcome.removed_binlogs, more = remove_binlogs(
                expired_binlogs(os.path.join(plan.host_dir, BINLOG_DIR), first_needed))
            problems += more
    except OSError as exc:
        problems = ['retention skipped: cannot list %s: %s' % (plan.host_dir, exc.strerror or exc)]
    outcome.warnings.extend(problems)


def _tool_failed(tool, result):
    if result.rc != 0:
        return '%s exited with status %d: %s' % (tool.name, result.rc, result.stderr_tail or 'no error output')
    if result.compressor_rc != 0:
        return 'the compressor exited with status %d: %s' % (result.compressor_rc,
                                                             result.compressor_stderr_tail or 'no error output')
    return None


def _logical(plan, defaults, archive, scratch, outcome, target):
    with_position = plan.server.log_bin
    secret = plan.params.get('login_password')
    while True:
        argv = ([plan.tool.path, '--defaults-file=%s' % defaults]
                + plan.tool.dump_arguments(plan.databases, with_position))
        result = stream_to_archive(argv, plan.compression, archive, scratch, secret=secret,
                                   encryption=plan.encryption, throttle=throttle_for(plan.params.get('throttle_mb_per_second')))
        failure = _tool_failed(plan.tool, result)
        if failure and with_position and result.rc != 0 and position_refused(result.stderr_tail):
            os.unlink(archive)
            outcome.warnings.append('the binlog position of %s could not be recorded (%s); the dump was taken again '
                                    'without it, so it cannot seed a replica or start a point-in-time recovery. '
                                    'Grant the privileges docs/backups.md lists to record it'
                                    % (target, result.stderr_tail.splitlines()[-1] if result.stderr_tail else
                                       'refused'))
            with_position = False
            continue
        if failure:
            raise BackupError('logical backup of %s failed: %s' % (target, failure))
        if not dump_is_complete(result.ends.tail.decode('utf-8', 'replace')):
            raise BackupError('logical backup of %s failed: %s exited 0 but the dump does not end with its '
                              '"-- Dump completed" line: %s' % (target, plan.tool.name,
                                                                result.stderr_tail or 'no error output'))
        position = parse_dump_position(result.ends.text())
        if with_position and position['binlog_file'] is None:
            outcome.warnings.append('%s wrote no binlog position into the dump of %s' % (plan.tool.name, target))
        return result, position


def _physical(plan, defaults, archive, scratch, target):
    work_dir = os.path.join(scratch, 'target')
    os.mkdir(work_dir, 0o700)
    argv = ([plan.tool.path, '--defaults-file=%s' % defaults]
            + plan.tool.backup_arguments(work_dir, plan.server.datadir, plan.params.get('throttle_mb_per_second')))
    result = stream_to_archive(argv, plan.compression, archive, scratch, secret=plan.params.get('login_password'),
                               keep_ends=False, encryption=plan.encryption)
    failure = _tool_failed(plan.tool, result)
    if failure:
        raise BackupError('physical backup of %s failed: %s' % (target, failure))
    with open(os.path.join(scratch, 'tool.stderr'), 'rb') as log:
        position = parse_backup_position(log.read().decode('utf-8', 'replace'))
    return result, position


# -- reading a backup back -------------------------------------------------------------------

def reader_commands(archive, compression, encrypted=None, identity_file=None, age='age'):
    """The commands whose chained output is an archive's content - `age -d -i IDENTITY archive` when it is
    encrypted, then the decompressor (reading the archive, or the stage before it); [] for a plain archive,
    read as it is. BackupError for an encryption this version cannot read, or age without an identity."""
    commands = []
    if encrypted:
        if encrypted != 'age':
            raise BackupError('%s is encrypted with %s, which this version cannot read' % (archive, encrypted))
        if not identity_file:
            raise BackupError('%s is encrypted with age: give the identity (the private key) that opens it'
                              % archive)
        commands.append([age, '-d', '-i', identity_file, archive])
    decompress = compression.decompress_command('-' if commands else archive)
    if decompress:
        commands.append(decompress)
    return commands


@contextlib.contextmanager
def open_backup_stream(path, identity_file=None):
    """The backup's content as a readable binary stream: the dump (or xbstream) decrypted and
    decompressed on the fly, never written anywhere (`age -d -i IDENTITY archive | gzip -dc`).
    `path` is a backup directory (its manifest names the archive, compression and encryption)
    or an archive file (read by its suffixes). An encrypted archive needs `identity_file`, an age
    identity (AGE-SECRET-KEY-1...) in a file; restores write a credential's to a 0600 file.
    BackupError, after the stream is read, when a stage failed (a wrong key, a corrupt archive)."""
    if os.path.isdir(path):
        with open(os.path.join(path, MANIFEST)) as handle:
            manifest = json.load(handle)
        archive = os.path.join(path, manifest['archive'])
        compress, encrypted = manifest.get('compress') or 'none', manifest.get('encrypted')
    else:
        archive = path
        name = path[:-len(AGE_SUFFIX)] if path.endswith(AGE_SUFFIX) else path
        encrypted = 'age' if name != path else None
        compress = next((key for key, spec in Compression._SPECS.items() if spec[0] and name.endswith(spec[0])), 'none')
    commands = reader_commands(archive, Compression(compress, Compression._SPECS[compress][1]), encrypted,
                               identity_file)
    with PrivateDir() as scratch:
        processes, errors = [], []
        if not commands:
            stream = open(archive, 'rb')
        else:
            previous = None
            for index, command in enumerate(commands):
                errors.append(os.path.join(scratch.path, 'stage%d.stderr' % index))
                with open(errors[-1], 'wb') as stderr:
                    process = subprocess.Popen(command, stdin=previous.stdout if previous else subprocess.DEVNULL,
                                               stdout=subprocess.PIPE, stderr=stderr, close_fds=True)
                if previous is not None:
                    previous.stdout.close()
                processes.append(process)
                previous = process
            stream = processes[-1].stdout
        try:
            yield stream
        except BaseException:
            stream.close()
            for process in processes:
                _stop(process)
            raise
        while stream.read(CHUNK):
            pass
        stream.close()
        for process, errors_path, command in zip(processes, errors, commands):
            if process.wait() != 0:
                raise BackupError('cannot read %s: %s exited with status %d: %s'
                                  % (archive, os.path.basename(command[0]), process.returncode,
                                     _tail(errors_path, None) or 'no error output'))
