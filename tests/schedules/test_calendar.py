"""The week's calendar at a fixed time: fire times, what a maintenance window does to them
(skip: no run; defer: the run at the window's end, its finish predicted from there), plan
predictions over tagged hosts and over an inventory file's hosts, and the notes where there is none."""

from __future__ import annotations

import datetime as dt

from runner_service.jobs import planner
from runner_service.schedules import calendar
from runner_service.schedules.triggers import trigger_of
from runner_service.schedules.windows import WindowService
from runner_service.schemas import JobTemplate, WindowCreate
from runner_service.worker.lanes import estimate_hosts
from tests.schedules.helpers import create

UTC = dt.timezone.utc
NOW = dt.datetime(2027, 3, 1, 12, 0, tzinfo=UTC)  # a Monday
PLAYBOOK = 'tests/service/playbooks/hello.yml'


def seeded(runtime):
    for host in ('db-a', 'db-b'):
        runtime.store.facts.record(host, {})
        runtime.store.tags.add(host, 'large', 'test')
        runtime.store.backups.record(host, method='logical', started_at=NOW - dt.timedelta(days=1),
                                     duration_seconds=600.0)
    planned = JobTemplate(playbook=PLAYBOOK, tags='large', plan={'lanes': 1})
    schedules = {
        'deferred': create(runtime, name='deferred', expression='0 2 * * *', job=planned, window_policy='defer'),
        'skipped': create(runtime, name='skipped', expression='0 2 * * *', job=planned),
        'on-file': create(runtime, name='on-file', expression='0 3 * * *',
                          job=JobTemplate(playbook=PLAYBOOK, inventory='tests/service/inventory.yml',
                                          plan={'lanes': 2})),
        'busy': create(runtime, name='busy', expression='*/5 * * * *'),
        'paused': create(runtime, name='paused', expression='0 4 * * *', paused=True),
    }
    for schedule in schedules.values():
        first = schedule['next_fire_at']
        runtime.store.schedules.update(schedule['id'], next_fire_at=trigger_of(schedule).next_after(NOW)
                                       if first is not None else None)
    WindowService(runtime).create(WindowCreate(name='tuesday', kind='absolute', start='2027-03-02T01:00:00',
                                               duration_seconds=2 * 3600, timezone='UTC'), 'admin')
    return schedules


def test_the_week_at_a_fixed_time(runtime):
    seeded(runtime)
    week = calendar.week(runtime, NOW)
    assert [day.date.isoformat() for day in week['days']] == ['2027-03-0%d' % day for day in range(1, 9)]
    slots = [slot for day in week['days'] for slot in day.slots]
    assert not [slot for slot in slots if slot.schedule['name'] == 'paused']
    assert week['more'] == ['busy']  # every 5 minutes: only the first MOST_PER_SCHEDULE shown
    nightly = {name: [slot for slot in slots if slot.schedule['name'] == name] for name in ('deferred', 'skipped')}
    assert [slot.at.day for slot in nightly['deferred']] == [2, 3, 4, 5, 6, 7, 8]
    tuesday_deferred, tuesday_skipped = nightly['deferred'][0], nightly['skipped'][0]
    assert (tuesday_deferred.blocked_by, tuesday_deferred.action) == ('tuesday', 'defer')
    # Two hosts of 10 min in one lane, and each one's start-up (nothing measured: the default): 20 min
    # and 2 x 3 s from the window's end at 03:00.
    assert tuesday_deferred.finish == dt.datetime(2027, 3, 2, 3, 20, 6, tzinfo=UTC)
    assert (tuesday_skipped.action, tuesday_skipped.finish) == ('skip', None)
    assert nightly['skipped'][1].finish == dt.datetime(2027, 3, 3, 2, 20, 6, tzinfo=UTC)
    [window] = [item for day in week['days'] for item in day.windows]
    assert window['name'] == 'tuesday' and window['start'] == dt.datetime(2027, 3, 2, 1, 0, tzinfo=UTC)
    # Over an inventory file: its hosts as Ansible lists them (node1..3, nothing measured: the default
    # estimate each), in two lanes - the same as the plan preview of that job.
    on_file = next(slot for slot in slots if slot.schedule['name'] == 'on-file')
    prediction = week['predictions'][on_file.schedule['id']]
    assert (prediction.hosts, prediction.lanes) == (3, 2) and prediction.seconds > 0
    estimates = estimate_hosts(runtime.store, ['node1', 'node2', 'node3'])
    assert prediction.seconds == max(lane.seconds for lane in planner.lanes(estimates, 2))
    assert on_file.finish == on_file.at + dt.timedelta(seconds=prediction.seconds)


def test_an_inventory_files_hosts_are_listed_once_and_a_limit_matching_nothing_is_said(runtime, monkeypatch):
    listings = []
    real = calendar.list_hosts
    monkeypatch.setattr(calendar, 'list_hosts', lambda *args: listings.append(args[1:]) or real(*args))
    monkeypatch.setattr(calendar, '_listed', {})
    for name, limit in (('one-node', 'node1'), ('no-node', 'nohost')):
        schedule = create(runtime, name=name, expression='0 3 * * *', job=JobTemplate(
            playbook=PLAYBOOK, inventory='tests/service/inventory.yml', limit=limit, plan={'lanes': 2}))
        runtime.store.schedules.update(schedule['id'], next_fire_at=trigger_of(schedule).next_after(NOW))
    first, again = calendar.week(runtime, NOW), calendar.week(runtime, NOW)
    by_name = {schedule['name']: schedule['id'] for schedule in runtime.store.schedules.list()}
    assert (first['predictions'][by_name['one-node']].hosts, again['predictions'][by_name['one-node']].lanes) == (1, 1)
    note = again['predictions'][by_name['no-node']].note
    assert again['predictions'][by_name['no-node']].seconds is None and 'listing the hosts failed' in note
    # node1's listing is kept; the failed one is asked again (it may be fixed by the next look).
    assert listings.count((PLAYBOOK, 'tests/service/inventory.yml', 'node1')) == 1
    assert listings.count((PLAYBOOK, 'tests/service/inventory.yml', 'nohost')) == 2
