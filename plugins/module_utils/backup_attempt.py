# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The partial directory of a backup being written, and what became of those that never finished.

A run writes its backup into `<day>/.<backup>.partial-<pid>/` and holds an exclusive flock on
`.lock` inside it for as long as it works; `attempt.json` beside it says who (started, method, pid,
host name, name). The directory is made as `.<backup>.starting-<pid>`, locked, described, and only
then renamed to `.partial-`: a `.partial-` directory always has its lock and its description.

Whatever kills the run (a job deadline killing ansible-playbook's process group, a reboot, the OOM
killer) releases the lock, since the kernel drops a dead process's flocks. The next run of the
module for the same name sweeps every partial directory of that name whose lock it can take: the
owner is dead. It removes it - or, when the policy says to keep partial directories for debugging,
renames it `.<backup>.failed-<pid>` (flagged: never swept again, never taken for a backup) - and
returns it as `abandoned`, which the action plugin records as a failed attempt with its start time.

A run that fails on its own removes its partial directory as it always did, or keeps and flags it
the same way when the policy says so.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import time

LOCK = '.lock'
ATTEMPT = 'attempt.json'
# A directory left by a version of the module without locks, or a `.starting-` one, is taken for
# abandoned only when nothing in it changed for this long (a run may still be writing into it).
UNLOCKED_GRACE_SECONDS = 600
KILLED_REMOVED = 'killed or interrupted (partial directory removed)'
KILLED_KEPT = 'killed or interrupted (partial directory kept at %s)'

_WORK_DIR = re.compile(r'^\.(?P<backup>\d{8}T\d{6}Z-(?P<method>logical|physical)(?:-\d+)?)'
                       r'\.(?P<state>starting|partial|failed)-(?P<pid>\d+)$')
_DATE_DIR = re.compile(r'^\d{4}-\d{2}-\d{2}$')


def work_dir_name(final_path, state, pid=None):
    return '.%s.%s-%d' % (os.path.basename(final_path), state, os.getpid() if pid is None else pid)


class Attempt(object):
    """The locked partial directory of this run. `open()` makes it; `release()` drops the lock."""

    def __init__(self, final_path, details):
        self.final_path = final_path
        self.details = dict(details, pid=os.getpid(), host=socket.gethostname())
        self.path = None
        self._lock = None

    def open(self):
        parent = os.path.dirname(self.final_path)
        starting = os.path.join(parent, work_dir_name(self.final_path, 'starting'))
        os.mkdir(starting, 0o700)
        try:
            self._lock = os.open(os.path.join(starting, LOCK), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            write_json(os.path.join(starting, ATTEMPT), self.details)
            self.path = os.path.join(parent, work_dir_name(self.final_path, 'partial'))
            os.rename(starting, self.path)
        except BaseException:
            self.release()
            shutil.rmtree(starting, ignore_errors=True)
            raise
        return self.path

    def flag_failed(self, reason):
        """Keep the directory for debugging, renamed `.failed-` (never swept, never a backup); its path."""
        kept = os.path.join(os.path.dirname(self.path), work_dir_name(self.final_path, 'failed'))
        write_json(os.path.join(self.path, ATTEMPT), dict(self.details, failed=reason), replace=True)
        os.rename(self.path, kept)
        self.path = kept
        return kept

    def release(self):
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def write_json(path, data, replace=False):
    temporary = path + '.tmp' if replace else path
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if replace else os.O_EXCL), 0o600)
    with os.fdopen(descriptor, 'w') as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write('\n')
    if replace:
        os.rename(temporary, path)


def _owner_gone(path, state, now):
    """Whether the run that made `path` is dead: its lock can be taken (and is then dropped), or,
    without a lock file, nothing in it changed for UNLOCKED_GRACE_SECONDS."""
    try:
        descriptor = os.open(os.path.join(path, LOCK), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            return False
        return _quiet_for(path, now, UNLOCKED_GRACE_SECONDS)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # its run holds it: still working
    finally:
        os.close(descriptor)
    # A `.starting-` directory is locked a moment after it is made: give its maker that moment.
    return state == 'partial' or _quiet_for(path, now, 60)


def _quiet_for(path, now, seconds):
    newest = 0.0
    for root, _dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, file) for file in files]:
            try:
                newest = max(newest, os.lstat(name).st_mtime)
            except OSError:
                pass
    return now - newest >= seconds


def _attempt_details(path, match):
    try:
        with open(os.path.join(path, ATTEMPT)) as handle:
            details = json.load(handle)
        if not isinstance(details, dict):
            details = {}
    except (OSError, ValueError):
        details = {}
    started = details.get('started')
    if not isinstance(started, str):
        stamp = datetime.datetime.strptime(match.group('backup')[:16], '%Y%m%dT%H%M%SZ')
        started = stamp.strftime('%Y-%m-%dT%H:%M:%SZ')
    return dict(started=started, method=match.group('method'), pid=int(match.group('pid')),
                host=details.get('host') if isinstance(details.get('host'), str) else None)


def find_abandoned(host_dir, now=None):
    """[(path, match)] of the partial directories under `host_dir` whose run is dead."""
    now = time.time() if now is None else now
    found = []
    if not os.path.isdir(host_dir) or os.path.islink(host_dir):
        return found
    with os.scandir(host_dir) as dates:
        date_dirs = [entry.path for entry in dates if _DATE_DIR.match(entry.name) and entry.is_dir(follow_symlinks=False)]
    for date_dir in sorted(date_dirs):
        with os.scandir(date_dir) as entries:
            for entry in sorted(entries, key=lambda entry: entry.name):
                match = _WORK_DIR.match(entry.name)
                if not match or match.group('state') == 'failed' or not entry.is_dir(follow_symlinks=False):
                    continue
                if _owner_gone(entry.path, match.group('state'), now):
                    found.append((entry.path, match))
    return found


def sweep_abandoned(host_dir, keep_partial=False, now=None):
    """Remove (or keep and flag) the partial directories of dead runs under `host_dir`.
    Returns (abandoned, problems): abandoned are dicts {path, started, method, pid, host, kept,
    partial_path, reason}; partial_path is where the directory is now (None when removed)."""
    abandoned, problems = [], []
    for path, match in find_abandoned(host_dir, now):
        details = _attempt_details(path, match)
        try:
            if keep_partial:
                kept = os.path.join(os.path.dirname(path), '.%s.failed-%s' % (match.group('backup'), match.group('pid')))
                os.rename(path, kept)
                reason = KILLED_KEPT % kept
            else:
                shutil.rmtree(path)
                kept = None
                reason = KILLED_REMOVED
                try:
                    os.rmdir(os.path.dirname(path))  # a day directory left empty
                except OSError:
                    pass
        except OSError as exc:
            problems.append('cannot sweep the partial directory %s of a dead run: %s' % (path, exc.strerror or exc))
            continue
        abandoned.append(dict(details, path=path, kept=kept is not None, partial_path=kept, reason=reason))
    return abandoned, problems
