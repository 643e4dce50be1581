"""Backup attempts in the store (BackupStore), on SQLite and on MariaDB."""

from __future__ import annotations

import datetime as dt

import pytest

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
SHA = 'ab' * 32


def ok(store, host, day, seconds, **extra):
    started = T0 + dt.timedelta(days=day)
    fields = dict(method='logical', started_at=started, finished_at=started + dt.timedelta(seconds=seconds),
                  duration_seconds=seconds)
    fields.update(extra)
    return store.backups.record(host, **fields)


def test_record_a_successful_backup_and_read_it_back(store):
    started = dt.datetime(2026, 11, 27, 1, 0, 0, 123456, tzinfo=UTC)
    record = store.backups.record(
        'db1', method='logical', status='ok', started_at=started, finished_at=started + dt.timedelta(seconds=95.5),
        duration_seconds=95.5, bytes=123_456_789_012, path='/srv/backups/db1/2026-11-27/20261127T010000Z-logical',
        checksum=SHA, binlog_file='mysql-bin.000042', binlog_position=4_000_000_000, gtid='0-1-1234,1-2-5')
    assert record['id'] and record['host'] == 'db1' and record['status'] == 'ok'
    assert record['started_at'] == started and record['started_at'].tzinfo is not None
    (listed,) = store.backups.list('db1')
    assert listed == record
    assert listed['bytes'] == 123_456_789_012 and listed['binlog_position'] == 4_000_000_000
    assert listed['duration_seconds'] == 95.5 and listed['created_at'].tzinfo is not None


def test_failed_attempts_are_kept_with_their_error(store):
    record = store.backups.record('db1', method='physical', status='failed', started_at=T0,
                                  error='mariabackup exited with status 1: missing required privilege RELOAD')
    assert record['status'] == 'failed' and 'RELOAD' in record['error']
    assert record['duration_seconds'] is None and record['checksum'] is None
    long_error = 'x' * 20000 + 'the end'
    kept = store.backups.record('db1', method='logical', status='failed', started_at=T0, error=long_error)
    assert kept['error'].endswith('the end') and len(kept['error']) == 8000


def test_naive_datetimes_are_utc_and_duration_defaults_to_the_times(store):
    naive = dt.datetime(2026, 11, 27, 3, 0, 0)
    record = store.backups.record('db1', method='logical', started_at=naive,
                                  finished_at=naive + dt.timedelta(minutes=2))
    assert record['started_at'] == naive.replace(tzinfo=UTC)
    assert record['duration_seconds'] == 120.0 and record['status'] == 'ok'


def test_list_is_newest_first_per_host_or_overall_with_a_limit(store):
    for day in (3, 1, 2):
        ok(store, 'db1', day, 10 + day)
    ok(store, 'db2', 5, 50)
    assert [row['duration_seconds'] for row in store.backups.list('db1')] == [13, 12, 11]
    assert [row['host'] for row in store.backups.list()] == ['db2', 'db1', 'db1', 'db1']
    assert len(store.backups.list(limit=2)) == 2
    assert store.backups.list('nobody') == []
    with pytest.raises(ValueError, match='limit'):
        store.backups.list(limit=0)


def test_durations_are_the_last_successful_ones_newest_first(store):
    for day, seconds in enumerate((100, 110, 120, 130, 140, 150, 160)):
        ok(store, 'db1', day, seconds)
    store.backups.record('db1', method='logical', status='failed', started_at=T0 + dt.timedelta(days=30),
                         duration_seconds=3.0, error='disk full')
    ok(store, 'db2', 1, 7.25)
    ok(store, 'db2', 2, 8.5, method='physical')
    assert store.backups.durations(['db1']) == {'db1': [160.0, 150.0, 140.0, 130.0, 120.0]}
    assert store.backups.durations(['db1'], last=2) == {'db1': [160.0, 150.0]}
    assert store.backups.durations() == {'db1': [160.0, 150.0, 140.0, 130.0, 120.0], 'db2': [8.5, 7.25]}
    assert store.backups.durations(['db2', 'never-backed-up']) == {'db2': [8.5, 7.25], 'never-backed-up': []}
    assert store.backups.durations([]) == {}


def test_durations_for_many_hosts(store):
    hosts = ['db%04d' % number for number in range(1200)]
    for number in (0, 600, 1199):
        ok(store, hosts[number], 0, float(number))
    durations = store.backups.durations(hosts, last=1)
    assert len(durations) == 1200
    assert durations['db0600'] == [600.0] and durations['db1199'] == [1199.0] and durations['db0001'] == []


@pytest.mark.parametrize('fields,message', [
    (dict(method='snapshot', started_at=T0), 'method must be one of logical, physical'),
    (dict(method='logical', status='maybe', started_at=T0), 'status must be one of ok, failed'),
    (dict(method='logical'), 'started_at is required'),
    (dict(method='logical', started_at='2026-11-27'), 'started_at must be a datetime'),
    (dict(method='logical', started_at=T0, finished_at=T0 - dt.timedelta(seconds=1)), 'is before started_at'),
    (dict(method='logical', started_at=T0, duration_seconds=-1), 'duration_seconds must be'),
    (dict(method='logical', started_at=T0, bytes=-5), 'bytes must be an integer'),
    (dict(method='logical', started_at=T0, binlog_position='4'), 'binlog_position must be an integer'),
    (dict(method='logical', started_at=T0, checksum='not-a-sha'), 'checksum must be a SHA-256'),
    (dict(method='logical', started_at=T0, size=5), 'unknown field'),
])
def test_bad_fields_are_refused_with_what_is_wrong(store, fields, message):
    with pytest.raises(ValueError, match=message):
        store.backups.record('db1', **fields)
    assert store.backups.list() == []


def test_bad_arguments_to_durations(store):
    with pytest.raises(ValueError, match='last must be a positive integer'):
        store.backups.durations(last=0)
    with pytest.raises(ValueError, match='host must be a non-empty string'):
        store.backups.durations([''])


def test_recent_by_host_is_each_hosts_last_attempts_newest_first(store):
    assert store.backups.recent_by_host() == {}
    for day in range(1, 6):
        ok(store, 'db1', day, 60 + day)
    store.backups.record('db1', method='logical', status='failed', started_at=T0 + dt.timedelta(days=6),
                         error='disk full')
    ok(store, 'db2', 1, 30)
    recent = store.backups.recent_by_host(last=3)
    assert sorted(recent) == ['db1', 'db2']
    assert [backup['status'] for backup in recent['db1']] == ['failed', 'ok', 'ok']
    assert [backup['duration_seconds'] for backup in recent['db1'][1:]] == [65.0, 64.0]
    assert [backup['host'] for backup in recent['db2']] == ['db2']
    with pytest.raises(ValueError):
        store.backups.recent_by_host(last=0)


# -- the catalog's fields: pins, removed backups, partial directories, restore tests -------------

def test_pin_and_unpin_a_backup_and_read_the_pinned_paths_of_a_host(store):
    first = ok(store, 'db1', 1, 10, path='/b/db1/2026-11-02/20261102T010000Z-logical')
    second = ok(store, 'db1', 2, 10, path='/b/db1/2026-11-03/20261103T010000Z-logical')
    other = ok(store, 'db2', 2, 10, path='/b/db2/2026-11-03/20261103T010000Z-logical')
    assert first['pinned'] is False and first['removed_at'] is None and first['kept_partial'] is False
    assert store.backups.set_pinned(first['id'], True)['pinned'] is True
    store.backups.set_pinned(other['id'], True)
    assert store.backups.pinned_paths('db1') == [first['path']]
    assert store.backups.get(first['id'])['pinned'] is True and store.backups.get(second['id'])['pinned'] is False
    assert store.backups.set_pinned(first['id'], False)['pinned'] is False
    assert store.backups.pinned_paths('db1') == []
    assert store.backups.set_pinned(999999, True) is None and store.backups.get(999999) is None
    for bad in (0, -1, True, '1', 2 ** 63):
        with pytest.raises(ValueError, match='positive integer'):
            store.backups.get(bad)


def test_a_failed_attempt_or_a_removed_backup_cannot_be_pinned(store):
    failed = store.backups.record('db1', method='logical', status='failed', started_at=T0, error='boom')
    with pytest.raises(ValueError, match='failed attempt'):
        store.backups.set_pinned(failed['id'], True)
    gone = ok(store, 'db1', 1, 10, path='/b/db1/x')
    assert store.backups.mark_removed('db1', ['/b/db1/x'], at=T0 + dt.timedelta(days=9)) == 1
    with pytest.raises(ValueError, match='removed by retention'):
        store.backups.set_pinned(gone['id'], True)
    assert store.backups.set_pinned(gone['id'], False)['pinned'] is False, 'unpinning is always allowed'


def test_removed_backups_stay_in_history_and_leave_the_default_catalog(store):
    kept = ok(store, 'db1', 2, 10, path='/b/db1/new')
    gone = ok(store, 'db1', 1, 10, path='/b/db1/old')
    same_path_other_host = ok(store, 'db2', 1, 10, path='/b/db1/old')
    store.backups.set_pinned(kept['id'], True)
    assert store.backups.mark_removed('db1', ['/b/db1/old', '/b/db1/never', None]) == 1
    assert store.backups.mark_removed('db1', ['/b/db1/old']) == 0, 'already marked'
    assert store.backups.get(gone['id'])['removed_at'] is not None
    assert store.backups.get(same_path_other_host['id'])['removed_at'] is None
    assert [row['id'] for row in store.backups.catalog(host='db1')['backups']] == [kept['id']]
    assert [row['id'] for row in store.backups.catalog(host='db1', include_removed=True)['backups']] == [
        kept['id'], gone['id']]
    assert [row['id'] for row in store.backups.catalog(pinned=True)['backups']] == [kept['id']]
    assert [row['id'] for row in store.backups.catalog(pinned=False, include_removed=True)['backups']] == [
        same_path_other_host['id'], gone['id']]
    assert len(store.backups.list('db1')) == 2, 'list (the profile page) keeps the whole history'


def test_a_failed_attempt_records_its_partial_directory(store):
    removed = store.backups.record('db1', method='logical', status='failed', started_at=T0,
                                   error='killed or interrupted (partial directory removed)',
                                   partial_path='/b/db1/2026-11-01/.20261101T010000Z-logical.partial-42')
    assert removed['partial_path'].endswith('partial-42') and removed['kept_partial'] is False
    kept = store.backups.record('db1', method='logical', status='failed', started_at=T0, error='x',
                                partial_path='/b/db1/2026-11-01/.20261101T010000Z-logical.failed-42', kept_partial=True)
    assert kept['kept_partial'] is True
    with pytest.raises(ValueError, match='kept_partial needs the partial_path'):
        store.backups.record('db1', method='logical', status='failed', started_at=T0, kept_partial=True)
    with pytest.raises(ValueError, match='no partial directory'):
        store.backups.record('db1', method='logical', started_at=T0, partial_path='/x')
    with pytest.raises(ValueError, match='kept_partial must be'):
        store.backups.record('db1', method='logical', status='failed', started_at=T0, partial_path='/x',
                             kept_partial='yes')


def test_restore_tests_are_recorded_on_the_backup(store):
    backup = ok(store, 'db1', 1, 10)
    assert backup['restore_tested_at'] is None and backup['restore_test_status'] is None
    tested = store.backups.set_restore_test(backup['id'], 'ok', at=T0 + dt.timedelta(days=3))
    assert tested['restore_test_status'] == 'ok' and tested['restore_tested_at'] == T0 + dt.timedelta(days=3)
    with pytest.raises(ValueError, match='restore test status'):
        store.backups.set_restore_test(backup['id'], 'maybe')
    assert store.backups.set_restore_test(424242, 'failed') is None

def test_one_backup_by_id(store):
    recorded = store.backups.record('db-get', method='logical', started_at=dt.datetime(2026, 12, 1, 1, 0),
                                    path='/srv/backups/db-get/x')
    assert store.backups.get(recorded['id']) == recorded
    assert store.backups.get(recorded['id'] + 1000) is None

def _planned_run(store, job_id_host_runs, host, start, wall, backup_seconds, status='ok'):
    """A host run of `wall` seconds from T0+start that took a backup of `backup_seconds` inside it."""
    job, runs = job_id_host_runs
    began = T0 + dt.timedelta(seconds=start)
    runs.append({'host': host, 'lane': 0, 'status': status, 'estimate_seconds': 1.0, 'started_at': began,
                 'finished_at': began + dt.timedelta(seconds=wall)})
    if backup_seconds is not None:
        store.backups.record(host, method='logical', started_at=began + dt.timedelta(seconds=1),
                             duration_seconds=backup_seconds)


def test_start_up_overheads_are_run_wall_time_minus_the_backup(store):
    job, _ = store.jobs.create({'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/x.yml'})
    runs: list = []
    _planned_run(store, (job, runs), 'db1', 0, 4.5, 1.0)
    _planned_run(store, (job, runs), 'db2', 10, 7.0, 2.5)
    _planned_run(store, (job, runs), 'db3', 20, 9.0, None)       # no backup in it: not a measure
    _planned_run(store, (job, runs), 'db3', 40, 9.0, 1.0, 'failed')  # failed: not a measure
    store.jobs.set_host_runs(job['id'], runs)
    other, _ = store.jobs.create({'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/x.yml'})
    later: list = []
    _planned_run(store, (other, later), 'db1', 100, 6.0, 1.0)
    store.jobs.set_host_runs(other['id'], later)
    found = store.backups.overheads(['db1', 'db3', 'db9'])
    assert found == {'db1': [5.0, 3.5], 'db3': [], 'db9': []}  # newest first
    assert sorted(store.backups.overheads(last=100)['']) == [3.5, 4.5, 5.0]
    assert store.backups.overheads(last=1)[''] == [5.0]
