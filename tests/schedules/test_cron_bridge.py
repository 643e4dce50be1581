"""The crontab bridge on the platform side, against a real store (both backends) and Redis, with
time passed in: imports keep provenance and are not duplicated, observed slots are recorded run
or missed, a taken-over slot runs once whoever claims it first, and edits become crontab lines."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid

import pytest

from runner_service.bridge import platform as bridge
from runner_service.bridge.crontab import as_cron_runs_it, parse
from runner_service.bridge.platform import CronBridge
from runner_service.errors import BadRequest, Conflict
from runner_service.schedules.loop import Scheduler
from runner_service.schedules.service import ScheduleService
from runner_service.schemas import CronReport, JobTemplate, ScheduleUpdate
from tests.crontab import cronref
from tests.schedules.helpers import CRON_FILE, import_text, minutely

TEXT = ('SHELL=/bin/bash\r\n'
        'CRON_TZ=Europe/Berlin\n'
        '# nightly dump, then the report\n'
        '30 1 * * MON-FRI  /usr/local/bin/backup.sh --all >> /var/log/backup.log 2>&1\n'
        '\n'
        '*/5 * * * * echo "load: $(cat /proc/loadavg)" \\% `date +\\%F`; mail -s x dba%body line\n'
        '@reboot /usr/bin/warm-cache\n'
        '61 * * * * this minute does not exist\n')


def report(runtime, schedule, started, phase='start', run_id=None, exit_code=None, fallback=False):
    body = CronReport(id=run_id or uuid.uuid4().hex, schedule_id=schedule['id'], host='db1', phase=phase,
                      fallback=fallback, started_at=started,
                      finished_at=started + dt.timedelta(seconds=1) if phase == 'end' else None,
                      exit_code=exit_code, duration_seconds=1.0 if phase == 'end' else None,
                      output_tail='done\n' if phase == 'end' else None)
    return CronBridge(runtime).report(body, 'agent-db1')


def test_import_keeps_provenance_and_reports_what_it_did_not_schedule(runtime):
    result = import_text(runtime, TEXT)
    assert [item['line'] for item in result['entries']] == [4, 6]
    nightly, every5 = (item['schedule'] for item in result['entries'])
    assert nightly['source']['original'] == \
        '30 1 * * MON-FRI  /usr/local/bin/backup.sh --all >> /var/log/backup.log 2>&1'
    assert nightly['source']['mode'] == 'observe' and nightly['source']['host'] == 'db1'
    assert nightly['source']['file'] == CRON_FILE.model_dump() and nightly['source']['line'] == 4
    assert (nightly['kind'], nightly['expression'], nightly['timezone']) == ('cron', '30 1 * * 1-5',
                                                                             'Europe/Berlin')
    assert nightly['source']['timing'] == '30 1 * * MON-FRI'
    command = every5['job']['extra_vars']['dbfleet_command']
    assert command['command'] == 'echo "load: $(cat /proc/loadavg)" % `date +%F`; mail -s x dba'
    assert command['stdin'] == 'body line\n' and command['shell'] == '/bin/bash'
    assert every5['job']['playbook'] == bridge.COMMAND_PLAYBOOK and every5['job']['limit'] == 'node1'
    assert every5['overlap'] == 'allow' and every5['catch_up'] == 'skip'  # as crontab behaves
    assert result['reboot'] == [{'line': 7, 'text': '@reboot /usr/bin/warm-cache'}]
    assert [error['line'] for error in result['errors']] == [8] and result['errors'][0]['reason']
    assert runtime.store.audit.list(action='cron.import.reboot')

    again = import_text(runtime, TEXT)
    assert [item['created'] for item in again['entries']] == [False, False]
    assert [item['schedule']['id'] for item in again['entries']] == [nightly['id'], every5['id']]
    assert len(CronBridge(runtime).bridged('db1')) == 2


def test_each_host_gets_its_own_entries(runtime):
    """What each host's agent asks for every minute: an index lookup by the source's host."""
    import_text(runtime, TEXT, host='db1')
    import_text(runtime, host='db2', text='15 2 * * * /usr/local/bin/rotate\n')
    bridge = CronBridge(runtime)
    assert {schedule['source']['host'] for schedule in bridge.bridged('db1')} == {'db1'}
    assert [schedule['source']['line'] for schedule in bridge.bridged('db2')] == [1]
    assert len(bridge.bridged()) == 3 and bridge.bridged('db3') == []


def test_observed_slots_are_recorded_run_or_missed(runtime):
    schedule = minutely(runtime, grace_seconds=30)
    slot = schedule['next_fire_at']
    scheduler = Scheduler(runtime)
    run, action = report(runtime, schedule, slot + dt.timedelta(seconds=2))
    assert action == 'run' and run['slot_at'] == slot and run['status'] == 'running'
    assert scheduler.tick(slot + dt.timedelta(seconds=29)) == []  # still inside the grace
    report(runtime, schedule, slot + dt.timedelta(seconds=2), phase='end', run_id=run['id'], exit_code=3)
    [first] = scheduler.tick(slot + dt.timedelta(seconds=31))
    assert first['outcome'] == 'fired' and run['id'] in first['reason'] and 'FAILED, exit 3' in first['reason']
    assert first['claimed_by'] == 'crontab'
    assert all(record['job_id'] is None for record in runtime.store.schedules.slots(schedule['id']))  # crontab ran it
    [second] = scheduler.tick(slot + dt.timedelta(seconds=60 + 31))
    assert second['outcome'] == 'missed' and 'no report from crontab' in second['reason']
    assert second['claimed_by'] is None
    history = CronBridge(runtime).history(schedule['id'])
    assert [item['state'] for item in history] == ['missed', 'failed']
    assert history[1]['run']['exit_code'] == 3 and history[1]['run']['output_tail'] == 'done\n'


def test_a_report_delivered_twice_is_one_run(runtime):
    schedule = minutely(runtime)
    slot = schedule['next_fire_at']
    run_id = uuid.uuid4().hex
    for _ in range(2):
        report(runtime, schedule, slot, run_id=run_id)
        report(runtime, schedule, slot, phase='end', run_id=run_id, exit_code=0)
    report(runtime, schedule, slot, run_id=run_id)  # a late start report does not reopen it
    [run] = runtime.store.cron.list_runs(schedule['id'])
    assert run['id'] == run_id and run['status'] == 'ok' and run['exit_code'] == 0


def test_a_taken_over_slot_runs_once_whoever_claims_it_first(runtime):
    schedule = minutely(runtime)
    CronBridge(runtime).set_mode(schedule['id'], 'takeover', 'admin')
    schedule = runtime.store.schedules.get(schedule['id'])
    slot = schedule['next_fire_at']
    scheduler = Scheduler(runtime)
    # Crontab first (the watchdog put the line back while the platform was away): it claims the slot.
    run, action = report(runtime, schedule, slot + dt.timedelta(seconds=1), fallback=True)
    assert action == 'run' and run['via'] == 'fallback'
    [outcome] = scheduler.tick(slot + dt.timedelta(seconds=2))
    assert outcome['job_id'] is None and outcome['claimed_by'] == 'crontab' and run['id'] in outcome['reason']
    # The platform first: its job runs, and crontab's run of the same slot stands down.
    following = slot + dt.timedelta(minutes=1)
    [outcome] = scheduler.tick(following + dt.timedelta(milliseconds=100))
    assert outcome['job_id'] is not None and outcome['claimed_by'] == 'platform'
    job = runtime.store.jobs.get(outcome['job_id'])
    assert job['playbook'] == bridge.COMMAND_PLAYBOOK
    late, action = report(runtime, schedule, following + dt.timedelta(seconds=1), fallback=True)
    assert action == 'skip' and late['status'] == 'skipped'
    jobs = [slot for slot in runtime.store.schedules.slots(schedule['id']) if slot['job_id']]
    assert len(jobs) == 1


def test_edits_become_the_crontab_line_where_crontab_can_follow(runtime):
    schedule = minutely(runtime, text='0 3 * * * pg_dump "db one" > /backups/$(date +\\%F).sql\n')
    service = CronBridge(runtime).schedules
    edited = service.update(schedule['id'], ScheduleUpdate(expression='*/10 2-4 * * *'), 'admin')
    assert edited['source']['original'] == '*/10 2-4 * * * pg_dump "db one" > /backups/$(date +\\%F).sql'
    with pytest.raises(Conflict, match='take it over first'):
        service.update(schedule['id'], ScheduleUpdate(expression='*/10 * * * * *'), 'admin')
    CronBridge(runtime).set_mode(schedule['id'], 'takeover', 'admin')
    fast = service.update(schedule['id'], ScheduleUpdate(expression='*/10 * * * * *'), 'admin')
    assert fast['source']['original'] == edited['source']['original']  # what revert brings back
    with pytest.raises(Conflict, match='5-field'):
        CronBridge(runtime).set_mode(schedule['id'], 'observe', 'admin')
    reverted = CronBridge(runtime).set_mode(schedule['id'], 'reverted', 'admin')
    assert reverted['paused'] and reverted['source']['mode'] == 'reverted'
    with pytest.raises(Conflict, match='reverted'):
        service.update(schedule['id'], ScheduleUpdate(expression='0 4 * * *'), 'admin')


def test_a_schedule_service_without_the_bridge_refuses_to_edit_a_crontab_entry(runtime):
    """Its crontab line would stay as it was, and the host's agent would write the old timing back."""
    schedule = minutely(runtime)
    with pytest.raises(RuntimeError, match='crontab bridge'):
        ScheduleService(runtime).update(schedule['id'], ScheduleUpdate(expression='*/10 * * * *'), 'admin')
    assert runtime.store.schedules.get(schedule['id'])['expression'] == schedule['expression']


def test_an_entry_holding_a_password_stays_crontabs_and_the_password_goes_nowhere(runtime):
    text = ('0 3 * * * mkdir -p /b && mysqldump --defaults-extra-file=/root/.my.cnf db > /b/db.sql\n'
            '0 2 * * * /usr/bin/mysqldump -uroot -pLineS3cret --all-databases | gzip > /b/all.gz\n'
            'MYSQL_PWD=EnvS3cret\n'
            '0 1 * * * mysqldump db\n')
    result = import_text(runtime, text=text)
    assert [item['line'] for item in result['entries']] == [1]
    refused = {note['line']: note['reason'] for note in result['warnings']}
    assert '-p<password>' in refused[2] and 'MYSQL_PWD' in refused[4]
    everything = repr(result) + repr(runtime.store.schedules.list()) + repr(runtime.store.audit.list())
    assert 'S3cret' not in everything


def test_a_bridged_entry_is_not_deleted_or_resumed_behind_crontabs_back(runtime):
    schedule = minutely(runtime)
    service = ScheduleService(runtime)
    with pytest.raises(Conflict, match='revert it first'):
        service.delete(schedule['id'], 'admin')  # its line still names the schedule
    CronBridge(runtime).set_mode(schedule['id'], 'reverted', 'admin')
    with pytest.raises(Conflict, match='crontab, which runs it'):
        service.resume(schedule['id'], 'admin')  # the platform would run it beside crontab
    service.delete(schedule['id'], 'admin')


CRLF_LINES = ['0 3 * * * echo end\r\n',
              '0 4 * * * printf "\\%s|" one two\r\n',
              '0 5 * * * cat -A%first%second\r\n']


@pytest.mark.parametrize('line', CRLF_LINES)
def test_a_crlf_line_runs_on_the_platform_with_its_carriage_return_as_cron_ran_it(runtime, line):
    """cron reads a line up to its \\n: the \\r goes to the shell with the command (or to stdin
    after a %). A taken-over entry runs exactly that, checked against the do_command.c oracle
    and by running both through /bin/sh."""
    schedule = minutely(runtime, text=line)
    command = schedule['job']['extra_vars']['dbfleet_command']
    body = line[:-1]  # what cron reads: everything before the \n, the \r included
    assert (command['command'], command['stdin']) == cronref.split_command(cronref.command_part(body))
    by_cron = cronref.run_like_cron(body)
    by_platform = subprocess.run(['/bin/sh', '-c', command['command']], input=(command['stdin'] or '').encode(),
                                 capture_output=True, timeout=30)
    assert by_platform.stdout == by_cron.stdout
    assert b'\r' in by_cron.stdout or b'^M' in by_cron.stdout  # cat -A shows the \r as ^M
    assert schedule['source']['original'] == line[:-2]


def test_a_crlf_entry_keeps_its_carriage_return_through_edits(runtime):
    schedule = minutely(runtime, text=CRLF_LINES[2])
    service = CronBridge(runtime).schedules
    edited = service.update(schedule['id'], ScheduleUpdate(expression='30 5 * * *'), 'admin')
    assert edited['source']['original'] == '30 5 * * * cat -A%first%second'
    [entry] = parse(edited['source']['original'] + '\r\n').entries
    command = edited['job']['extra_vars']['dbfleet_command']
    assert as_cron_runs_it(entry) == (command['command'], command['stdin']) == ('cat -A', 'first\nsecond\r\n')
    template = JobTemplate(**{key: value for key, value in edited['job'].items()
                              if key in JobTemplate.model_fields and key != 'tags'})
    template.extra_vars['dbfleet_command'] = dict(command, stdin='first\n')
    with pytest.raises(BadRequest, match='CRLF'):
        service.update(schedule['id'], ScheduleUpdate(job=template), 'admin')
    template.extra_vars['dbfleet_command'] = dict(command, stdin='other\r\n')
    changed = service.update(schedule['id'], ScheduleUpdate(job=template), 'admin')
    assert changed['source']['original'] == '30 5 * * * cat -A%other'
def test_a_claim_left_by_a_scheduler_that_died_is_launched_by_the_next_pass(runtime):
    """A taken-over slot is claimed (claimed_by 'platform', fired, no job yet) before its job is
    launched; a scheduler that died in between left the claim, and the next pass launches the
    slot's job and settles the claim. Crontab's late run of that slot stands down."""
    schedule = minutely(runtime)
    CronBridge(runtime).set_mode(schedule['id'], 'takeover', 'admin')
    schedule = runtime.store.schedules.get(schedule['id'])
    slot = schedule['next_fire_at']
    _, claimed = runtime.store.schedules.record_slot(schedule['id'], slot, 'fired', 'platform')
    assert claimed and runtime.store.schedules.slot(schedule['id'], slot)['job_id'] is None
    [outcome] = Scheduler(runtime).tick(slot + dt.timedelta(seconds=1))
    assert outcome['claimed_by'] == 'platform' and outcome['outcome'] == 'fired' and outcome['job_id']
    late, action = report(runtime, schedule, slot + dt.timedelta(seconds=2), fallback=True)
    assert action == 'skip' and late['status'] == 'skipped'
    with pytest.raises(ValueError, match='claimed_by'):
        runtime.store.schedules.record_slot(schedule['id'], slot, 'missed', 'platform')


def test_the_loop_sleeps_while_an_observed_slot_waits_for_its_report(runtime):
    """An observed entry's slot is due but waits for crontab's report until its grace is over:
    the loop slept 0 s after each such pass, and spun on the store for the whole grace."""
    from runner_service.schedules.loop import MAX_SLEEP
    schedule = minutely(runtime, grace_seconds=30)
    slot = schedule['next_fire_at']
    scheduler = Scheduler(runtime)
    assert scheduler.pass_once(slot - dt.timedelta(seconds=0.2)) == pytest.approx(0.2)
    assert scheduler.pass_once(slot + dt.timedelta(seconds=1)) == MAX_SLEEP  # waiting: no spin
    assert scheduler.pass_once(slot + dt.timedelta(seconds=31)) == MAX_SLEEP  # recorded missed; next slot later
    assert runtime.store.schedules.slot(schedule['id'], slot)['outcome'] == 'missed'
