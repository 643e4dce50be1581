# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which backups and archived binary logs retention removes, for the mysql_backup module.

Pure selection over what is on disk (backups as `backup.Backup`-like objects with path, started,
method and sort_key; times injected), so every rule can be tested without a clock or a server.

Rules, applied to the backups of one host directory and one method (a weekly physical backup is
not pushed out by daily logical ones):

- removing rules, as pgBackRest's repo-retention-full-type and Barman's retention_policy, one kind
  at a time: `window_days` (RECOVERY WINDOW: keep the newest backup started at or before
  now - window_days and everything newer, remove the rest) when it is set; else `count` (keep the
  newest N) and `days` (remove those started more than N days ago), a backup going when either
  says so, as before;
- protections, which always win (Barman's minimum_redundancy, pgBackRest's annotations/`--set`):
  the backup just made, the newest `min_full` backups, and pinned backups (paths given by the
  controller from the catalog, or a `.keep` file inside the backup directory).

Binary logs of the archive (`<host_dir>/binlogs/`) go only with the window: a file whose
manifest (`<file>.json`) exists, with the same base name as the binlog file of the oldest backup
left (of any method) that has a position, and an earlier sequence number. A file without a
manifest (being streamed, or cut short), another base name (another server after a failover) or
anything not named like a binlog is never touched.
"""

from __future__ import annotations

import datetime
import json
import os
import re

KEEP_MARKER = '.keep'
BINLOG_DIR = 'binlogs'
_BINLOG_NAME = re.compile(r'^(?P<base>[A-Za-z0-9_.-]+)\.(?P<number>\d{6,})$')


class RetentionPolicy(object):
    """The retention options of one run; None disables a rule."""

    def __init__(self, count=None, days=None, window_days=None, min_full=None, keep_paths=()):
        self.count = count
        self.days = days
        self.window_days = window_days
        self.min_full = min_full
        self.keep_paths = set(os.path.normpath(path) for path in keep_paths or ())

    @property
    def removes(self):
        """Whether any rule can remove a backup (without one, retention does nothing)."""
        return self.count is not None or self.days is not None or self.window_days is not None

    def problems(self):
        """What is wrong with the options, as messages for fail_json."""
        found = []
        for name, value, least in (('retention_count', self.count, 1), ('retention_days', self.days, 0),
                                   ('retention_window_days', self.window_days, 0),
                                   ('retention_min_full', self.min_full, 0)):
            if value is not None and value < least:
                why = ' (the backup just made)' if name == 'retention_count' else ''
                found.append('%s must be at least %d%s, got %d' % (name, least, why, value))
        return found


def is_pinned(backup, policy):
    return (os.path.normpath(backup.path) in policy.keep_paths
            or os.path.isfile(os.path.join(backup.path, KEEP_MARKER)))


def window_base(backups, now, window_days):
    """The newest backup (of `backups`, newest first) started at or before now - window_days:
    restoring to any instant of the window starts from it. None when every backup is younger."""
    edge = now - datetime.timedelta(days=window_days)
    return next((backup for backup in backups if backup.started <= edge), None)


def select_expired(backups, keep, now, policy, pinned=is_pinned):
    """The backups retention removes, newest first: of `keep`'s method, those a removing rule
    selects and no protection keeps. `keep` is the backup just made."""
    same_method = sorted([backup for backup in backups if backup.method == keep.method and backup.path != keep.path]
                         + [keep], key=lambda backup: backup.sort_key, reverse=True)
    protected = set([keep.path])
    if policy.min_full:
        protected.update(backup.path for backup in same_method[:policy.min_full])
    if policy.window_days is not None:
        base = window_base(same_method, now, policy.window_days)
        needed = same_method if base is None else same_method[:same_method.index(base) + 1]
        removing = [backup for backup in same_method if backup not in needed]
    else:
        removing = []
        for rank, backup in enumerate(same_method):
            too_many = policy.count is not None and rank >= policy.count
            too_old = policy.days is not None and now - backup.started > datetime.timedelta(days=policy.days)
            if too_many or too_old:
                removing.append(backup)
    return [backup for backup in removing if backup.path not in protected and not pinned(backup, policy)]


# -- binary logs ---------------------------------------------------------------------------

def binlog_key(name):
    """(base name, sequence number) of a binlog file name, or None."""
    match = _BINLOG_NAME.match(name or '')
    return (match.group('base'), int(match.group('number'))) if match else None


def read_position(backup_path):
    """The binlog file of a backup's manifest, or None (no position, unreadable manifest)."""
    try:
        with open(os.path.join(backup_path, 'manifest.json')) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None
    return manifest.get('binlog_file') if isinstance(manifest, dict) else None


def oldest_position(backups, position=read_position):
    """The binlog file of the oldest backup (of `backups`, any order) that has one, or None."""
    for backup in sorted(backups, key=lambda backup: backup.sort_key):
        binlog_file = position(backup.path)
        if binlog_key(binlog_file):
            return binlog_file
    return None


def expired_binlogs(binlog_dir, first_needed):
    """Archived binlog files (paths) older than `first_needed` (a binlog file name) that have a
    manifest, oldest first; nothing when `first_needed` is None or not a binlog name."""
    needed = binlog_key(first_needed)
    if needed is None or not os.path.isdir(binlog_dir) or os.path.islink(binlog_dir):
        return []
    found = []
    with os.scandir(binlog_dir) as entries:
        names = set(entry.name for entry in entries if entry.is_file(follow_symlinks=False))
    for name in names:
        key = binlog_key(name)
        if key and key[0] == needed[0] and key[1] < needed[1] and name + '.json' in names:
            found.append((key[1], os.path.join(binlog_dir, name)))
    return [path for _number, path in sorted(found)]


def remove_binlogs(paths):
    """Delete archived binlog files and then their manifests; (removed paths, problems)."""
    removed, problems = [], []
    for path in paths:
        try:
            os.unlink(path)
        except OSError as exc:
            problems.append('cannot remove %s: %s' % (path, exc.strerror or exc))
            continue
        removed.append(path)
        try:
            os.unlink(path + '.json')
        except OSError as exc:
            problems.append('cannot remove %s.json: %s' % (path, exc.strerror or exc))
    return removed, problems
