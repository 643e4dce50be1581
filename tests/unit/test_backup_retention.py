"""Retention by recovery window, minimum fulls and pins, the binlog files it removes, and the partial
directories of dead runs (module_utils.backup_retention, backup_attempt): times injected, real
directories, real processes holding real locks."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import Backup, backup_path, find_backups
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup_attempt import (
    ATTEMPT,
    KILLED_REMOVED,
    LOCK,
    Attempt,
    find_abandoned,
    sweep_abandoned,
)
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup_retention import (
    KEEP_MARKER,
    RetentionPolicy,
    expired_binlogs,
    oldest_position,
    remove_binlogs,
    select_expired,
    window_base,
)

from tests.conftest import REPO

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 5, 3, 0, 0, tzinfo=UTC)


def ago(days):
    return NOW - dt.timedelta(days=days)


def daily(*days, method='logical'):
    """Backup objects (not on disk), newest first, started `days` before NOW."""
    return [Backup('/b/db1/%s/%g' % (method, days_old), ago(days_old), method) for days_old in days]


def paths(backups):
    return [backup.path for backup in backups]


def no_pins(backup, policy):
    return os.path.normpath(backup.path) in policy.keep_paths


# -- the rules -----------------------------------------------------------------------------

def test_the_window_keeps_the_newest_backup_before_its_start_and_everything_newer():
    keep = Backup('/b/db1/new', NOW, 'logical')
    existing = daily(1, 3, 6.5, 7.5, 9, 20)
    assert window_base([keep] + existing, NOW, 7) is existing[3]
    expired = select_expired(existing, keep, NOW, RetentionPolicy(window_days=7), no_pins)
    assert paths(expired) == paths(existing[4:]), 'the 7.5-day-old backup restores day 7: it stays'
    # Exactly at the edge: a backup started at now - 7 days is the base.
    edge = daily(1, 7, 8)
    assert paths(select_expired(edge, keep, NOW, RetentionPolicy(window_days=7), no_pins)) == paths(edge[2:])
    # Every backup younger than the window: nothing can go, the window is not covered yet.
    assert select_expired(daily(1, 2, 3), keep, NOW, RetentionPolicy(window_days=7), no_pins) == []
    # Window 0: only the newest backup (the one just made) is needed.
    assert paths(select_expired(existing, keep, NOW, RetentionPolicy(window_days=0), no_pins)) == paths(existing)


def test_the_window_replaces_count_and_age_when_set():
    keep = Backup('/b/db1/new', NOW, 'logical')
    existing = daily(1, 2, 3, 4, 5, 8, 30)
    # count=2 and days=3 alone would remove from the 3-day-old on; the 7-day window needs up to the 8-day-old.
    assert paths(select_expired(existing, keep, NOW, RetentionPolicy(count=2, days=3), no_pins)) == paths(existing[1:])
    both = RetentionPolicy(count=2, days=3, window_days=7)
    assert paths(select_expired(existing, keep, NOW, both, no_pins)) == [existing[6].path]


def test_a_minimum_of_fulls_is_never_removed_whatever_the_rules():
    keep = Backup('/b/db1/new', NOW, 'logical')
    existing = daily(10, 20, 30, 40)
    assert select_expired(existing, keep, NOW, RetentionPolicy(days=5, min_full=5), no_pins) == []
    assert paths(select_expired(existing, keep, NOW, RetentionPolicy(days=5, min_full=3), no_pins)) == paths(
        existing[2:]), 'the new one and the two next newest'
    assert paths(select_expired(existing, keep, NOW, RetentionPolicy(count=1, min_full=2), no_pins)) == paths(
        existing[1:])
    assert paths(select_expired(existing, keep, NOW, RetentionPolicy(window_days=0, min_full=2), no_pins)) == paths(
        existing[1:])
    # A minimum alone removes nothing: there is no removing rule.
    assert select_expired(existing, keep, NOW, RetentionPolicy(min_full=1), no_pins) == []
    assert RetentionPolicy(min_full=1).removes is False


def test_pins_count_plus_age_plus_window_plus_minimum_together(tmp_path):
    """Every rule at once, on disk: pins from the catalog (keep_paths) and from a .keep file."""
    host_dir = tmp_path / 'db1'
    made = []
    for days_old in (0, 1, 2, 4, 6, 8, 10, 15, 40):
        path = backup_path(str(tmp_path), 'db1', ago(days_old), 'logical')
        os.makedirs(path)
        (tmp_path / path / 'manifest.json').write_text('{}')
        made.append(path)
    physical = backup_path(str(tmp_path), 'db1', ago(50), 'physical')
    os.makedirs(physical)
    (tmp_path / physical / 'manifest.json').write_text('{}')
    open(os.path.join(made[7], KEEP_MARKER), 'w').close()        # 15 days old, pinned on the host
    backups = find_backups(str(host_dir))
    keep = next(backup for backup in backups if backup.path == made[0])
    policy = RetentionPolicy(count=2, days=3, window_days=5, min_full=4, keep_paths=[made[8] + '/'])
    expired = select_expired(backups, keep, NOW, policy)
    # window 5 days: base is the 6-day-old; min 4 fulls: 0, 1, 2, 4 days (inside the window anyway);
    # pins: the 15-day-old (.keep) and the 40-day-old (catalog); count and days are not consulted.
    assert paths(expired) == [made[5], made[6]]
    assert physical not in paths(expired), 'another method is never pushed out'
    policy = RetentionPolicy(count=2, days=30, min_full=3, keep_paths=[made[8]])
    assert paths(select_expired(backups, keep, NOW, policy)) == [made[3], made[4], made[5], made[6]]


def test_bad_options_are_named():
    problems = RetentionPolicy(count=0, days=-1, window_days=-2, min_full=-1).problems()
    assert problems == ['retention_count must be at least 1 (the backup just made), got 0',
                        'retention_days must be at least 0, got -1', 'retention_window_days must be at least 0, got -2',
                        'retention_min_full must be at least 0, got -1']
    assert RetentionPolicy(count=1, days=0, window_days=0, min_full=0).problems() == []


# -- binary logs of the archive -------------------------------------------------------------

def archive(binlog_dir, name, manifest=True):
    binlog_dir.mkdir(parents=True, exist_ok=True)
    (binlog_dir / name).write_bytes(b'\xfebin')
    if manifest:
        (binlog_dir / (name + '.json')).write_text(json.dumps({'manifest_version': 1, 'file': name}))
    return str(binlog_dir / name)


def test_binlogs_before_the_oldest_kept_position_with_a_manifest_go(tmp_path):
    binlogs = tmp_path / 'binlogs'
    one, two = archive(binlogs, 'mysql-bin.000001'), archive(binlogs, 'mysql-bin.000002')
    archive(binlogs, 'mysql-bin.000003', manifest=False)       # cut short: never a candidate
    archive(binlogs, 'mysql-bin.000004')                       # the oldest backup's file: needed
    archive(binlogs, 'mysql-bin.000005', manifest=False)       # being streamed
    other_server = archive(binlogs, 'db7-bin.000001')          # another base name: left alone
    (binlogs / 'notes.txt').write_text('x')
    assert expired_binlogs(str(binlogs), 'mysql-bin.000004') == [one, two]
    assert expired_binlogs(str(binlogs), None) == [] and expired_binlogs(str(binlogs), 'garbage') == []
    assert expired_binlogs(str(tmp_path / 'none'), 'mysql-bin.000004') == []
    removed, problems = remove_binlogs([one, two])
    assert removed == [one, two] and problems == []
    assert sorted(os.listdir(binlogs)) == ['db7-bin.000001', 'db7-bin.000001.json', 'mysql-bin.000003',
                                           'mysql-bin.000004', 'mysql-bin.000004.json', 'mysql-bin.000005',
                                           'notes.txt']
    assert other_server


def test_the_oldest_position_is_the_oldest_backup_that_has_one(tmp_path):
    positions = {'/a': None, '/b': 'mysql-bin.000007', '/c': 'mysql-bin.000009'}
    backups = [Backup('/c', ago(1), 'logical'), Backup('/b', ago(3), 'physical'), Backup('/a', ago(5), 'logical')]
    assert oldest_position(backups, positions.get) == 'mysql-bin.000007', 'one without a position needs no binlog'
    assert oldest_position([Backup('/a', ago(5), 'logical')], positions.get) is None


# -- partial directories of dead runs --------------------------------------------------------

HOLDER = r'''
import sys, time
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup_attempt import Attempt
attempt = Attempt(sys.argv[1], dict(name='db1', method='logical', started=sys.argv[2]))
print(attempt.open(), flush=True)
time.sleep(3600)
'''


def hold(final_path, started='2026-12-05T02:00:00Z'):
    """A real process holding an attempt's lock, as a backup run does; (process, partial path)."""
    os.makedirs(os.path.dirname(final_path), exist_ok=True)
    process = subprocess.Popen([sys.executable, '-c', HOLDER, final_path, started], stdout=subprocess.PIPE, text=True,
                               cwd=REPO / 'collections', env=dict(os.environ, PYTHONPATH=str(REPO / 'collections')))
    return process, process.stdout.readline().strip()


def test_a_live_run_is_never_swept_and_a_killed_one_is(tmp_path):
    host_dir = str(tmp_path / 'db1')
    final = backup_path(str(tmp_path), 'db1', ago(0.1), 'logical')
    process, partial = hold(final)
    try:
        assert os.path.basename(partial).startswith('.') and '.partial-%d' % process.pid in partial
        assert sorted(os.listdir(partial)) == [LOCK, ATTEMPT]
        assert json.loads(open(os.path.join(partial, ATTEMPT)).read())['pid'] == process.pid
        assert find_abandoned(host_dir) == [] and sweep_abandoned(host_dir) == ([], [])
        assert os.path.isdir(partial)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    abandoned, problems = sweep_abandoned(host_dir)
    assert problems == [] and not os.path.exists(partial)
    assert not os.path.exists(os.path.dirname(partial)), 'its day directory, left empty, goes too'
    (swept,) = abandoned
    assert swept['path'] == partial and swept['started'] == '2026-12-05T02:00:00Z' and swept['method'] == 'logical'
    assert swept['pid'] == process.pid and swept['kept'] is False and swept['partial_path'] is None
    assert swept['reason'] == KILLED_REMOVED and swept['host']


def test_keep_partial_renames_and_flags_a_dead_runs_directory_once(tmp_path):
    host_dir = str(tmp_path / 'db1')
    process, partial = hold(backup_path(str(tmp_path), 'db1', ago(0.1), 'physical'))
    process.kill()
    process.wait()
    (swept,), _ = sweep_abandoned(host_dir, keep_partial=True)
    assert swept['kept'] is True and '.failed-%d' % process.pid in swept['partial_path']
    assert os.path.isdir(swept['partial_path']) and swept['partial_path'] in swept['reason']
    assert sweep_abandoned(host_dir, keep_partial=True) == ([], []), 'flagged: never swept again'
    assert find_backups(host_dir) == []


def test_an_unlocked_leftover_goes_only_once_nothing_changed_in_it_for_a_while(tmp_path):
    """A partial directory of the module before locks (no .lock): its run may still be writing."""
    host_dir = tmp_path / 'db1'
    legacy = host_dir / '2026-12-05' / '.20261205T020000Z-logical.partial-77'
    legacy.mkdir(parents=True)
    (legacy / 'dump.sql.gz').write_bytes(b'x')
    now = time.time()
    assert find_abandoned(str(host_dir), now=now) == []
    ((path, _match),) = find_abandoned(str(host_dir), now=now + 601)
    assert path == str(legacy)
    (swept,), _ = sweep_abandoned(str(host_dir), now=now + 601)
    assert swept['started'] == '2026-12-05T02:00:00Z' and swept['pid'] == 77 and swept['host'] is None


def test_a_failed_run_can_flag_its_own_directory(tmp_path):
    final = backup_path(str(tmp_path), 'db1', ago(0), 'logical')
    os.makedirs(os.path.dirname(final))
    attempt = Attempt(final, dict(name='db1', method='logical', started='2026-12-05T03:00:00Z'))
    partial = attempt.open()
    kept = attempt.flag_failed('disk full')
    attempt.release()
    assert not os.path.exists(partial) and '.failed-%d' % os.getpid() in kept
    assert json.loads(open(os.path.join(kept, ATTEMPT)).read())['failed'] == 'disk full'
    assert sweep_abandoned(str(tmp_path / 'db1')) == ([], [])


@pytest.mark.parametrize('name', ['.20261205T020000Z-logical.partial-x', '20261205T020000Z-logical.partial-1',
                                  '.20261205T020000Z-other.partial-1', '.notes'])
def test_only_partial_directories_are_candidates(tmp_path, name):
    directory = tmp_path / 'db1' / '2026-12-05' / name
    directory.mkdir(parents=True)
    assert find_abandoned(str(tmp_path / 'db1'), now=time.time() + 10 ** 6) == []
