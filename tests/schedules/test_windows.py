"""Maintenance windows against a real store (SQLite and MariaDB) and Redis, with time passed in:
slots inside a window are skipped, or deferred into one run at its end, for the schedules in its
scope; previews show it; bad windows are refused with the reason."""

from __future__ import annotations

import datetime as dt
import threading

import pydantic
import pytest

from dbfleet.store import UnknownWindow
from runner_service.api.routes.schedules import schedule_view
from runner_service.errors import BadRequest, NotFound
from runner_service.schedules.loop import Scheduler
from runner_service.schedules.service import ScheduleService
from runner_service.schedules.windows import Window, WindowService
from runner_service.schemas import JobTemplate, ScheduleUpdate, WindowCreate
from tests.schedules.helpers import create, slot_jobs

UTC = dt.timezone.utc
BERLIN = 'Europe/Berlin'


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def window(runtime, name='saturday-night', kind='recurring', start='0 1 * * 6', duration_seconds=2 * 3600,
           timezone=BERLIN, **options):
    return WindowService(runtime).create(WindowCreate(name=name, kind=kind, start=start,
                                                      duration_seconds=duration_seconds, timezone=timezone,
                                                      **options), 'admin')


def fire_at(runtime, schedule, slot, scheduler=None):
    """Put the schedule's next slot at `slot` (resumed, if it was created paused) and run a pass
    then: what the slot did. Other schedules are paused or not due then."""
    runtime.store.schedules.update(schedule['id'], next_fire_at=slot, paused=False)
    [outcome] = (scheduler or Scheduler(runtime)).tick(slot)
    return outcome


def tick_together(schedulers, now):
    """One pass of every scheduler at `now`, each in its thread, released at the same moment."""
    barrier = threading.Barrier(len(schedulers))
    threads = [threading.Thread(target=lambda scheduler=scheduler: (barrier.wait(), scheduler.tick(now)))
               for scheduler in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_window_occurrences_in_local_time_across_dst():
    row = dict(id='w', name='w', kind='recurring', start='0 1 * * 6', duration_seconds=7200, timezone=BERLIN,
               tags=None)
    saturday_night = Window.from_row(row)
    # Saturday 01:00-03:00 in Berlin: 00:00-02:00 UTC in winter, Friday 23:00 - Saturday 01:00 UTC in summer.
    assert saturday_night.active_at(at('2027-03-20T01:30:00+00:00')) == (at('2027-03-20T00:00:00+00:00'),
                                                                         at('2027-03-20T02:00:00+00:00'))
    assert saturday_night.active_at(at('2027-04-03T01:30:00+00:00')) is None
    assert saturday_night.active_at(at('2027-04-02T23:30:00+00:00')) == (at('2027-04-02T23:00:00+00:00'),
                                                                         at('2027-04-03T01:00:00+00:00'))
    # [start, end): the start is inside, the end outside.
    assert saturday_night.active_at(at('2027-03-20T00:00:00+00:00')) is not None
    assert saturday_night.active_at(at('2027-03-20T02:00:00+00:00')) is None
    assert saturday_night.occurrences(at('2027-03-20T01:00:00+00:00'), at('2027-04-04T00:00:00+00:00')) == [
        (at('2027-03-20T00:00:00+00:00'), at('2027-03-20T02:00:00+00:00')),
        (at('2027-03-27T00:00:00+00:00'), at('2027-03-27T02:00:00+00:00')),
        (at('2027-04-02T23:00:00+00:00'), at('2027-04-03T01:00:00+00:00'))]
    # A start that does not exist (clocks jump 02:00 -> 03:00) begins as much later, as cron does;
    # a window lasts real time, so one over the change back ends an hour earlier on the wall clock.
    spring = Window.from_row(dict(row, start='30 2 * * 0'))
    assert spring.active_at(at('2027-03-28T01:45:00+00:00'))[0] == at('2027-03-28T03:30:00+02:00')
    autumn = Window.from_row(dict(row, start='0 2 * * 0'))
    assert autumn.active_at(at('2027-10-31T01:59:00+00:00')) == (at('2027-10-31T02:00:00+02:00'),
                                                                 at('2027-10-31T03:00:00+01:00'))
    # Occurrences starting every minute: the latest one that began counts.
    busy = Window.from_row(dict(row, start='* * * * *', duration_seconds=86400, timezone='UTC'))
    assert busy.active_at(at('2027-01-01T12:34:56+00:00'))[0] == at('2027-01-01T12:34:00+00:00')


def test_a_recurring_window_skips_the_slots_inside_it(runtime):
    window(runtime)
    schedule = create(runtime, name='nightly', expression='30 1 * * *', timezone=BERLIN, overlap='allow')
    assert schedule['window_policy'] == 'skip'
    scheduler = Scheduler(runtime)
    friday = fire_at(runtime, schedule, at('2027-01-08T01:30:00+01:00'), scheduler)
    assert friday['outcome'] == 'fired'
    assert runtime.store.schedules.get('nightly')['next_fire_at'] == at('2027-01-09T01:30:00+01:00')
    [saturday] = scheduler.tick(at('2027-01-09T01:30:00+01:00'))
    assert saturday['outcome'] == 'skipped' and saturday['job_id'] is None
    assert saturday['reason'] == 'inside maintenance window saturday-night (until 2027-01-09T03:00:00+01:00)'
    assert runtime.store.schedules.get('nightly')['next_fire_at'] == at('2027-01-10T01:30:00+01:00')
    [sunday] = scheduler.tick(at('2027-01-10T01:30:00+01:00'))
    assert sunday['outcome'] == 'fired'


def test_the_window_follows_its_own_time_zone_across_dst(runtime):
    window(runtime)
    schedule = create(runtime, name='utc-saturday', expression='30 1 * * 6', overlap='allow')
    assert fire_at(runtime, schedule, at('2027-03-20T01:30:00+00:00'))['outcome'] == 'skipped'  # 02:30 CET
    assert fire_at(runtime, schedule, at('2027-04-03T01:30:00+00:00'))['outcome'] == 'fired'  # 03:30 CEST


def test_an_absolute_window(runtime):
    window(runtime, name='migration', kind='absolute', start='2027-06-01T10:00:00', duration_seconds=3600)
    schedule = create(runtime, name='every-10m', expression='*/10 * * * *', overlap='allow')
    runtime.store.schedules.update(schedule['id'], next_fire_at=at('2027-06-01T07:50:00+00:00'))
    scheduler = Scheduler(runtime)
    outcomes = [outcome for minutes in range(0, 80, 10)
                for outcome in scheduler.tick(at('2027-06-01T07:50:00+00:00') + dt.timedelta(minutes=minutes))]
    assert [outcome['outcome'] for outcome in outcomes] == ['fired'] + ['skipped'] * 6 + ['fired']
    assert outcomes[1]['reason'] == 'inside maintenance window migration (until 2027-06-01T09:00:00+00:00)'


def test_defer_fires_one_job_at_the_window_end_with_two_schedulers(make_runtime):
    first, second = make_runtime(), make_runtime()
    window(first, name='upgrade', kind='absolute', start='2027-06-01T08:05:00Z', duration_seconds=42 * 60)
    schedule = create(first, name='deferred', expression='*/10 * * * *', overlap='allow', window_policy='defer')
    assert schedule['window_policy'] == 'defer' and schedule_view(schedule).window_policy == 'defer'
    start = at('2027-06-01T08:00:00+00:00')
    first.store.schedules.update(schedule['id'], next_fire_at=start)
    schedulers = [Scheduler(first), Scheduler(second)]
    for minute in range(56):
        tick_together(schedulers, start + dt.timedelta(minutes=minute, milliseconds=100))
    slots = sorted(first.store.schedules.slots(schedule['id'], limit=100), key=lambda slot: slot['slot_at'])
    assert [(slot['slot_at'].strftime('%H:%M'), slot['outcome']) for slot in slots] == [
        ('08:00', 'fired'), ('08:10', 'skipped'), ('08:20', 'skipped'), ('08:30', 'skipped'), ('08:40', 'skipped'),
        ('08:47', 'fired'), ('08:50', 'fired')]
    assert slots[1]['reason'] == 'deferred to the end of maintenance window upgrade (2027-06-01T08:47:00+00:00)'
    end = at('2027-06-01T08:47:00+00:00')
    deferred = first.store.jobs.get(slots[5]['job_id'])
    assert deferred['idempotency_key'] == 'schedule:%s:%s' % (schedule['id'], end.isoformat())
    jobs = [job for job in first.store.jobs.list(limit=1000)['jobs'] if job['created_by'] == 'schedule:deferred']
    assert len(jobs) == 3 == len(slot_jobs(first, schedule['id']))
    assert first.store.schedules.get(schedule['id'])['next_fire_at'] == at('2027-06-01T09:00:00+00:00')


def test_defer_of_a_recurring_window_between_trigger_slots(runtime):
    window(runtime)
    schedule = create(runtime, name='nightly-defer', expression='30 1 * * *', timezone=BERLIN, window_policy='defer')
    scheduler = Scheduler(runtime)
    assert fire_at(runtime, schedule, at('2027-01-09T01:30:00+01:00'), scheduler)['outcome'] == 'skipped'
    end = at('2027-01-09T03:00:00+01:00')
    assert runtime.store.schedules.get(schedule['id'])['next_fire_at'] == end
    assert scheduler.tick(end - dt.timedelta(seconds=1)) == []
    [deferred] = scheduler.tick(end)
    assert deferred['outcome'] == 'fired' and deferred['slot_at'] == end
    assert runtime.store.schedules.get(schedule['id'])['next_fire_at'] == at('2027-01-10T01:30:00+01:00')


def test_tag_scope(runtime):
    runtime.store.tags.add('db-eu', 'eu', 'test')
    runtime.store.tags.add('db-eu', 'large', 'test')
    runtime.store.tags.add('db-us', 'us', 'test')
    window(runtime, name='eu-only', kind='absolute', start='2027-06-01T10:00:00Z', duration_seconds=3600, tags='eu')
    playbook = 'tests/service/playbooks/hello.yml'
    large, us, usa = (create(runtime, name=name, paused=True, job=JobTemplate(playbook=playbook, tags=tags))
                      for name, tags in (('large', 'large'), ('us', 'us or large'), ('usa', 'us')))
    on_file = create(runtime, name='file', paused=True)
    inside = at('2027-06-01T10:30:00+00:00')
    windows = WindowService(runtime)
    assert [bool(windows.blocking(schedule, inside)) for schedule in (large, us, usa, on_file)] == [
        True, True, False, False]
    assert fire_at(runtime, large, inside)['outcome'] == 'skipped'
    assert fire_at(runtime, usa, inside)['outcome'] == 'fired'
    # An unscoped window covers every schedule, an inventory file's too.
    window(runtime, name='everything', kind='absolute', start='2027-06-01T10:15:00Z', duration_seconds=3600)
    block = windows.blocking(on_file, inside)
    assert block[0].name == 'everything' and block[1] == at('2027-06-01T11:15:00+00:00')
    assert windows.blocking(large, inside)[0].name == 'everything'  # of the two, the one ending last


def test_preview_shows_blocked_times(runtime):
    window(runtime)
    service = ScheduleService(runtime)
    schedule = create(runtime, name='nightly', expression='30 1 * * *', timezone=BERLIN, overlap='allow')
    runtime.store.schedules.update(schedule['id'], next_fire_at=at('2027-01-08T01:30:00+01:00'))
    _, times, blocked = service.preview('nightly', 9)
    assert [time.isoformat() for time in times[:3]] == [
        '2027-01-08T01:30:00+01:00', '2027-01-09T01:30:00+01:00', '2027-01-10T01:30:00+01:00']
    assert blocked == [
        dict(time=times[1], window='saturday-night', action='skip', until=at('2027-01-09T03:00:00+01:00')),
        dict(time=times[8], window='saturday-night', action='skip', until=at('2027-01-16T03:00:00+01:00'))]
    assert blocked[0]['until'].isoformat() == '2027-01-09T03:00:00+01:00'
    service.update('nightly', ScheduleUpdate(window_policy='defer'), 'admin')
    assert {entry['action'] for entry in service.preview('nightly', 9)[2]} == {'defer'}
    assert runtime.store.schedules.get('nightly')['window_policy'] == 'defer'


def test_windows_are_stored_listed_and_deleted(runtime):
    service = WindowService(runtime)
    created = window(runtime, tags='eu and not replica', description='patching')
    assert service.get(created['id']) == service.get('saturday-night') == created
    assert created['created_by'] == 'admin' and created['tags'] == 'eu and not replica'
    assert [row['name'] for row in service.list()] == ['saturday-night']
    assert len(service.upcoming(created, 3)) == 3
    assert service.delete('saturday-night', 'admin')['id'] == created['id']
    assert service.list() == []
    with pytest.raises(NotFound, match="no maintenance window 'saturday-night'"):
        service.get('saturday-night')
    with pytest.raises(UnknownWindow):
        runtime.store.windows.delete(created['id'])


def test_bad_windows_are_refused(runtime):
    with pytest.raises(BadRequest, match="start: cron: '99 1 \\* \\* 6' is not a valid expression"):
        window(runtime, start='99 1 * * 6')
    with pytest.raises(BadRequest, match='start: once: .* is not an ISO time'):
        window(runtime, kind='absolute', start='next saturday')
    with pytest.raises(BadRequest, match='is over already'):
        window(runtime, kind='absolute', start='2020-01-01T00:00:00Z')
    with pytest.raises(BadRequest, match="timezone: unknown time zone 'Mars/Olympus'"):
        window(runtime, timezone='Mars/Olympus')
    with pytest.raises(BadRequest, match='tags: '):
        window(runtime, tags='eu and (')
    for duration in (0, 31 * 86400 + 1):
        with pytest.raises(pydantic.ValidationError, match='duration_seconds'):
            window(runtime, duration_seconds=duration)
    window(runtime)
    with pytest.raises(BadRequest, match="a maintenance window named 'saturday-night' already exists"):
        window(runtime)
