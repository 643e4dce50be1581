"""store.drills on SQLite and MariaDB: a drill is recorded with its RTO and RPO, marks the backup it
tested, and each host's state says since when its backups have gone untested."""

from __future__ import annotations

import datetime as dt

import pytest

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def backup(store, host, started_at, status='ok'):
    return store.backups.record(host, method='logical', status=status, started_at=started_at,
                                finished_at=started_at + dt.timedelta(minutes=5), bytes=1000,
                                path='/srv/backups/%s/%s' % (host, started_at.isoformat()))


def test_a_drill_records_rto_rpo_and_marks_the_backup(store):
    first = backup(store, 'db1', T0)
    started = T0 + dt.timedelta(days=1)
    drill = store.drills.record('db1', 'ok', started, started + dt.timedelta(seconds=42.5), backup_id=first['id'],
                                job_id='a' * 32, rto_seconds=42.5, restored_to=T0 + dt.timedelta(hours=20),
                                restored_gtid='0-1-99', bytes=1000, detail={'seconds': {'load': 30.0}})
    assert drill['rpo_seconds'] == pytest.approx(4 * 3600)
    assert drill['rto_seconds'] == 42.5 and drill['restored_gtid'] == '0-1-99'
    tested = store.backups.get(first['id'])
    assert tested['restore_test_status'] == 'ok' and tested['restore_tested_at'] == drill['finished_at']
    assert store.drills.list(host='db1') == [drill]
    # A drill to an instant chosen inside the window: its data is as old as asked, which is no RPO.
    inside = store.drills.record('db1', 'ok', started, started + dt.timedelta(seconds=50), backup_id=first['id'],
                                 rto_seconds=50.0, restored_to=T0 + dt.timedelta(hours=2), data_age=False,
                                 detail={'point': 'inside'})
    assert inside['rpo_seconds'] is None and inside['restored_to'] == T0 + dt.timedelta(hours=2)


def test_states_count_from_the_last_good_drill_or_the_first_backup(store):
    backup(store, 'never', T0)
    backup(store, 'never', T0 + dt.timedelta(days=2))
    tested = backup(store, 'tested', T0)
    backup(store, 'failing', T0 + dt.timedelta(hours=1))
    backup(store, 'nobackup', T0, status='failed')
    good_end = T0 + dt.timedelta(days=3, seconds=60)
    store.drills.record('tested', 'ok', T0 + dt.timedelta(days=3), good_end, backup_id=tested['id'])
    store.drills.record('tested', 'failed', T0 + dt.timedelta(days=4), T0 + dt.timedelta(days=4, seconds=5),
                        backup_id=tested['id'], error='verification FAILED')
    store.drills.record('failing', 'failed', T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=1, seconds=5))
    states = store.drills.states()
    assert set(states) == {'never', 'tested', 'failing'}  # a host without a successful backup has no state
    assert states['never'] == dict(last=None, last_ok=None, last_ok_at=None, first_backup_at=T0, untested_since=T0)
    assert states['tested']['last']['status'] == 'failed' and states['tested']['last_ok_at'] == good_end
    assert states['tested']['untested_since'] == good_end
    assert states['failing']['untested_since'] == T0 + dt.timedelta(hours=1)
    assert store.drills.states(['tested', 'unknown']).keys() == {'tested'}
    assert store.drills.state('nobackup') is None
    assert store.backups.get(tested['id'])['restore_test_status'] == 'failed'


@pytest.mark.parametrize('fields, message', [
    (dict(host=''), 'host'), (dict(status='maybe'), 'status'), (dict(rto_seconds=-1.0), 'rto_seconds'),
    (dict(rto_seconds=float('nan')), 'rto_seconds'), (dict(backup_id='1'), 'backup_id'),
    (dict(backup_id=999999), 'no backup 999999'), (dict(finished_at=T0 - dt.timedelta(seconds=1)), 'before'),
    (dict(job_id='x' * 40), 'job_id'), (dict(bytes=-5), 'bytes'), (dict(detail=[1]), 'detail'),
])
def test_what_is_not_a_drill_is_refused_and_nothing_is_written(store, fields, message):
    values = dict(host='db1', status='ok', started_at=T0, finished_at=T0 + dt.timedelta(seconds=1), **{})
    values.update(fields)
    with pytest.raises(ValueError, match=message):
        store.drills.record(**values)
    assert store.drills.list() == []
