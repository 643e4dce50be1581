# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Archived binary logs read for a point-in-time recovery, for the mysql_restore module.

The archive is `<dest>/<name>/binlogs/<file>` (a raw binary log as the server wrote it) plus, once
the file is complete, `<file>.json` (its manifest: bytes, sha256, first/last GTID and event time).
A restore needs the chain of files from a backup's binlog position to the target instant or GTID;
this module finds it, checks it has no hole, and works out where replay must stop.

Event times and GTIDs are read from the files themselves (the v4 binlog format: a 4-byte magic, then
events with a 19-byte header: timestamp, type, server id, size, next position, flags), so the answer
never depends on the local time zone or on mariadb-binlog's text output, and a file the archiver has
not described yet (no `.json`: the newest, still being streamed) can be used up to its last whole event.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import struct

BINLOG_MAGIC = b'\xfebin'
HEADER = struct.Struct('<IBIIIH')   # timestamp, type, server_id, event_size, log_pos, flags
STOP_EVENT = 3
ROTATE_EVENT = 4
FORMAT_DESCRIPTION_EVENT = 15
MARIADB_GTID_EVENT = 162
_FILE_NAME = re.compile(r'^(.+)\.(\d{6,})$')
GTID_RE = re.compile(r'^(\d{1,10})-(\d{1,10})-(\d{1,20})$')


class ChainError(Exception):
    """The archive cannot take the restore to the target; the message says why and what to do."""


def utc(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)


def iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ') if moment else None


def parse_gtid(text):
    """(domain, server, sequence) of a MariaDB GTID 'D-S-N'; ValueError otherwise."""
    match = GTID_RE.match((text or '').strip())
    if not match:
        raise ValueError('%r is not a MariaDB GTID (domain-server-sequence, e.g. 0-1-1234)' % (text,))
    return tuple(int(part) for part in match.groups())


def gtid_positions(text):
    """{domain: (server, sequence)} of a gtid_binlog_pos-style list ('0-1-10,1-2-7'); {} for none."""
    positions = {}
    for part in (text or '').split(','):
        if part.strip():
            domain, server, sequence = parse_gtid(part)
            positions[domain] = (server, sequence)
    return positions


class Transaction(object):
    """A transaction's GTID event: where it starts and when it was written."""
    __slots__ = ('domain', 'server', 'sequence', 'position', 'timestamp')

    def __init__(self, domain, server, sequence, position, timestamp):
        self.domain, self.server, self.sequence = domain, server, sequence
        self.position, self.timestamp = position, timestamp

    @property
    def gtid(self):
        return '%d-%d-%d' % (self.domain, self.server, self.sequence)


class BinlogFile(object):
    """One archived file, scanned: its transactions, event count, times, and whether it is whole."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.bytes = 0
        self.events = 0
        self.end = 4                # the end of its last whole event
        self.transactions = []
        self.first_at = None
        self.last_at = None
        self.rotated = False        # ends with a rotate or stop event: the server moved on
        self.manifest = None

    def events_from(self, position, stop=None):
        """How many events lie in [position, stop) (the replay's share of this file)."""
        return sum(1 for start in self._starts if start >= position and (stop is None or start < stop))


def scan_binlog(path):
    """A BinlogFile read from disk; ChainError when it is not a binary log."""
    scanned = BinlogFile(path)
    starts = []
    with open(path, 'rb') as handle:
        data = handle.read()
    scanned.bytes = len(data)
    if data[:4] != BINLOG_MAGIC:
        raise ChainError('%s is not a binary log (no binlog magic at its start)' % path)
    offset = 4
    while offset + HEADER.size <= len(data):
        timestamp, kind, server_id, size, _next, _flags = HEADER.unpack_from(data, offset)
        if size < HEADER.size or offset + size > len(data):
            break   # cut short: the rest is being written (or was lost)
        starts.append(offset)
        if timestamp:   # artificial events (a fake rotate) carry 0
            moment = timestamp
            scanned.first_at = moment if scanned.first_at is None else scanned.first_at
            scanned.last_at = moment
        if kind == MARIADB_GTID_EVENT and size >= HEADER.size + 13:
            sequence, domain = struct.unpack_from('<QI', data, offset + HEADER.size)
            scanned.transactions.append(Transaction(domain, server_id, sequence, offset, timestamp))
        scanned.rotated = kind in (ROTATE_EVENT, STOP_EVENT) and timestamp != 0
        offset += size
    scanned.end = offset
    scanned.events = len(starts)
    scanned._starts = starts
    return scanned


def read_manifest(path):
    """The archiver's `<file>.json`, or None when the file has none (yet)."""
    try:
        with open(path + '.json') as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ChainError('the manifest %s.json is unreadable: %s' % (path, exc))
    return manifest if isinstance(manifest, dict) else None


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b''):
            digest.update(chunk)
    return digest.hexdigest()


class Replay(object):
    """What to feed mariadb-binlog: files in order, the start position in the first, the stop
    position in the last (None: to its end), and what that covers."""

    def __init__(self):
        self.files = []
        self.start_position = None
        self.stop_position = None
        self.events = 0
        self.bytes = 0
        self.last = None            # the last transaction replayed (a Transaction) or None
        self.archive_end = None     # the newest archived event (datetime) and transaction
        self.archive_last = None
        self.warnings = []

    def as_result(self):
        return dict(files=[scanned.name for scanned in self.files], start_position=self.start_position,
                    stop_position=self.stop_position, events=self.events, bytes=self.bytes,
                    stop_gtid=self.last.gtid if self.last else None,
                    stop_event_at=iso(utc(self.last.timestamp)) if self.last else None,
                    archive_ends_at=iso(self.archive_end), archive_last_gtid=self.archive_last)


def archived_files(binlog_dir, first_name):
    """The archive's files of `first_name`'s series from it onwards, in order; ChainError on a hole."""
    match = _FILE_NAME.match(first_name or '')
    if not match:
        raise ChainError('the backup\'s binlog file %r is not named like a binary log (base.NNNNNN)' % (first_name,))
    base, first_number = match.group(1), int(match.group(2))
    if not os.path.isdir(binlog_dir):
        raise ChainError('no binlog archive at %s: archive the binary logs of the source (dbfleet.mysql.binlog_archive) '
                         'or restore without a target instant' % binlog_dir)
    numbers = {}
    for entry in os.listdir(binlog_dir):
        found = _FILE_NAME.match(entry)
        if found and found.group(1) == base and int(found.group(2)) >= first_number \
                and os.path.isfile(os.path.join(binlog_dir, entry)) and not os.path.islink(os.path.join(binlog_dir, entry)):
            numbers[int(found.group(2))] = entry
    if first_number not in numbers:
        raise ChainError('the chain from the backup is broken: %s (the backup\'s binlog file) is missing from %s'
                         % (first_name, binlog_dir))
    width = len(match.group(2))
    names = []
    for number in range(first_number, max(numbers) + 1):
        if number not in numbers:
            raise ChainError('the chain from the backup is broken: %s.%0*d is missing from %s (between %s and %s)'
                             % (base, width, number, binlog_dir, names[-1], numbers[max(numbers)]))
        names.append(numbers[number])
    return [os.path.join(binlog_dir, name) for name in names]


def plan_replay(binlog_dir, start_file, start_position, stop_datetime=None, stop_gtid=None, backup_gtid=None,
                backup_started=None):
    """The Replay from (start_file, start_position) up to `stop_datetime` (aware UTC: every transaction
    written at or before it) or `stop_gtid` (that transaction included). ChainError when the chain has a
    hole, a file before the last is cut short or does not match its manifest, or the target lies before
    the backup or after the newest archived event."""
    replay = Replay()
    paths = archived_files(binlog_dir, start_file)
    scanned = []
    for index, path in enumerate(paths):
        binlog = scan_binlog(path)
        binlog.manifest = read_manifest(path)
        newest = index == len(paths) - 1
        if binlog.manifest is not None:
            if binlog.manifest.get('bytes') not in (None, binlog.bytes) or \
                    (binlog.manifest.get('sha256') and binlog.manifest['sha256'] != sha256_of(path)):
                raise ChainError('%s does not match its manifest (bytes or sha256 differ): the archive is damaged; '
                                 'fetch the file again from the source' % path)
        elif not newest and not binlog.rotated:
            raise ChainError('the chain from the backup is broken: %s is cut short (no manifest, and it does not end '
                             'with the rotation to the next file)' % path)
        elif newest:
            replay.warnings.append('%s has no manifest yet (being archived): used up to its last whole event' % path)
        scanned.append(binlog)
    if start_position is None or start_position < 4 or start_position > scanned[0].end:
        raise ChainError('the backup\'s position %s:%s is not in the archived file (%d bytes)'
                         % (start_file, start_position, scanned[0].end))
    candidates = [(binlog, transaction) for binlog in scanned for transaction in binlog.transactions
                  if binlog is not scanned[0] or transaction.position >= start_position]
    last_times = [binlog.last_at for binlog in scanned if binlog.last_at]
    replay.archive_end = utc(max(last_times)) if last_times else None
    replay.archive_last = candidates[-1][1].gtid if candidates else backup_gtid

    stop_at = None   # (binlog, position) of the first transaction not to replay
    if stop_datetime is not None:
        if backup_started is not None and stop_datetime < backup_started:
            raise ChainError('the target %s is before the backup (taken from %s): choose an older backup'
                             % (iso(stop_datetime), iso(backup_started)))
        if replay.archive_end is None or stop_datetime > replay.archive_end:
            raise ChainError('the target %s is after the newest archived event (%s, in %s): the archive cannot reach '
                             'it yet; wait for the archiver to fetch more, or choose an earlier instant'
                             % (iso(stop_datetime), iso(replay.archive_end) or 'none', scanned[-1].name))
        limit = int((stop_datetime - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds())
        for binlog, transaction in candidates:
            if transaction.timestamp > limit:
                stop_at = (binlog, transaction.position)
                break
    elif stop_gtid is not None:
        domain, server, sequence = parse_gtid(stop_gtid)
        done = gtid_positions(backup_gtid).get(domain)
        if done is not None and sequence <= done[1]:
            raise ChainError('%s is already in the backup (its position is %s): choose an older backup'
                             % (stop_gtid, backup_gtid))
        found = None
        for index, (binlog, transaction) in enumerate(candidates):
            if (transaction.domain, transaction.sequence) == (domain, sequence):
                found = index
                break
        if found is None:
            raise ChainError('%s is not in the archive after the backup\'s position (the newest archived transaction '
                             'is %s, at %s): the archive cannot reach it yet, or it never existed'
                             % (stop_gtid, replay.archive_last or 'none', iso(replay.archive_end) or '-'))
        if candidates[found][1].server != server:
            raise ChainError('%s: the archive has %s at that domain and sequence (another server): check the GTID'
                             % (stop_gtid, candidates[found][1].gtid))
        if found + 1 < len(candidates):
            stop_at = (candidates[found + 1][0], candidates[found + 1][1].position)
        else:
            stop_at = (candidates[found][0], None)

    last_index = len(scanned) - 1
    if stop_at is not None:
        last_index = scanned.index(stop_at[0])
        replay.stop_position = stop_at[1]
    replay.files = scanned[:last_index + 1]
    replay.start_position = start_position
    for index, binlog in enumerate(replay.files):
        begin = start_position if index == 0 else 4
        stop = replay.stop_position if index == last_index else None
        replay.events += binlog.events_from(begin, stop)
        replay.bytes += (stop if stop is not None else binlog.end) - begin
        for transaction in binlog.transactions:
            if transaction.position >= begin and (stop is None or transaction.position < stop):
                replay.last = transaction
    if replay.stop_position is None and replay.files:
        # Never read past the last whole event of a file that is still being written.
        replay.stop_position = replay.files[-1].end if not replay.files[-1].rotated else None
    return replay
