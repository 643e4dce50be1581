"""The pure parts of the binlog archive: reading mariadb-binlog's text, finding gaps, the lag, the
restorable window and `backups check`'s verdicts, the instant a drill restores; times are given, never read
from the clock."""

from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.dbfleet.mysql.plugins.module_utils.binlog_archive import (
    binlog_number,
    describe_binlog,
    detect_gaps,
    lag_seconds,
)

from dbfleet import restorable

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 12, 4, 3, 0, 0, tzinfo=UTC)

# What `TZ=UTC mariadb-binlog --base64-output=decode-rows mysql-bin.000007` prints (abridged; hour space-padded).
BINLOG_TEXT = '''/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;
# at 4
#261204  3:00:01 server id 1  end_log_pos 256 CRC32 0xcc9edecf 	Start: binlog v 4, server v 10.11.6-MariaDB-log
# at 256
#261204  3:00:01 server id 1  end_log_pos 299 CRC32 0x0027c114 	Gtid list [0-1-100]
#261204  3:00:05 server id 1  end_log_pos 341 CRC32 0x9cba2c0b 	GTID 0-1-101 trans
INSERT INTO t VALUES ('#261204  9:09:09 server id 9  end_log_pos 1 GTID 9-9-9')
#261204  3:00:05 server id 1  end_log_pos 400 CRC32 0x5adb39c9 	Xid = 6
#261204  3:10:00 server id 1  end_log_pos 441 CRC32 0xd76b338d 	GTID 2-5-7 trans
#261204  4:10:00 server id 1  end_log_pos 500 CRC32 0xd76b338d 	GTID 0-1-180 ddl
#261204  4:10:02 server id 1  end_log_pos 547 CRC32 0xbf1da221 	Rotate to mysql-bin.000008  pos: 4
'''.splitlines()


def test_a_binlog_is_described_from_the_tools_text():
    info = describe_binlog(BINLOG_TEXT)
    assert info['server_id'] == 1
    assert (info['first_gtid'], info['last_gtid']) == ('0-1-101', '0-1-180')
    assert info['domains'] == {'0': ['0-1-101', '0-1-180'], '2': ['2-5-7', '2-5-7']}
    assert info['first_event_at'] == dt.datetime(2026, 12, 4, 3, 0, 1, tzinfo=UTC)
    assert info['last_event_at'] == dt.datetime(2026, 12, 4, 4, 10, 2, tzinfo=UTC)
    assert info['events'] == 7  # the row data that looks like a header is not one


def test_a_binlog_without_transactions_has_no_gtid():
    info = describe_binlog(BINLOG_TEXT[:5] + BINLOG_TEXT[-1:])
    assert info['first_gtid'] is None and info['last_gtid'] is None and info['domains'] == {}


def test_binlog_names():
    assert binlog_number('mysql-bin.000007') == ('mysql-bin', 7)
    assert binlog_number('../etc/passwd') is None and binlog_number('mysql-bin.7') is None


def manifest(number, first, last, server_id=1, last_event_at='2026-12-04T04:00:00Z'):
    return dict(file='mysql-bin.%06d' % number, server_id=server_id, first_gtid=first, last_gtid=last,
                first_event_at='2026-12-04T03:00:00Z', last_event_at=last_event_at)


def test_a_contiguous_archive_has_no_gap():
    files = [manifest(1, '0-1-1', '0-1-10'), manifest(2, None, None), manifest(3, '0-1-11', '0-1-20')]
    assert detect_gaps(files, ['mysql-bin.000003', 'mysql-bin.000004']) == []


def test_a_file_missing_from_archive_and_server_is_a_purged_gap_with_its_gtid_jump():
    files = [manifest(1, '0-1-1', '0-1-10'), manifest(4, '0-1-31', '0-1-40')]
    gaps = detect_gaps(files, ['mysql-bin.000004', 'mysql-bin.000005'])
    assert [(gap['kind'], gap['previous'], gap['file']) for gap in gaps] == [
        ('purged', 'mysql-bin.000001', 'mysql-bin.000004'), ('gtid', 'mysql-bin.000001', 'mysql-bin.000004')]
    assert gaps[0]['missing'] == ['mysql-bin.000002', 'mysql-bin.000003']
    assert gaps[0]['at'] == '2026-12-04T04:00:00Z'
    assert 'domain 0: 0-1-31 follows 0-1-10' in gaps[1]['detail']


def test_a_missing_file_the_server_still_has_is_no_gap():
    files = [manifest(1, '0-1-1', '0-1-10'), manifest(3, '0-1-21', '0-1-30')]
    assert [gap['kind'] for gap in detect_gaps(files, ['mysql-bin.000002', 'mysql-bin.000003'])] == []


def test_logs_purged_after_the_newest_archived_file_are_a_gap_before_the_servers_oldest():
    gaps = detect_gaps([manifest(1, '0-1-1', '0-1-10')], ['mysql-bin.000004'])
    assert [(gap['kind'], gap['file'], gap['missing']) for gap in gaps] == [
        ('purged', 'mysql-bin.000004', ['mysql-bin.000002', 'mysql-bin.000003'])]


def test_a_gtid_discontinuity_and_a_server_change():
    files = [manifest(1, '0-1-1', '0-1-10'), manifest(2, '0-2-15', '0-2-20', server_id=2)]
    assert [gap['kind'] for gap in detect_gaps(files)] == ['server', 'gtid']
    # Another domain's first GTID is no discontinuity of this one.
    files = [manifest(1, '0-1-1', '0-1-10'), manifest(2, '2-5-1', '0-1-11')]
    files[1]['domains'] = {'2': ['2-5-1', '2-5-1'], '0': ['0-1-11', '0-1-11']}
    assert detect_gaps(files) == []


def test_lag_is_now_minus_the_newest_archived_event():
    files = [manifest(1, '0-1-1', '0-1-10', last_event_at='2026-12-04T03:00:00Z')]
    assert lag_seconds(files, 'mysql-bin.000002', T0 + dt.timedelta(seconds=90)) == 90.0
    assert lag_seconds([], 'mysql-bin.000001', T0) is None


# -- the restorable window -----------------------------------------------------------------------

def backup(backup_id, started, binlog_file, method='logical', status='ok', **extra):
    return dict(dict(id=backup_id, host='db7', method=method, status=status, started_at=started,
                     finished_at=started + dt.timedelta(minutes=10), binlog_file=binlog_file), **extra)


def binlog(number, first_hour, last_hour, gap=None):
    return dict(file='mysql-bin.%06d' % number, first_event_at=T0 + dt.timedelta(hours=first_hour),
                last_event_at=T0 + dt.timedelta(hours=last_hour), gap=gap)


def test_the_window_runs_from_the_oldest_backup_of_the_unbroken_chain_to_the_newest_archived_event():
    backups = [backup(1, T0, 'mysql-bin.000001'), backup(2, T0 + dt.timedelta(hours=24), 'mysql-bin.000003'),
               backup(3, T0 - dt.timedelta(hours=1), None, status='failed')]
    binlogs = [binlog(1, 0, 10), binlog(2, 10, 20), binlog(3, 20, 30)]
    found = restorable.window('db7', backups, binlogs)
    assert (found['start'], found['end'], found['from_backup'], found['chain']) == (
        T0, T0 + dt.timedelta(hours=30), 1, True)
    assert found['gaps'] == [] and found['archived'] == 3 and found['newest_backup']['id'] == 2


def test_a_backup_retention_removed_no_longer_starts_the_window():
    backups = [backup(1, T0, 'mysql-bin.000001', removed_at=T0 + dt.timedelta(days=8)),
               backup(2, T0 + dt.timedelta(hours=12), 'mysql-bin.000002')]
    binlogs = [binlog(1, 0, 10), binlog(2, 10, 20), binlog(3, 20, 30)]
    found = restorable.window('db7', backups, binlogs)
    assert (found['start'], found['from_backup'], found['chain']) == (T0 + dt.timedelta(hours=12), 2, True)


def test_a_gap_starts_the_window_at_the_first_backup_after_it():
    gap = dict(kind='purged', detail='1 binary log(s) purged', previous='mysql-bin.000001',
               at='2026-12-04T10:00:00Z', missing=['mysql-bin.000002'])
    backups = [backup(1, T0, 'mysql-bin.000001'), backup(2, T0 + dt.timedelta(hours=24), 'mysql-bin.000003',
                                                           method='physical')]
    binlogs = [binlog(1, 0, 10), binlog(3, 20, 30, gap=gap)]
    found = restorable.window('db7', backups, binlogs)
    # A physical copy is consistent when it ends.
    assert found['start'] == T0 + dt.timedelta(hours=24, minutes=10) and found['from_backup'] == 2
    assert found['end'] == T0 + dt.timedelta(hours=30) and found['chain'] is True
    assert [(item['kind'], item['file']) for item in found['gaps']] == [('purged', 'mysql-bin.000003')]
    state, lines = restorable.check([found], T0 + dt.timedelta(hours=31), dt.timedelta(hours=26))
    assert state == restorable.WARNING and lines[1].startswith('WARNING db7: chain gap before mysql-bin.000003')


def test_without_a_backup_on_the_chain_the_window_is_the_newest_backup_alone_and_check_is_critical():
    gap = dict(kind='server', detail='the server id changed from 1 to 2', previous='mysql-bin.000002', at=None)
    backups = [backup(1, T0, 'mysql-bin.000001')]
    binlogs = [binlog(1, 0, 10), binlog(2, 10, 20), binlog(3, 20, 30, gap=gap)]
    found = restorable.window('db7', backups, binlogs)
    assert (found['start'], found['end'], found['chain']) == (T0, T0, False)
    state, lines = restorable.check([found], T0 + dt.timedelta(hours=2), dt.timedelta(hours=26))
    assert state == restorable.CRITICAL
    assert lines == ['CRITICAL: 1 host(s) checked, 1 critical, 0 warning',
                     'CRITICAL db7: chain gap: no unbroken binlog chain from a backup to the newest archived event '
                     '(server before mysql-bin.000003: the server id changed from 1 to 2)']


def test_without_an_archive_the_window_is_the_backups_instant():
    found = restorable.window('db7', [backup(4, T0, 'mysql-bin.000009')], [])
    assert (found['start'], found['end'], found['chain'], found['archived']) == (T0, T0, False, 0)
    assert restorable.check([found], T0 + dt.timedelta(hours=1), dt.timedelta(hours=26)) == (
        restorable.OK, ['OK: 1 host(s) checked, 0 critical, 0 warning'])


def test_a_gap_the_archive_reported_past_its_newest_file_breaks_the_chain_to_now():
    backups = [backup(1, T0, 'mysql-bin.000001')]
    reported = [dict(kind='purged', file='mysql-bin.000004', previous='mysql-bin.000002', detail='2 purged',
                     at='2026-12-04T20:00:00Z')]
    found = restorable.window('db7', backups, [binlog(1, 0, 10), binlog(2, 10, 20)], reported)
    assert found['chain'] is True and found['open_gap'] is True and found['end'] == T0 + dt.timedelta(hours=20)
    assert restorable.check([found], T0 + dt.timedelta(hours=21), dt.timedelta(hours=26))[0] == restorable.CRITICAL


def test_check_flags_old_backups_missing_backups_and_a_failed_drill():
    now = T0 + dt.timedelta(hours=30)
    old = restorable.window('db1', [backup(1, T0, None)], [])
    none = restorable.window('db2', [backup(2, T0, None, status='failed')], [])
    drilled = restorable.window('db3', [backup(3, now - dt.timedelta(hours=1), None,
                                               **{restorable.DRILL_RESULT_FIELD: 'failed'})], [])
    fine = restorable.window('db4', [backup(4, now - dt.timedelta(hours=1), None)], [])
    state, lines = restorable.check([fine, drilled, none, old], now, dt.timedelta(hours=26))
    assert state == restorable.CRITICAL
    assert lines == ['CRITICAL: 4 host(s) checked, 3 critical, 0 warning',
                     'CRITICAL db1: newest backup is 29h50m old (policy 26h00m)',
                     'CRITICAL db2: no successful backup',
                     'CRITICAL db3: the last restore drill of the newest backup failed']


# -- what a restore drill restores ---------------------------------------------------------------

def test_a_drill_restores_the_newest_backup_to_the_end_of_the_window_to_the_second():
    backups = [backup(1, T0, 'mysql-bin.000001', path='/b/1'), backup(2, T0 + dt.timedelta(hours=12),
                                                                       'mysql-bin.000002', path='/b/2')]
    binlogs = [binlog(1, 0, 10), binlog(2, 10, 20), binlog(3, 20, 30)]
    binlogs[-1]['last_event_at'] += dt.timedelta(microseconds=250000)
    chosen, stop = restorable.drill_point(restorable.window('db7', backups, binlogs))
    assert chosen['id'] == 2 and stop == T0 + dt.timedelta(hours=30)


def test_a_drill_restores_the_backup_alone_off_the_chain_or_with_nothing_archived_after_it():
    gap = dict(kind='server', detail='the server id changed', previous='mysql-bin.000002', at=None)
    off_chain = restorable.window('db7', [backup(1, T0, 'mysql-bin.000001', path='/b/1')],
                                  [binlog(1, 0, 10), binlog(2, 10, 20), binlog(3, 20, 30, gap=gap)])
    assert restorable.drill_point(off_chain) == (off_chain['newest_backup'], None)
    newest_after_archive = restorable.window('db7', [backup(1, T0 + dt.timedelta(hours=40), 'mysql-bin.000004',
                                                            path='/b/1')], [binlog(1, 0, 10), binlog(2, 10, 20),
                                                                            binlog(3, 20, 30)])
    chosen, stop = restorable.drill_point(newest_after_archive)
    assert chosen['id'] == 1 and stop is None
    assert restorable.drill_point(restorable.window('db7', [], [binlog(1, 0, 10)])) == (None, None)
    failed_only = restorable.window('db7', [backup(1, T0, 'mysql-bin.000001', status='failed', path=None)], [])
    assert restorable.drill_point(failed_only) == (None, None)


# -- what a restore drill restores -------------------------------------------------------------------

def drill_history():
    """Backups at 0 h and 24 h on one chain to 30 h (the second with a path, the first too)."""
    backups = [backup(1, T0, 'mysql-bin.000001', path='/b/1'),
               backup(2, T0 + dt.timedelta(hours=24), 'mysql-bin.000003', path='/b/2')]
    binlogs = [binlog(1, 0, 10), binlog(2, 10, 20), binlog(3, 20, 30)]
    return backups, restorable.window('db7', backups, binlogs)


def test_a_drill_to_the_end_restores_the_newest_backup_to_the_newest_archived_event():
    backups, found = drill_history()
    chosen, stop = restorable.drill_target(found, backups, 'end')
    assert (chosen['id'], stop) == (2, T0 + dt.timedelta(hours=30)) == (
        restorable.drill_point(found)[0]['id'], restorable.drill_point(found)[1])


@pytest.mark.parametrize('draw, base, stop', [
    (0.0, 1, T0),                                           # the window's first second: the oldest backup
    (0.5, 1, T0 + dt.timedelta(hours=15)),                  # before the second backup: replayed from the first
    (0.9, 2, T0 + dt.timedelta(hours=27)),                  # after it: from the second, the shorter replay
    (0.999999999, 2, T0 + dt.timedelta(hours=30)),          # never past the window's end
])
def test_a_drill_inside_the_window_draws_an_instant_and_starts_from_the_backup_before_it(draw, base, stop):
    backups, found = drill_history()
    chosen, instant = restorable.drill_target(found, backups, 'inside', draw=lambda: draw)
    assert (chosen['id'], instant) == (base, stop)


def test_a_drill_to_a_given_instant_must_be_inside_the_window():
    backups, found = drill_history()
    # An instant within the second a backup started restores from that backup (the instant means its whole second).
    chosen, instant = restorable.drill_target(found, backups, T0 + dt.timedelta(hours=24, microseconds=500))
    assert (chosen['id'], instant) == (2, T0 + dt.timedelta(hours=24))
    for outside in (T0 - dt.timedelta(seconds=1), T0 + dt.timedelta(hours=30, seconds=1)):
        with pytest.raises(ValueError, match='is outside the restorable window of db7'):
            restorable.drill_target(found, backups, outside)
    with pytest.raises(ValueError, match='a drill point is end, inside or an instant'):
        restorable.drill_target(found, backups, 'yesterday')


def test_without_a_chain_a_drill_inside_restores_the_backup_as_it_is_and_an_instant_is_refused():
    backups = [backup(4, T0, 'mysql-bin.000009', path='/b/4')]
    found = restorable.window('db7', backups, [])
    assert restorable.drill_target(found, backups, 'inside', draw=lambda: 0.7) == (backups[0], None)
    with pytest.raises(ValueError, match='has no binlog chain'):
        restorable.drill_target(found, backups, T0)
