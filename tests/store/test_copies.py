"""Off-host copies in the store (store.copies), on SQLite and on MariaDB: recorded against a backup
or a binlog file, listed with their backup in the catalog, refused when malformed."""

from __future__ import annotations

import datetime as dt

import pytest

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
SHA = 'cd' * 32


def backup(store, host='db1', **extra):
    return store.backups.record(host, method='logical', started_at=T0, finished_at=T0 + dt.timedelta(seconds=9),
                                checksum=SHA, **extra)


def test_copies_of_a_backup_are_listed_with_it_in_order(store):
    first, second = backup(store), backup(store, 'db2', source_replica='db2-r:3306', source_gtid='0-1-7')
    assert first['copies'] == []
    ok = store.copies.record('db1', 'vault', 'root@b1:/srv/db1/dump.sql.gz', 'ok', backup_id=first['id'],
                             sha256=SHA, verified_at=T0)
    failed = store.copies.record('db1', 's3', 's3:bucket/db1/dump.sql.gz', 'failed', backup_id=first['id'],
                                 error='x' * 5000)
    assert ok['verified_at'] == T0 and ok['binlog_file'] is None and len(failed['error']) == 4000
    listed = {row['host']: row for row in store.backups.catalog()['backups']}
    assert [(c['repository'], c['status']) for c in listed['db1']['copies']] == [('vault', 'ok'), ('s3', 'failed')]
    assert listed['db2']['copies'] == [] and listed['db2']['source_replica'] == 'db2-r:3306'
    assert store.backups.list('db1')[0]['copies'][0]['sha256'] == SHA
    assert second['source_gtid'] == '0-1-7'


def test_copies_of_binlog_files_by_host(store):
    store.copies.record('db1', 'vault', 'root@b1:/srv/db1/binlogs/mysql-bin.000007', 'ok',
                        binlog_file='mysql-bin.000007', sha256=SHA, verified_at=T0)
    store.copies.record('db2', 'vault', 'root@b1:/srv/db2/binlogs/mysql-bin.000001', 'ok',
                        binlog_file='mysql-bin.000001', sha256=SHA, verified_at=T0)
    assert [c['binlog_file'] for c in store.copies.of_binlogs('db1')] == ['mysql-bin.000007']


@pytest.mark.parametrize('fields, words', [
    (dict(status='done'), 'status must be one of ok, failed'),
    (dict(binlog_file='mysql-bin.000001'), 'one of them'),
    (dict(backup_id=None), 'give a backup_id or a binlog_file'),
    (dict(sha256='XYZ'), 'sha256 must be 64 lowercase hex'),
    (dict(repository=''), 'repository must be a non-empty string'),
    (dict(location=''), 'location must be a non-empty string'),
    (dict(backup_id=987654), 'no backup 987654 of host db1'),
])
def test_malformed_copies_are_refused(store, fields, words):
    made = backup(store)
    values = dict(host='db1', repository='vault', location='root@b1:/x', status='ok', backup_id=made['id'])
    values.update(fields)
    with pytest.raises(ValueError, match=words):
        store.copies.record(**values)


def test_a_copy_names_a_backup_of_its_own_host(store):
    made = backup(store, 'db2')
    with pytest.raises(ValueError, match='no backup %d of host db1' % made['id']):
        store.copies.record('db1', 'vault', 'root@b1:/x', 'ok', backup_id=made['id'])


def test_what_retention_removed_from_a_repository_leaves_the_store(store):
    old, kept = backup(store, path='/srv/db1/2026-12-01/x-logical'), backup(store, path='/srv/db1/2026-12-05/y-logical')
    other = backup(store, 'db2', path='/srv/db1/2026-12-01/x-logical')  # another host's backup at the same path
    for made in (old, kept):
        for repository in ('vault', 's3'):
            store.copies.record('db1', repository, '%s:%s' % (repository, made['path']), 'ok', backup_id=made['id'],
                                sha256=SHA, verified_at=T0)
    store.copies.record('db2', 'vault', 'vault:x', 'ok', backup_id=other['id'], sha256=SHA, verified_at=T0)
    for name in ('mysql-bin.000001', 'mysql-bin.000002'):
        store.copies.record('db1', 'vault', 'vault:%s' % name, 'ok', binlog_file=name, sha256=SHA, verified_at=T0)
    # Pruned in vault only (s3 failed): vault's copies of the old backup and binlog go, s3's stay.
    assert store.copies.forget('db1', ['vault'], backup_paths=[old['path']], binlog_files=['mysql-bin.000001']) == 2
    copies = {row['id']: [(c['repository']) for c in row['copies']] for row in store.backups.list('db1')}
    assert copies == {old['id']: ['s3'], kept['id']: ['vault', 's3']}
    assert [c['binlog_file'] for c in store.copies.of_binlogs('db1')] == ['mysql-bin.000002']
    assert [c['repository'] for c in store.backups.list('db2')[0]['copies']] == ['vault']
    assert store.copies.forget('db1', [], backup_paths=[kept['path']]) == 0
