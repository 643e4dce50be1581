# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The binary log archive of one MySQL/MariaDB server, for the binlog_archive module.

Layout (next to the host's backups): `<dest>/<name>/binlogs/<binlog file>` is a raw binary log as
the server wrote it, fetched with `mariadb-binlog --read-from-remote-server --raw` (mysqlbinlog on
MySQL), 0600 in a 0750 directory; `<binlog file>.json` is its manifest, written atomically (temporary
name, then rename) only once the file is complete (the server has rotated past it). A file without
its manifest is incomplete: being streamed, or cut short.

Each complete file is read offline (`TZ=UTC mariadb-binlog --base64-output=decode-rows <file>`) for its
server id, its first and last GTID (and per GTID domain), and the times of its first and last event:
the file covers the server's history from the first to the last (the Rotate event, when the server
moved to the next file). Gaps are what break the chain a point-in-time restore replays:

  purged   a log the server purged before the archive fetched it (a number missing between archived
           files, or between the newest archived file and the server's oldest log)
  gtid     a GTID discontinuity: in one domain, a file's first sequence number is not the one after
           the previous file's last
  server   the server id changed between consecutive files (a failover to another server, a rebuild)

Login options reach the tool in a 0600 option file in a private temporary directory (as for
mariadb-dump in backup.py), never on a command line or in the environment.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import re
import subprocess

from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import (
    BackupError,
    PrivateDir,
    defaults_file_text,
    iso,
    utcnow,
)

MANIFEST_VERSION = 1
BINLOG_DIR = 'binlogs'
TOOLS = ('mariadb-binlog', 'mysqlbinlog')
TOOL_PACKAGES = 'mariadb-client (mariadb-binlog) or mysql-client (mysqlbinlog)'
GAP_KINDS = ('purged', 'gtid', 'server')
CHUNK = 1024 * 1024
STDERR_TAIL_CHARS = 1500

# A binary log's name: the log-bin base name, a dot, a number of six digits or more.
_BINLOG_NAME = re.compile(r'^([A-Za-z0-9_][A-Za-z0-9_.-]{0,200})\.(\d{6,10})$')
# An event header as mariadb-binlog / mysqlbinlog prints it: '#261204  3:00:01 server id 1  end_log_pos 256'.
_EVENT_HEADER = re.compile(r'^#(\d{2})(\d{2})(\d{2})\s+(\d{1,2}):(\d{2}):(\d{2})\s+server id\s+(\d+)\s+end_log_pos')
_MARIADB_GTID = re.compile(r'\bGTID (\d+)-(\d+)-(\d+)\b')
_MYSQL_GTID = re.compile(r"^SET @@SESSION\.GTID_NEXT=\s*'([0-9a-fA-F-]{36}):(\d+)'")


class ArchiveError(BackupError):
    """The archive pass failed for a reason the message states (never with a password in it)."""


def binlog_number(name):
    """(base name, number) of a binary log's file name; None when it is not one."""
    match = _BINLOG_NAME.match(name or '')
    return (match.group(1), int(match.group(2))) if match else None


def check_binlog_name(name):
    if binlog_number(name) is None:
        raise ArchiveError('%r is not a binary log file name (base name, a dot, a number)' % (name,))
    return name


def archive_dir(dest, name):
    return os.path.join(dest, name, BINLOG_DIR)


# -- reading a binary log offline ----------------------------------------------------------

def parse_gtid(text):
    """(domain, server, seq) of a MariaDB GTID 'd-s-n'; None for anything else."""
    match = re.match(r'^(\d+)-(\d+)-(\d+)$', text or '')
    return tuple(int(part) for part in match.groups()) if match else None


def describe_binlog(lines):
    """What a binary log holds, from the text mariadb-binlog (or mysqlbinlog) prints for it (run with
    TZ=UTC): {server_id, first_gtid, last_gtid, domains: {domain: [first, last]}, first_event_at,
    last_event_at, events}. Times are aware UTC datetimes; GTIDs None when the file holds none."""
    info = dict(server_id=None, first_gtid=None, last_gtid=None, domains={}, first_event_at=None,
                last_event_at=None, events=0)
    for line in lines:
        if not line.startswith(('#', 'SET @@SESSION.GTID_NEXT')):
            continue
        header = _EVENT_HEADER.match(line)
        if header:
            year, month, day, hour, minute, second, server_id = (int(part) for part in header.groups())
            moment = datetime.datetime(2000 + year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
            if info['first_event_at'] is None:
                info['first_event_at'] = moment
                info['server_id'] = server_id
            info['last_event_at'] = moment
            info['events'] += 1
            gtid = _MARIADB_GTID.search(line[header.end():])
            if gtid:
                _note_gtid(info, gtid.group(1), '%s-%s-%s' % gtid.groups())
            continue
        mysql = _MYSQL_GTID.match(line)
        if mysql:
            _note_gtid(info, mysql.group(1).lower(), '%s:%s' % (mysql.group(1).lower(), mysql.group(2)))
    return info


def _note_gtid(info, domain, gtid):
    if info['first_gtid'] is None:
        info['first_gtid'] = gtid
    info['last_gtid'] = gtid
    span = info['domains'].setdefault(str(domain), [gtid, gtid])
    span[1] = gtid


def read_binlog(tool_path, path, run_lines=None):
    """describe_binlog for one file, streaming the tool's output (a large log never sits in memory)."""
    environment = dict(os.environ, TZ='UTC')
    command = [tool_path, '--base64-output=decode-rows', path]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
                               universal_newlines=True, errors='replace')
    try:
        info = describe_binlog(process.stdout)
    finally:
        process.stdout.close()
        stderr = process.stderr.read()
        process.stderr.close()
        returncode = process.wait()
    if returncode != 0:
        raise ArchiveError('%s cannot read %s (exit %d): %s'
                           % (os.path.basename(tool_path), path, returncode, stderr.strip()[-STDERR_TAIL_CHARS:]))
    if info['first_event_at'] is None:
        raise ArchiveError('%s holds no binary log event: not a binary log, or cut short' % path)
    return info


def sha256_of(path):
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# -- manifests -----------------------------------------------------------------------------

def manifest_for(path, tool_path, archived_at):
    """The manifest of one complete binary log in the archive."""
    info = read_binlog(tool_path, path)
    sha256, size = sha256_of(path)
    return dict(manifest_version=MANIFEST_VERSION, file=os.path.basename(path), server_id=info['server_id'],
                bytes=size, sha256=sha256, first_gtid=info['first_gtid'], last_gtid=info['last_gtid'],
                domains=info['domains'], first_event_at=iso(info['first_event_at']),
                last_event_at=iso(info['last_event_at']), archived_at=iso(archived_at))


def write_json_atomically(path, document):
    """Write `path` whole or not at all: a temporary name in the same directory, fsync, rename."""
    temporary = os.path.join(os.path.dirname(path), '.%s.tmp-%d' % (os.path.basename(path), os.getpid()))
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, 'w') as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write('\n')
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def load_manifests(directory):
    """The manifests of the archive's complete files, oldest first (by base name and number). A
    manifest that cannot be read is an ArchiveError naming it: the archive must be repaired by hand."""
    found = []
    if not os.path.isdir(directory):
        return found
    for entry in os.listdir(directory):
        if not entry.endswith('.json') or binlog_number(entry[:-5]) is None:
            continue
        path = os.path.join(directory, entry)
        try:
            with open(path) as handle:
                manifest = json.load(handle)
        except (OSError, ValueError) as exc:
            raise ArchiveError('cannot read the archive manifest %s: %s' % (path, exc))
        if not isinstance(manifest, dict) or manifest.get('file') != entry[:-5]:
            raise ArchiveError('%s is not the manifest of %s' % (path, entry[:-5]))
        found.append(manifest)
    return sorted(found, key=lambda manifest: binlog_number(manifest['file']))


LOCK_FILE = '.archive.lock'


class ArchiveBusy(ArchiveError):
    """Another writer (a stream, or a pass) holds the archive directory."""


def hold_archive(directory):
    """An exclusive lock on the archive directory (flock of <directory>/.archive.lock), held while the returned
    descriptor stays open (os.close releases it; so does the process's end): one writer at a time, a stream
    or a pass - two would fetch the same file into the same path, and a manifest could hash a file the other
    is rewriting. ArchiveBusy when another holds it."""
    descriptor = os.open(os.path.join(directory, LOCK_FILE), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise ArchiveBusy('another archiver writes %s (a `dbfleet archive run` stream or a binlog_archive pass)'
                          % directory)
    return descriptor


def ensure_dir(directory):
    """The archive directory, 0750, created with its parents when missing."""
    os.makedirs(directory, mode=0o750, exist_ok=True)
    os.chmod(directory, 0o750)
    return directory


# -- gaps ----------------------------------------------------------------------------------

def _gap(kind, previous, following, detail, missing=()):
    return dict(kind=kind, previous=previous['file'] if previous else None,
                file=following['file'] if isinstance(following, dict) else following,
                at=previous.get('last_event_at') if previous else None, detail=detail, missing=list(missing))


def detect_gaps(manifests, server_logs=()):
    """The gaps of an archive: `manifests` of its complete files (any order), `server_logs` the names
    the server still lists (SHOW BINARY LOGS). Each gap is {kind, previous, file, at, detail, missing}:
    the chain breaks between `previous` (its last event at `at`) and `file` (the first file after the
    gap, which may be a file still on the server and not archived yet)."""
    ordered = sorted(manifests, key=lambda manifest: binlog_number(manifest['file']))
    gaps = []
    on_server = {}
    for name in server_logs:
        number = binlog_number(name)
        if number:
            on_server[number] = name
    domains = {}
    previous = None
    for manifest in ordered:
        base, number = binlog_number(manifest['file'])
        # Files still on the server between two archived ones are fetched later: judged then.
        waiting = False
        if previous is not None:
            previous_base, previous_number = binlog_number(previous['file'])
            if previous_base == base and number > previous_number + 1:
                missing = ['%s.%0*d' % (base, len(manifest['file']) - len(base) - 1, between)
                           for between in range(previous_number + 1, number)]
                lost = [name for name in missing if binlog_number(name) not in on_server]
                waiting = not lost
                if lost:
                    gaps.append(_gap('purged', previous, manifest, '%d binary log(s) purged from the server before '
                                     'the archive fetched them: %s' % (len(lost), ', '.join(lost)), lost))
        if previous is not None and not waiting:
            if previous.get('server_id') is not None and manifest.get('server_id') is not None \
                    and previous['server_id'] != manifest['server_id']:
                gaps.append(_gap('server', previous, manifest, 'the server id changed from %s to %s (a failover '
                                 'or a rebuilt server)' % (previous['server_id'], manifest['server_id'])))
            for domain, span in sorted(_domains(manifest).items()):
                last = domains.get(domain)
                first = parse_gtid(span[0])
                if last and first and first[2] != last[2] + 1:
                    gaps.append(_gap('gtid', previous, manifest, 'GTID discontinuity in domain %s: %s follows %s'
                                     % (domain, span[0], '%d-%d-%d' % last)))
        for domain, span in _domains(manifest).items():
            last = parse_gtid(span[1])
            if last:
                domains[domain] = last
        previous = manifest
    if previous is not None and on_server:
        base, number = binlog_number(previous['file'])
        later = sorted(found for found in on_server if found[0] == base and found[1] > number)
        if later and later[0][1] > number + 1:
            width = len(previous['file']) - len(base) - 1
            lost = ['%s.%0*d' % (base, width, between) for between in range(number + 1, later[0][1])]
            gaps.append(_gap('purged', previous, on_server[later[0]], '%d binary log(s) purged from the server before '
                             'the archive fetched them: %s' % (len(lost), ', '.join(lost)), lost))
    return gaps


def _domains(manifest):
    domains = manifest.get('domains')
    if isinstance(domains, dict) and domains:
        return domains
    first, last = parse_gtid(manifest.get('first_gtid')), parse_gtid(manifest.get('last_gtid'))
    if first and last and first[0] == last[0]:
        return {str(first[0]): [manifest['first_gtid'], manifest['last_gtid']]}
    return {}


def lag_seconds(manifests, current_file, now):
    """Seconds the archive is behind the server: now minus the last event of the newest archived file
    (the instant the server opened the file it writes now, which this pass cannot archive yet); 0 when the
    newest archived file is the server's current one; None when nothing is archived yet."""
    if not manifests:
        return None
    newest = manifests[-1]
    if current_file and newest['file'] == current_file:
        return 0.0
    last = datetime.datetime.strptime(newest['last_event_at'], '%Y-%m-%dT%H:%M:%SZ').replace(
        tzinfo=datetime.timezone.utc)
    return max(0.0, round((now - last).total_seconds(), 3))


# -- the server ----------------------------------------------------------------------------

def server_logs(connection):
    """The server's binary logs, oldest first (SHOW BINARY LOGS), as [(name, size)]."""
    with connection.cursor() as cursor:
        try:
            cursor.execute('SHOW BINARY LOGS')
        except Exception as exc:  # pymysql's errors, without importing pymysql here
            message = str(exc)
            if '1381' in message or 'not using binary logging' in message.lower():
                raise ArchiveError('the server does not write binary logs (log_bin is OFF): nothing to archive')
            raise ArchiveError('SHOW BINARY LOGS failed: %s (the account needs BINLOG MONITOR on MariaDB, '
                               'REPLICATION CLIENT on MySQL)' % message)
        rows = cursor.fetchall()
    return [(row.get('Log_name'), int(row.get('File_size') or 0)) for row in rows]


def find_tool(which, flavour=None):
    """mariadb-binlog or mysqlbinlog, the server's flavour first."""
    names = TOOLS if flavour != 'mysql' else tuple(reversed(TOOLS))
    for name in names:
        path = which(name)
        if path:
            return path
    raise ArchiveError('the binlog archive needs %s, and none is installed: install %s'
                       % (' or '.join(TOOLS), TOOL_PACKAGES))


def fetch_command(tool_path, defaults_file, directory, names, stop_never=False):
    """The tool's argv fetching `names` (the first one, and every later one with stop_never) raw into
    `directory`; the option file carries the login, so no secret is on the command line."""
    command = [tool_path, '--defaults-file=%s' % defaults_file, '--read-from-remote-server', '--raw',
               '--result-file=%s%s' % (directory, os.sep)]
    if stop_never:
        command += ['--stop-never', '--stop-never-slave-server-id=%d' % STREAM_SERVER_ID]
    return command + list(names)


# The server id the streamer announces (as a replica would); far from any real one.
STREAM_SERVER_ID = 4200000000


def fetch(tool_path, defaults_file, directory, name, password=None, timeout=3600):
    """Fetch one complete binary log raw into the archive directory (0600)."""
    path = os.path.join(directory, name)
    command = fetch_command(tool_path, defaults_file, directory, [name])
    try:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                                universal_newlines=True, errors='replace', check=False)
    except subprocess.TimeoutExpired:
        raise ArchiveError('fetching %s took more than %d s' % (name, timeout))
    if result.returncode != 0:
        message = (result.stderr or result.stdout or '').strip()[-STDERR_TAIL_CHARS:]
        if password:
            message = message.replace(password, '********')
        raise ArchiveError('%s could not fetch %s (exit %d): %s'
                           % (os.path.basename(tool_path), name, result.returncode, message))
    if not os.path.isfile(path):
        raise ArchiveError('%s exited without writing %s' % (os.path.basename(tool_path), path))
    os.chmod(path, 0o600)
    return path


def archive_pass(params, connection, tool_path, directory, check_mode=False, now=None):
    """One pass: every complete log the server still lists and the archive lacks is fetched, read and
    given its manifest, holding the archive's lock (hold_archive). Returns {archived: [manifest...], pending:
    [name...] (check mode), gaps, lag_seconds, current_file, complete: number of archived files, busy: why
    nothing was fetched when another archiver held the lock, else None}."""
    logs = server_logs(connection)
    names = [name for name, _size in logs]
    for name in names:
        check_binlog_name(name)
    current = names[-1] if names else None
    complete_on_server = names[:-1]
    manifests = load_manifests(directory)
    have = set(manifest['file'] for manifest in manifests)
    wanted = [name for name in complete_on_server if name not in have]
    if manifests:
        newest = binlog_number(manifests[-1]['file'])
        # Files older than the newest archived one are history the archive started after; never refetched.
        wanted = [name for name in wanted if binlog_number(name) > newest]
    archived, busy = [], None
    lock = None
    if not check_mode and wanted:
        try:
            lock = hold_archive(ensure_dir(directory))
        except ArchiveBusy as exc:
            busy = '%s: the pass left %d complete file(s) to it' % (exc, len(wanted))
    if lock is not None:
        try:
            with PrivateDir() as private:
                defaults_file = private.write_secret('client.cnf', defaults_file_text(params))
                for name in wanted:
                    path = fetch(tool_path, defaults_file, directory, name, password=params.get('login_password'))
                    manifest = manifest_for(path, tool_path, utcnow())
                    write_json_atomically(path + '.json', manifest)
                    archived.append(manifest)
                    manifests.append(manifest)
        finally:
            os.close(lock)
    manifests.sort(key=lambda manifest: binlog_number(manifest['file']))
    gaps = detect_gaps(manifests, names)
    return dict(archived=archived, pending=wanted if check_mode else [], gaps=gaps, current_file=current, busy=busy,
                lag_seconds=lag_seconds(manifests, current, now or utcnow()), complete=len(manifests),
                newest=manifests[-1] if manifests else None)
