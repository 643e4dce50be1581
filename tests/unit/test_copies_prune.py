"""Retention in repositories (module_utils.copies): only backup directories and binlog files of the host
are ever named for removal, and an rclone repository (a local-backend remote here, the same commands as
any other backend) loses exactly those, missing ones being no error."""

from __future__ import annotations

import pytest

from ansible_collections.dbfleet.mysql.plugins.module_utils.copies import (
    CopyError,
    prune,
    removed_binlog_files,
    removed_dirs,
)


def test_removed_backups_and_binlogs_map_to_the_repository_layout():
    assert removed_dirs('db7', ['/srv/backups/db7/2026-12-01/20261201T010000Z-logical',
                                '/srv/backups/db7/2026-12-02/20261202T010000Z-physical-1/']) == [
        'db7/2026-12-01/20261201T010000Z-logical', 'db7/2026-12-02/20261202T010000Z-physical-1']
    assert removed_binlog_files('db7', ['mysql-bin.000042']) == ['db7/binlogs/mysql-bin.000042',
                                                                 'db7/binlogs/mysql-bin.000042.json']


@pytest.mark.parametrize('paths', [['/srv/backups/db7/2026-12-01'], ['/'], ['/srv/backups/db7/../../etc'],
                                   ['/srv/db7/2026-12-01/20261201T010000Z-logical; rm -rf ~'],
                                   ['/srv/db7/*/20261201T010000Z-logical']])
def test_anything_but_a_backup_directory_is_refused(paths):
    with pytest.raises(CopyError, match='is not a backup directory'):
        removed_dirs('db7', paths)


@pytest.mark.parametrize('name', ['../../x.000001', 'mysql-bin', '-rf.000001', 'a/b.000001', 'x.000001 y', None])
def test_anything_but_a_binlog_name_is_refused(name):
    with pytest.raises(CopyError, match='is not a binlog file name'):
        removed_binlog_files('db7', [name])


def test_an_rclone_repository_loses_what_retention_removed_and_nothing_else(tmp_path):
    root = tmp_path / 'repo'
    old = root / 'db7' / '2026-12-01' / '20261201T010000Z-logical'
    kept = root / 'db7' / '2026-12-02' / '20261202T010000Z-logical'
    binlogs = root / 'db7' / 'binlogs'
    for directory in (old, kept, binlogs):
        directory.mkdir(parents=True)
    for path in (old / 'dump.sql.gz', old / 'manifest.json', kept / 'dump.sql.gz', binlogs / 'mysql-bin.000001',
                 binlogs / 'mysql-bin.000001.json', binlogs / 'mysql-bin.000002'):
        path.write_text('x')
    spec = dict(name='local', kind='rclone', remote=':local:%s' % root)
    directories = removed_dirs('db7', [str(old), '/srv/db7/2026-11-30/20261130T010000Z-logical'])
    files = removed_binlog_files('db7', ['mysql-bin.000001'])
    result = prune(spec, directories, files)
    assert result['status'] == 'ok', result['error']
    assert sorted(str(path.relative_to(root)) for path in root.rglob('*') if path.is_file()) == [
        'db7/2026-12-02/20261202T010000Z-logical/dump.sql.gz', 'db7/binlogs/mysql-bin.000002']
    assert prune(spec, directories, files)['status'] == 'ok'  # gone already: no error
