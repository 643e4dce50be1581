"""The binlog archive in the store (store.binlogs), on SQLite and on MariaDB."""

from __future__ import annotations

import datetime as dt

import pytest

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
GAP = dict(kind='purged', previous='mysql-bin.000001', file='mysql-bin.000003', at='2026-11-01T02:00:00Z',
           detail='1 binary log(s) purged: mysql-bin.000002', missing=['mysql-bin.000002'])


def record(store, host, number, hours, gap=None, sha='ab'):
    first, last = T0 + dt.timedelta(hours=hours), T0 + dt.timedelta(hours=hours + 1)
    return store.binlogs.record(host, 'mysql-bin.%06d' % number, server_id=1, first_gtid='0-1-%d' % (number * 10),
                                last_gtid='0-1-%d' % (number * 10 + 9), first_event_at=first, last_event_at=last,
                                bytes=1 << 33, sha256=sha * 32, path='/srv/b/%s/binlogs/mysql-bin.%06d' % (host, number),
                                gap=gap, archived_at=last + dt.timedelta(seconds=3))


def test_record_list_and_newest_per_host(store):
    record(store, 'db1', 1, 0)
    record(store, 'db1', 3, 2, gap=GAP)
    record(store, 'db2', 7, 5)
    listed = store.binlogs.list('db1')
    assert [row['file'] for row in listed] == ['mysql-bin.000001', 'mysql-bin.000003']
    assert listed[1]['gap'] == GAP and listed[0]['gap'] is None
    assert listed[1]['bytes'] == 1 << 33 and listed[1]['last_event_at'] == T0 + dt.timedelta(hours=3)
    assert listed[1]['last_event_at'].tzinfo is not None
    newest = store.binlogs.newest_by_host()
    assert {host: row['file'] for host, row in newest.items()} == {'db1': 'mysql-bin.000003', 'db2': 'mysql-bin.000007'}
    # The same host and file again (a server reset re-used the name) replaces the row.
    record(store, 'db1', 3, 2, sha='cd')
    assert [row['sha256'] for row in store.binlogs.list('db1')] == ['ab' * 32, 'cd' * 32]


def test_state_and_the_fact_the_rules_read(store):
    from dbfleet.store.binlogs import archive_fact
    assert store.binlogs.state('db1') is None and archive_fact(None) is None
    store.binlogs.set_state('db1', 12.25, 'mysql-bin.000004', [GAP], T0)
    store.binlogs.set_state('db1', 3.5, 'mysql-bin.000005', [], T0 + dt.timedelta(minutes=1))
    state = store.binlogs.state('db1')
    assert (state['lag_seconds'], state['current_file'], state['gaps']) == (3.5, 'mysql-bin.000005', [])
    assert archive_fact(state) == dict(lag_seconds=3.5, current_file='mysql-bin.000005', gaps=0,
                                       checked_at=(T0 + dt.timedelta(minutes=1)).timestamp())
    assert set(store.binlogs.states()) == {'db1'}


def test_record_pass_takes_the_modules_result(store):
    manifest = dict(file='mysql-bin.000003', server_id=1, bytes=10, sha256='ef' * 32, first_gtid='0-1-5',
                    last_gtid='0-1-9', first_event_at='2026-11-01T01:00:00Z', last_event_at='2026-11-01T02:00:00Z',
                    archived_at='2026-11-01T02:00:05Z')
    gtid_gap = dict(GAP, kind='gtid', detail='GTID discontinuity in domain 0: 0-1-5 follows 0-1-2')
    store.binlogs.record_pass('db1', dict(archived=[manifest], gaps=[GAP, gtid_gap], lag_seconds=60.0,
                                          current_file='mysql-bin.000004', path='/srv/b/db1/binlogs'), T0)
    (row,) = store.binlogs.list('db1')
    assert row['path'] == '/srv/b/db1/binlogs/mysql-bin.000003' and row['gap']['kind'] == 'purged'
    assert row['gap']['detail'] == '%s; %s' % (GAP['detail'], gtid_gap['detail'])
    assert store.binlogs.state('db1')['lag_seconds'] == 60.0


@pytest.mark.parametrize('host, file, fields, message', [
    ('', 'mysql-bin.000001', {}, 'host must be'),
    ('db1', '../etc/passwd', {}, 'binary log name'),
    ('db1', 'mysql-bin.000001', dict(sha256='nope'), 'sha256'),
    ('db1', 'mysql-bin.000001', dict(bytes=-1), 'bytes'),
    ('db1', 'mysql-bin.000001', dict(first_event_at='yesterday'), 'first_event_at'),
    ('db1', 'mysql-bin.000001', dict(gap=dict(kind='oops', detail='x')), 'a gap is'),
    ('db1', 'mysql-bin.000001', dict(colour='red'), 'unknown field'),
    ('db1', 'mysql-bin.000001', dict(last_event_at=T0 - dt.timedelta(hours=1)), 'before first_event_at'),
])
def test_bad_input_is_a_value_error(store, host, file, fields, message):
    values = dict(first_event_at=T0, last_event_at=T0, bytes=1, sha256='ab' * 32, archived_at=T0)
    values.update(fields)
    with pytest.raises(ValueError, match=message):
        store.binlogs.record(host, file, **values)


def test_bad_state_is_a_value_error(store):
    with pytest.raises(ValueError, match='lag_seconds'):
        store.binlogs.set_state('db1', -1, None, [], T0)
    with pytest.raises(ValueError, match='current_file'):
        store.binlogs.set_state('db1', 1, 'x; DROP', [], T0)
    with pytest.raises(ValueError, match='a gap is'):
        store.binlogs.set_state('db1', 1, None, [{'kind': 'purged'}], T0)


def test_files_retention_removed_are_forgotten_and_only_those(store):
    for number in (1, 2, 3):
        record(store, 'db1', number, number)
    record(store, 'db2', 1, 1)
    assert store.binlogs.forget('db1', ['mysql-bin.000001', 'mysql-bin.000002', 'mysql-bin.000099']) == 2
    assert [row['file'] for row in store.binlogs.list('db1')] == ['mysql-bin.000003']
    assert [row['file'] for row in store.binlogs.list('db2')] == ['mysql-bin.000001']
    assert store.binlogs.forget('db1', []) == 0
