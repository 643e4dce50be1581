"""Restores from a repository (module_utils.copies.fetch): a backup directory and the archived binlogs its
replay needs come back from an rclone repository (a local-backend remote here: the same commands as any
other backend) in the repository's layout, each file checked against its manifest; a damaged copy, another
backup than the catalog's, or a missing one is refused and leaves nothing staged. The SSH side is the
SSH fleet's test (tests/netfleet/test_point_in_time.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from ansible_collections.dbfleet.mysql.plugins.module_utils.copies import CopyError, backup_relative_dir, fetch

BACKUP = 'db7/2026-12-01/20261201T010000Z-logical'


def write(path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def repo(tmp_path):
    """A repository holding db7's backup (binlog position mysql-bin.000002) and mysql-bin.000001..000005,
    one an hour from 01:00, and another host's binlogs."""
    root = tmp_path / 'repo'
    archive = write(root / BACKUP / 'dump.sql.gz', b'the dump')
    (root / BACKUP / 'manifest.json').write_text(json.dumps(
        {'archive': 'dump.sql.gz', 'sha256': archive, 'binlog_file': 'mysql-bin.000002', 'binlog_position': 4}))
    for number in range(1, 6):
        name = 'mysql-bin.%06d' % number
        digest = write(root / 'db7' / 'binlogs' / name, b'binlog %d' % number)
        (root / 'db7' / 'binlogs' / (name + '.json')).write_text(json.dumps(
            {'file': name, 'sha256': digest, 'first_event_at': '2026-12-01T%02d:00:00Z' % number}))
    write(root / 'db8' / 'binlogs' / 'mysql-bin.000003', b'not db7')
    return root


def spec(root) -> dict:
    return dict(name='offsite', kind='rclone', remote=':local:%s' % root)


def staged(result) -> list[str]:
    from pathlib import Path
    root = Path(result['root'])
    return sorted(str(path.relative_to(root)) for path in root.rglob('*') if path.is_file())


def test_a_backup_comes_back_in_the_repository_layout_with_the_binlogs_up_to_the_instant(repo, tmp_path):
    stop = dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.timezone.utc)
    result = fetch(spec(repo), '/var/backups/dbfleet/' + BACKUP, str(tmp_path / 'staging'), binlogs=True,
                   stop_datetime=stop)
    # From the backup's file on, up to the first one that begins after 03:30 (04:00), which shows the
    # archive reaches it; not 000001 (before the backup), 000005, nor db8's.
    assert result['files'] == ['%s/dump.sql.gz' % BACKUP] + ['db7/binlogs/mysql-bin.%06d' % n for n in (2, 3, 4)]
    assert staged(result) == sorted(['%s/dump.sql.gz' % BACKUP, '%s/manifest.json' % BACKUP]
                                    + ['db7/binlogs/mysql-bin.%06d' % n for n in (2, 3, 4)]
                                    + ['db7/binlogs/mysql-bin.%06d.json' % n for n in range(1, 6)])
    assert result['path'] == '%s/%s' % (result['root'], BACKUP)
    assert result['binlog_dir'] == '%s/db7/binlogs' % result['root']
    assert result['bytes'] == len(b'the dump') + 3 * len(b'binlog 2')
    # Without an instant, every archived file from the backup's on; without binlogs, the backup alone.
    assert len(fetch(spec(repo), BACKUP, str(tmp_path / 'staging'), binlogs=True)['files']) == 1 + 4
    assert fetch(spec(repo), BACKUP, str(tmp_path / 'staging'))['files'] == ['%s/dump.sql.gz' % BACKUP]


def test_a_damaged_copy_is_refused_and_nothing_stays_staged(repo, tmp_path):
    (repo / 'db7' / 'binlogs' / 'mysql-bin.000003').write_bytes(b'bit rot')
    staging = tmp_path / 'staging'
    with pytest.raises(CopyError, match='mysql-bin.000003 from repository offsite has SHA-256 .* the copy is damaged'):
        fetch(spec(repo), BACKUP, str(staging), binlogs=True)
    assert list(staging.iterdir()) == []


def test_another_backup_than_the_catalogs_or_a_missing_one_is_refused(repo, tmp_path):
    staging = tmp_path / 'staging'
    with pytest.raises(CopyError, match='the catalog 0{64}: not the backup the catalog recorded'):
        fetch(spec(repo), BACKUP, str(staging), sha256='0' * 64)
    with pytest.raises(CopyError, match='is not in repository offsite'):
        fetch(spec(repo), 'db7/2026-12-02/20261202T010000Z-logical', str(staging))
    assert list(staging.iterdir()) == []


@pytest.mark.parametrize('path', ['/etc/passwd', 'db7/2026-12-01', '../2026-12-01/20261201T010000Z-logical',
                                  'db7/2026-12-01/20261201T010000Z-logical; rm -rf ~', ''])
def test_only_a_backup_directory_is_ever_fetched(path):
    with pytest.raises(CopyError, match='is not a backup directory'):
        backup_relative_dir(path)


def test_what_a_killed_restore_left_staged_goes_once_a_day_old_and_nothing_else(repo, tmp_path):
    import os
    import time
    staging = tmp_path / 'staging'
    old, recent, other = staging / 'restore-old1', staging / 'restore-recent', staging / 'keep-me'
    for directory in (old, recent, other):
        (directory / 'db7').mkdir(parents=True)
    now = time.time()
    for directory in (old, other):
        os.utime(directory, (now - 2 * 86400, now - 2 * 86400))
    result = fetch(spec(repo), BACKUP, str(staging), now=now)
    assert result['swept'] == [str(old)]
    assert sorted(path.name for path in staging.iterdir()) == sorted(['restore-recent', 'keep-me',
                                                                      os.path.basename(result['root'])])
