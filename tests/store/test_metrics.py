"""store.metrics on SQLite and MariaDB: the figures /metrics exposes, aggregated in SQL (the
seconds between two datetimes differ by backend), with the clock and the window passed in."""

from __future__ import annotations

import datetime as dt

import pytest

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=UTC)
SPEC = {'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/local_fleet.yml'}
BOUNDS = (1.0, 10.0, 100.0)


def figures(store, since=LONG_AGO, now=None) -> dict:
    return store.metrics.figures(now=now or dt.datetime.now(UTC), since=since, duration_bounds=BOUNDS,
                                 lateness_bounds=BOUNDS, lease_ttl=60, crontab_origin='crontab')


def ran(store, seconds: float, status: str = 'successful', **spec) -> dict:
    job, _ = store.jobs.create({**SPEC, **spec})
    store.jobs.transition(job['id'], 'running', worker='w1', started_at=T0)
    return store.jobs.transition(job['id'], status, finished_at=T0 + dt.timedelta(seconds=seconds))


def test_jobs_and_their_durations_by_template_within_the_window(store):
    ran(store, 0.5, template='nightly')
    ran(store, 42.25, template='nightly')
    ran(store, 7, status='failed')
    waiting, _ = store.jobs.create(dict(SPEC, queue='dc1'))
    store.jobs.create(dict(SPEC, queue='dc1'))
    found = figures(store)
    assert sorted(found['jobs'], key=str) == sorted([('successful', 'nightly', 2), ('failed', None, 1),
                                                     ('queued', None, 2)], key=str)
    assert found['durations']['nightly'] == {'count': 2, 'sum': pytest.approx(42.75, abs=1e-4),
                                             'buckets': [1, 1, 2]}
    assert found['durations'][None] == {'count': 1, 'sum': pytest.approx(7, abs=1e-4), 'buckets': [0, 1, 1]}
    count, oldest = found['queues']['dc1']
    assert count == 2 and oldest == waiting['enqueued_at']
    # Created before the window: ended jobs leave the figures, waiting ones stay.
    later = figures(store, since=dt.datetime.now(UTC) + dt.timedelta(hours=1))
    assert later['jobs'] == [('queued', None, 2)] and later['durations'] == {}


def test_slots_lateness_pools_events_backups_and_crontab_entries(store):
    job, _ = store.jobs.create(SPEC)
    created = job['created_at']
    schedule = store.schedules.create(name='nightly', kind='cron', expression='0 2 * * *', timezone='UTC', job={},
                                      overlap='allow', misfire_grace_seconds=60, catch_up='skip', jitter_seconds=0,
                                      paused=False, next_fire_at=None,
                                      source={'origin': 'crontab', 'mode': 'observe', 'host': 'db1'})
    store.schedules.create(name='imported-elsewhere', kind='cron', expression='0 3 * * *', timezone='UTC', job={},
                           overlap='allow', misfire_grace_seconds=60, catch_up='skip', jitter_seconds=0,
                           paused=False, next_fire_at=None, source={'origin': 'git', 'host': 'db1'})
    store.schedules.record_slot(schedule['id'], created - dt.timedelta(seconds=12.5), 'fired', 'platform',
                                job_id=job['id'])
    store.schedules.record_slot(schedule['id'], created - dt.timedelta(days=1), 'missed', None)
    store.schedules.record_slot(schedule['id'], created - dt.timedelta(days=2), 'skipped', 'platform')
    store.pools.set('backups', 4)
    store.pools.acquire_lease('backups', 'job:db1')
    store.pools.acquire_lease('backups', 'job:db2')
    store.pools.set('idle', 2)
    store.events.add(job['id'], [{'seq': number, 'event': 'runner_on_ok'} for number in range(1, 6)])
    store.backups.record('db1', method='logical', started_at=T0, finished_at=T0 + dt.timedelta(minutes=3), bytes=10)
    store.backups.record('db1', method='physical', started_at=T0 + dt.timedelta(hours=1),
                         finished_at=T0 + dt.timedelta(hours=2), bytes=5 * 2 ** 40)
    store.backups.record('db1', method='logical', status='failed', started_at=T0 + dt.timedelta(hours=3))
    store.backups.record('db2', method='logical', status='failed', started_at=T0)
    for name, kind in (('ops-hook', 'webhook'), ('ops-mail', 'email')):
        store.notifications.create_notifier(name, kind, public={}, events=['failed'], sealed=None)
    store.notifications.record('job:1:failed', 'failed', 'failed', {}, ['ops-hook'], now=created)
    store.notifications.record('job:2:failed', 'failed', 'failed', {}, ['ops-mail'], silenced_by='patching', now=created)
    store.notifications.record('job:0:failed', 'failed', 'failed', {}, ['ops-hook'],
                               now=created - dt.timedelta(days=3))  # before the window

    found = figures(store, since=created - dt.timedelta(hours=36))
    assert found['lateness'] == {'count': 1, 'sum': pytest.approx(12.5, abs=1e-4), 'buckets': [0, 0, 1]}
    assert sorted(found['slots']) == [('nightly', 'fired', 1), ('nightly', 'missed', 1)]
    assert found['pools'] == [('backups', 4, 2), ('idle', 2, 0)]
    assert found['events_stored'] == 5
    assert found['backups'] == [('db1', T0 + dt.timedelta(hours=2), 5 * 2 ** 40), ('db2', None, None)]
    assert found['crontab'] == [('db1', 'observe', 1)]
    assert sorted(found['deliveries']) == [('ops-hook', 'pending', 1), ('ops-mail', 'silenced', 1)]
    store.binlogs.set_state('db1', 42.5, 'mysql-bin.000003', [], T0)
    store.binlogs.set_state('db2', None, 'mysql-bin.000001', [], T0)  # nothing archived yet: left out
    assert figures(store)['archive_lag'] == [('db1', 42.5)]
    # Drills: db1 (a successful backup) drilled ok then failed; db2 never backed up: not there.
    assert figures(store)['drills'] == [('db1', None, None, None, False)]
    good_end = T0 + dt.timedelta(days=1, seconds=30)
    store.drills.record('db1', 'ok', T0 + dt.timedelta(days=1), good_end, rto_seconds=30.0,
                        restored_to=T0 + dt.timedelta(hours=23))
    assert figures(store)['drills'] == [('db1', good_end, 30.0, 3600.0, False)]
    store.drills.record('db1', 'failed', T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=2, seconds=5))
    assert figures(store)['drills'] == [('db1', good_end, 30.0, 3600.0, True)]
    # A lease nobody renewed for the TTL is a dead holder's: not in use.
    stale = figures(store, now=dt.datetime.now(UTC) + dt.timedelta(seconds=61))
    assert stale['pools'] == [('backups', 4, 0), ('idle', 2, 0)]


def test_an_empty_store_has_figures_too(store):
    found = figures(store)
    assert found == dict(jobs=[], queues={}, durations={}, lateness={'count': 0, 'sum': 0.0, 'buckets': [0, 0, 0]},
                         slots=[], pools=[], events_stored=0, backups=[], crontab=[], deliveries=[], archive_lag=[],
                         drills=[])


def test_durations_are_exact_to_the_microsecond_across_a_second(store):
    """SQLite's date functions round to the millisecond; a run from .999999 of one second to .000001
    of the next is 2 microseconds, not 0 (nor 1 s), and a sum of many stays exact."""
    job, _ = store.jobs.create({**SPEC, 'template': 'edge'})
    start = T0.replace(microsecond=999999)
    store.jobs.transition(job['id'], 'running', worker='w1', started_at=start)
    store.jobs.transition(job['id'], 'successful', finished_at=start + dt.timedelta(microseconds=2))
    for _ in range(3):
        ran(store, 1.000123, template='edge')
    assert figures(store)['durations']['edge']['sum'] == pytest.approx(3.000371, abs=1e-9)
