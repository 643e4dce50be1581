"""`dbfleet schedules`, `pools`, `plans` and planned `jobs`, end to end: the real CLI as a
subprocess against a real API, Redis, workers and two schedulers."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time

import pytest

from tests.helpers import one_line_error
from devtools.service_harness import INVENTORY, PLAYBOOKS, Service

pytestmark = pytest.mark.service

HELLO = '%s/hello.yml' % PLAYBOOKS
MANY = 'tests/service/inventory_many.yml'
HOSTS = ['host%d' % index for index in range(1, 9)]


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('service'), schedulers=2).start()
    yield service
    service.stop()


def cli(service, *args, role: str = 'admin', ok: bool = True) -> subprocess.CompletedProcess:
    completed = service.dbfleet(*args, token=service.tokens[role])
    if ok:
        assert completed.returncode == 0, (completed.stdout, completed.stderr)
    return completed


def as_json(service, *args, role: str = 'admin'):
    return json.loads(cli(service, *args, '--json', role=role).stdout)


def test_a_per_second_schedule_fires_then_is_changed_paused_resumed_and_deleted(service):
    created = cli(service, 'schedules', 'create', 'cli-tick', HELLO, '--cron', '* * * * * *', '--overlap', 'allow',
                  '-i', INVENTORY, '--limit', 'node1', '-e', 'greeting=hi')
    assert 'cli-tick' in created.stdout and 'cron * * * * * * (UTC)' in created.stdout
    assert 'active' in created.stdout
    time.sleep(5)
    paused = cli(service, 'schedules', 'pause', 'cli-tick')
    assert paused.stdout.strip() == 'schedule cli-tick paused; next fire none (paused)'

    slots = as_json(service, 'schedules', 'slots', 'cli-tick', '--limit', '100', role='viewer')
    fired = [slot for slot in slots if slot['outcome'] == 'fired']
    assert len(fired) >= 3
    table = cli(service, 'schedules', 'slots', 'cli-tick', role='viewer').stdout
    assert 'slot (UTC)' in table and fired[0]['job_id'] in table and '%d slot(s)' % len(slots) in table
    jobs = as_json(service, 'jobs', 'list', '--limit', '200', role='viewer')['jobs']
    scheduled = sorted(job['id'] for job in jobs if job['created_by'] == 'schedule:cli-tick')
    assert scheduled == sorted(slot['job_id'] for slot in fired)
    for job_id in scheduled:
        done = service.wait(job_id)
        assert done['status'] == 'successful' and done['limit'] == 'node1'
        assert done['extra_vars'] == {'greeting': 'hi'}

    listed = cli(service, 'schedules', 'list', role='viewer').stdout
    row = next(line for line in listed.splitlines() if line.startswith('cli-tick'))
    assert 'paused' in row and HELLO in row

    updated = as_json(service, 'schedules', 'update', 'cli-tick', '--cron', '30 2 * * *', '--tz', 'Europe/Berlin',
                      '--limit', 'node2', '--jitter', '5')
    assert (updated['kind'], updated['expression'], updated['timezone']) == ('cron', '30 2 * * *', 'Europe/Berlin')
    assert updated['jitter_seconds'] == 5 and updated['overlap'] == 'allow'
    assert updated['job']['limit'] == 'node2' and updated['job']['inventory'] == INVENTORY
    assert updated['job']['extra_vars'] == {'greeting': 'hi'}, 'options not given stay as they were'

    preview = cli(service, 'schedules', 'preview', 'cli-tick', '-n', '3', role='viewer').stdout
    times = [line.split()[1:3] for line in preview.splitlines() if line.split()[:1] in (['1'], ['2'], ['3'])]
    assert 'fire time (Europe/Berlin)' in preview and len(times) == 3
    assert all(clock in ('02:30:00+01:00', '02:30:00+02:00', '03:30:00+02:00') for _, clock in times)

    resumed = cli(service, 'schedules', 'resume', 'cli-tick').stdout
    assert resumed.startswith('schedule cli-tick resumed; next fire ') and '02:30:00+0' in resumed
    shown = cli(service, 'schedules', 'show', 'cli-tick', role='viewer').stdout
    assert 'active' in shown and 'node2' in shown and 'Europe/Berlin' in shown
    assert cli(service, 'schedules', 'delete', 'cli-tick').stdout.strip() == 'schedule cli-tick deleted'
    assert 'cli-tick' in one_line_error(cli(service, 'schedules', 'show', 'cli-tick', role='viewer', ok=False))


def test_changing_a_cron_schedule_to_every_n_seconds_fires_once_per_interval(service):
    """`schedules update NAME --every` on a cron schedule fired a slot on every scheduler pass
    (660 jobs in 40 s): now its slots are one interval apart, through the CLI, the API and two
    schedulers, and each fired slot has one job."""
    cli(service, 'schedules', 'create', 'cli-was-cron', HELLO, '--cron', '0 3 * * *', '--overlap', 'allow',
        '-i', INVENTORY, '--limit', 'node1')
    updated = as_json(service, 'schedules', 'update', 'cli-was-cron', '--every', '2s')
    assert (updated['kind'], updated['expression']) == ('interval', '2s')
    first = dt.datetime.fromisoformat(updated['next_fire_at'])
    assert first == dt.datetime.fromisoformat(updated['start_at']) + dt.timedelta(seconds=2)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        slots = as_json(service, 'schedules', 'slots', 'cli-was-cron', '--limit', '1000', role='viewer')
        if len(slots) >= 3:
            break
        time.sleep(0.5)
    cli(service, 'schedules', 'pause', 'cli-was-cron')
    slots = as_json(service, 'schedules', 'slots', 'cli-was-cron', '--limit', '1000', role='viewer')
    times = sorted(dt.datetime.fromisoformat(slot['slot_at']) for slot in slots)
    assert len(times) >= 3 and times == [first + dt.timedelta(seconds=2 * step) for step in range(len(times))]
    assert all(slot['outcome'] == 'fired' and slot['claimed_by'] == 'platform' for slot in slots)
    jobs = as_json(service, 'jobs', 'list', '--limit', '200', role='viewer')['jobs']
    assert sorted(job['id'] for job in jobs if job['created_by'] == 'schedule:cli-was-cron') == \
        sorted(slot['job_id'] for slot in slots)
    back = as_json(service, 'schedules', 'update', 'cli-was-cron', '--cron', '*/5 * * * *')
    assert (back['kind'], back['start_at']) == ('cron', None)
    cli(service, 'schedules', 'delete', 'cli-was-cron')


def test_a_once_schedule_with_a_rolling_plan_then_lanes(service):
    schedule = as_json(service, 'schedules', 'create', 'cli-once', HELLO, '--at', '2099-01-01T03:00:00',
                       '--tz', 'Europe/Paris', '-i', MANY, '--rolling', '1,50%', '--max-fail', '10',
                       '--misfire-grace', '5m', '--deadline-after', '2h', '--catch-up', 'skip', '--paused',
                       '--window-policy', 'defer')
    assert schedule['kind'] == 'once' and schedule['paused'] is True and schedule['next_fire_at'].startswith('2099')
    assert schedule['job']['plan']['rolling'] == [1, '50%'] and schedule['job']['plan']['max_fail_percentage'] == 10
    assert (schedule['misfire_grace_seconds'], schedule['deadline_after'], schedule['catch_up'],
            schedule['window_policy']) == (300, 7200, 'skip', 'defer')
    preview = as_json(service, 'schedules', 'preview', schedule['id'], role='viewer')
    assert preview['times'] == ['2099-01-01T03:00:00+01:00']
    changed = as_json(service, 'schedules', 'update', 'cli-once', '--lanes', '3')
    assert {key: value for key, value in changed['job']['plan'].items() if value is not None} == {'lanes': 3}
    assert changed['job']['inventory'] == MANY and changed['kind'] == 'once'
    cli(service, 'schedules', 'delete', schedule['id'])


def test_a_maintenance_window_marks_the_schedules_preview(service):
    cli(service, 'schedules', 'create', 'cli-nightly', HELLO, '--cron', '30 2 * * *', '--tz', 'Europe/Berlin',
        '-i', INVENTORY, '--window-policy', 'defer')
    times = as_json(service, 'schedules', 'preview', 'cli-nightly', '-n', '5', role='viewer')['times']
    covered = dt.datetime.fromisoformat(times[2])
    start = (covered - dt.timedelta(minutes=10)).replace(tzinfo=None).isoformat()
    made = cli(service, 'windows', 'create', 'cli-upgrade', '--at', start, '--duration', '1h', '--tz', 'Europe/Berlin',
               '--description', 'db upgrade').stdout
    assert made.startswith('window cli-upgrade: at %s (Europe/Berlin) for 1h; next ' % start), made
    row = next(line for line in cli(service, 'windows', 'list', role='viewer').stdout.splitlines()
               if line.startswith('cli-upgrade'))
    assert ' 1h ' in row and 'every schedule' in row and row.rstrip().endswith('db upgrade')

    preview = cli(service, 'schedules', 'preview', 'cli-nightly', '-n', '5', role='viewer').stdout
    rows = [line for line in preview.splitlines() if line[:1].isdigit()]
    until = (covered + dt.timedelta(minutes=50)).isoformat(sep=' ')
    assert rows[2].rstrip().endswith('deferred: in cli-upgrade until %s' % until), rows
    assert [row for row in rows if 'cli-upgrade' in row] == [rows[2]]

    bad = one_line_error(cli(service, 'windows', 'create', 'bad', '--cron', '0 25 * * *', '--duration', '1h', ok=False))
    assert 'start: cron' in bad
    assert 'one of' in one_line_error(cli(service, 'windows', 'create', 'x', '--duration', '1h', ok=False))
    assert '--duration' in one_line_error(cli(service, 'windows', 'create', 'x', '--at', start, '--duration', 'soon',
                                              ok=False))
    assert cli(service, 'windows', 'delete', 'cli-upgrade').stdout.strip() == 'window cli-upgrade deleted'
    assert as_json(service, 'schedules', 'preview', 'cli-nightly', '-n', '5', role='viewer')['blocked'] == []
    cli(service, 'schedules', 'delete', 'cli-nightly')


def test_pools_set_list_and_delete(service):
    assert cli(service, 'pools', 'set', 'cli-pool', '3', '--description', 'backups').stdout.strip() == \
        'pool cli-pool: 3 slots, 0 in use'
    row = next(line for line in cli(service, 'pools', 'list', role='viewer').stdout.splitlines()
               if line.startswith('cli-pool'))
    assert row.split() == ['cli-pool', '3', '0', 'backups']
    assert as_json(service, 'pools', 'set', 'cli-pool', '5')['slots'] == 5
    assert [pool['slots'] for pool in as_json(service, 'pools', 'list', role='viewer')
            if pool['name'] == 'cli-pool'] == [5]
    assert cli(service, 'pools', 'delete', 'cli-pool').stdout.strip() == 'pool cli-pool deleted'
    assert 'cli-pool' in one_line_error(cli(service, 'pools', 'delete', 'cli-pool', ok=False))
    assert 'SLOTS' in one_line_error(cli(service, 'pools', 'set', 'cli-pool', '0', ok=False))


def test_plan_preview_warns_when_the_run_overruns_its_window(service):
    hosts = ','.join('planned%d' % index for index in range(1, 9))  # unknown: 60 s each and 3 s of start-up
    completed = cli(service, 'plans', 'preview', '--hosts', hosts, '--lanes', '3', '--start', '2026-11-28T01:00:00Z',
                    '--window-end', '2026-11-28T01:00:30Z', role='viewer')
    lanes = [line.split() for line in completed.stdout.splitlines() if line[:1].isdigit()]
    assert [words[0] for words in lanes] == ['0', '1', '2']
    assert sorted(word.strip(',') for words in lanes for word in words if word.startswith('planned')) == \
        sorted(hosts.split(','))
    assert 'predicted finish: 2026-11-28 01:03:09+00:00 (189 s)' in completed.stdout
    assert 'lower bound: 168 s' in completed.stdout
    assert 'window ends: 2026-11-28 01:00:30+00:00: overruns' in completed.stdout
    assert 'warning: predicted to overrun the window by 159 s' in completed.stdout
    assert completed.stderr.startswith('dbfleet: warning: predicted to overrun the window')

    fits = cli(service, 'plans', 'preview', '--hosts', hosts, '--lanes', '8', '--start', '2026-11-28T01:00:00Z',
               '--window-end', '23:59', role='viewer')
    assert fits.stderr == '' and 'warning' not in fits.stdout
    by_playbook = as_json(service, 'plans', 'preview', HELLO, '-i', MANY, '--limit', 'host1,host2', '--lanes', '2',
                          role='viewer')
    assert sorted(host['host'] for lane in by_playbook['lanes'] for host in lane['hosts']) == ['host1', 'host2']
    neither = one_line_error(cli(service, 'plans', 'preview', '--lanes', '2', role='viewer', ok=False))
    assert '--hosts/--tags/PLAYBOOK' in neither and 'exactly one' in neither


def test_launch_with_lanes_waits_and_show_prints_the_timeline(service):
    completed = cli(service, 'jobs', 'launch', HELLO, '-i', MANY, '--lanes', '2', '--wait', role='admin')
    job_id = completed.stdout.split()[1]
    assert completed.stdout.rstrip().splitlines()[-1] == 'job %s successful' % job_id
    shown = cli(service, 'jobs', 'show', job_id, role='viewer').stdout
    assert '2 lanes' in shown
    header = next(line.split() for line in shown.splitlines() if line.split()[:2] == ['lane', 'host'])
    assert header == ['lane', 'host', 'status', 'worker', 'start', 'end', 'took', 's', 'estimate', 's']
    timeline = [line.split() for line in shown.splitlines() if line.split()[1:2] and line.split()[1] in HOSTS]
    assert sorted(words[1] for words in timeline) == HOSTS
    assert {words[0] for words in timeline} == {'0', '1'} and {words[2] for words in timeline} == {'ok'}
    assert all(re.fullmatch(r'\S+/\d+', words[3]) for words in timeline)  # the worker (host/pid) that ran it
    assert all(float(words[8]) >= 0 and float(words[9]) > 0 for words in timeline)  # took, estimate
    assert 'estimate s' in completed.stdout, '--wait ends with the timeline too'


def test_bad_input_fails_with_one_line_and_exit_2(service):
    bad_cron = one_line_error(cli(service, 'schedules', 'create', 'bad', HELLO, '-i', INVENTORY, '--cron',
                                  '99 * * * *', ok=False))
    assert "cron: '99 * * * *' is not a valid expression" in bad_cron
    assert 'nope' in one_line_error(cli(service, 'schedules', 'show', 'nope', role='viewer', ok=False))
    assert 'nope' in one_line_error(cli(service, 'schedules', 'preview', 'nope', role='viewer', ok=False))
    both = one_line_error(cli(service, 'jobs', 'launch', HELLO, '-i', MANY, '--lanes', '2', '--rolling', '1,2',
                              role='admin', ok=False))
    assert 'not both' in both
    assert 'one of' in one_line_error(cli(service, 'schedules', 'create', 'x', HELLO, '-i', INVENTORY, ok=False))
    assert 'one of' in one_line_error(cli(service, 'schedules', 'create', 'x', HELLO, '-i', INVENTORY, '--cron',
                                          '* * * * *', '--every', '1h', ok=False))
    assert '--overlap' in one_line_error(cli(service, 'schedules', 'create', 'x', HELLO, '-i', INVENTORY, '--every',
                                             '1h', '--overlap', 'sometimes', ok=False))
    assert 'goes with rolling batches' in one_line_error(cli(service, 'jobs', 'launch', HELLO, '-i', MANY, '--lanes',
                                                             '2', '--max-fail', '10', role='admin', ok=False))
    assert 'needs admin' in one_line_error(cli(service, 'schedules', 'create', 'x', HELLO, '-i', INVENTORY,
                                               '--every', '1h', role='operator', ok=False))
    assert 'nothing to change' in one_line_error(cli(service, 'schedules', 'update', 'x', ok=False))


def test_notify_subscribes_notifiers_on_create_and_edit_and_refuses_bad_pairs(service):
    with service.client('admin') as admin:
        for name in ('ops-hook', 'night-hook'):
            made = admin.post('/api/v1/notifiers', json={'name': name, 'kind': 'webhook',
                                                         'url': 'http://127.0.0.1:9/%s' % name})
            assert made.status_code == 201, made.text
    created = cli(service, 'schedules', 'create', 'cli-notified', HELLO, '-i', INVENTORY, '--every', '1h',
                  '--paused', '--notify', 'slot_missed=ops-hook', '--notify', 'failed=ops-hook',
                  '--notify', 'failed=night-hook')
    assert 'slot_missed: ops-hook; failed: ops-hook, night-hook' in ' '.join(created.stdout.split())
    shown = as_json(service, 'schedules', 'show', 'cli-notified', role='viewer')
    assert shown['notify'] == {'slot_missed': ['ops-hook'], 'failed': ['ops-hook', 'night-hook']}
    # On edit the whole set replaces the old one; other options stay as they were.
    edited = as_json(service, 'schedules', 'edit', 'cli-notified', '--notify', 'slot_skipped=night-hook')
    assert edited['notify'] == {'slot_skipped': ['night-hook']} and edited['paused'] is True
    assert as_json(service, 'schedules', 'update', 'cli-notified', '--notify', 'failed=ops-hook')['notify'] == \
        {'failed': ['ops-hook']}
    refusals = {
        ('--notify', 'failed'): 'give EVENT=NOTIFIER',
        ('--notify', '=ops-hook'): 'give EVENT=NOTIFIER',
        ('--notify', 'failed=nobody'): "no notifier 'nobody'",
        ('--notify', 'exploded=ops-hook'): "--notify: Input should be 'failed'",
        ('--notify', 'failed=../../etc/passwd'): '--notify: String should match pattern',
        ('--notify', 'failed=%s' % ('n' * 300)): '--notify: String should have at most 255 characters',
    }
    for args, reason in refusals.items():
        assert reason in one_line_error(cli(service, 'schedules', 'edit', 'cli-notified', *args, ok=False)), args
        assert reason in one_line_error(cli(service, 'schedules', 'create', 'cli-refused', HELLO, '-i', INVENTORY,
                                            '--every', '1h', *args, ok=False)), args
    assert as_json(service, 'schedules', 'show', 'cli-notified', role='viewer')['notify'] == {'failed': ['ops-hook']}
    assert 'has role viewer' in one_line_error(cli(service, 'schedules', 'edit', 'cli-notified', '--notify',
                                                  'failed=night-hook', role='viewer', ok=False))
    assert 'needs admin' in one_line_error(cli(service, 'schedules', 'edit', 'cli-notified', '--notify',
                                               'failed=night-hook', role='operator', ok=False))
    # A notifier a schedule names cannot be deleted under it.
    with service.client('admin') as admin:
        in_use = admin.delete('/api/v1/notifiers/ops-hook')
    assert in_use.status_code == 409 and 'schedule cli-notified' in in_use.text
    cli(service, 'schedules', 'delete', 'cli-notified')
