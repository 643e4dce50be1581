"""The scheduler against a real store and Redis, with time passed in: slots fire once, policies
hold, missed slots are caught up as asked, and two schedulers never fire a slot twice."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from dbfleet.clock import utcnow
from runner_service.api.routes.schedules import schedule_view
from runner_service.errors import BadRequest
from runner_service.schedules.loop import Scheduler, jitter
from runner_service.schedules.service import ScheduleService
from runner_service.schemas import JobTemplate, ScheduleUpdate
from runner_service.secret_box import MASK
from tests.schedules.helpers import create, minutely, slot_jobs

UTC = dt.timezone.utc
def test_a_due_slot_fires_one_job_and_moves_on(runtime):
    schedule = create(runtime)
    slot = schedule['next_fire_at']
    assert slot.second % 10 == 0 and slot.microsecond == 0 and slot > utcnow() - dt.timedelta(seconds=1)
    scheduler = Scheduler(runtime)
    assert scheduler.tick(slot - dt.timedelta(milliseconds=1)) == []
    [outcome] = scheduler.tick(slot + dt.timedelta(milliseconds=50))
    assert outcome['outcome'] == 'fired'
    job = runtime.store.jobs.get(outcome['job_id'])
    assert job['idempotency_key'] == 'schedule:%s:%s' % (schedule['id'], slot.isoformat())
    assert job['created_by'] == 'schedule:every-10s' and job['status'] == 'queued'
    after = runtime.store.schedules.get(schedule['id'])
    assert after['next_fire_at'] == slot + dt.timedelta(seconds=10)
    assert after['last_job_id'] == job['id']
    assert scheduler.tick(slot + dt.timedelta(seconds=1)) == []


def test_two_schedulers_fire_every_slot_exactly_once(make_runtime):
    first, second = make_runtime(), make_runtime()
    schedule = create(first, expression='* * * * * *', overlap='allow')
    start = schedule['next_fire_at']
    schedulers = [Scheduler(first), Scheduler(second)]
    for step in range(20):
        now = start + dt.timedelta(seconds=step, milliseconds=100)
        barrier = threading.Barrier(2)

        def run(scheduler):
            barrier.wait()
            scheduler.tick(now)

        threads = [threading.Thread(target=run, args=(scheduler,)) for scheduler in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    fired = slot_jobs(first, schedule['id'])
    assert len(fired) == 20 and len({slot['job_id'] for slot in fired}) == 20
    jobs = first.store.jobs.list(limit=1000)['jobs']
    assert len([job for job in jobs if job['created_by'] == 'schedule:every-10s']) == 20
    assert first.store.schedules.get(schedule['id'])['next_fire_at'] == start + dt.timedelta(seconds=20)


@pytest.mark.parametrize('overlap', ['forbid', 'allow', 'replace'])
def test_overlap_policies(runtime, overlap):
    schedule = create(runtime, name='overlap-' + overlap, overlap=overlap)
    slot = schedule['next_fire_at']
    scheduler = Scheduler(runtime)
    [first] = scheduler.tick(slot)
    assert first['outcome'] == 'fired'  # no worker here: that job stays queued, "still running"
    [second] = scheduler.tick(slot + dt.timedelta(seconds=10))
    previous = runtime.store.jobs.get(first['job_id'])
    if overlap == 'forbid':
        assert second['outcome'] == 'skipped' and 'still queued (overlap: forbid)' in second['reason']
        assert previous['status'] == 'queued'
    elif overlap == 'allow':
        assert second['outcome'] == 'fired' and previous['status'] == 'queued'
    else:
        assert second['outcome'] == 'fired' and previous['status'] == 'canceled'
    assert runtime.store.schedules.get(schedule['id'])['next_fire_at'] == slot + dt.timedelta(seconds=20)


@pytest.mark.parametrize('catch_up', ['skip', 'once'])
def test_missed_slots_after_the_scheduler_was_down(runtime, catch_up):
    schedule = create(runtime, name='nightly', expression='*/10 * * * * *', misfire_grace_seconds=5,
                      catch_up=catch_up)
    slot = schedule['next_fire_at']
    back = slot + dt.timedelta(seconds=65)  # down for a minute: slots +0 ... +60 passed
    outcomes = Scheduler(runtime).tick(back)
    missed = [outcome for outcome in outcomes if outcome['outcome'] == 'missed']
    fired = [outcome for outcome in outcomes if outcome['outcome'] == 'fired']
    if catch_up == 'skip':
        assert len(missed) == 7 and fired == []
    else:
        assert len(missed) == 6 and len(fired) == 1
        assert fired[0]['slot_at'] == slot + dt.timedelta(seconds=60)
        assert 'latest of 7 missed slots' in fired[0]['reason']
    assert 'beyond the misfire grace of 5 s' in missed[0]['reason']
    assert runtime.store.schedules.get(schedule['id'])['next_fire_at'] == slot + dt.timedelta(seconds=70)


def test_a_late_slot_within_the_grace_still_fires(runtime):
    schedule = create(runtime, misfire_grace_seconds=30)
    [outcome] = Scheduler(runtime).tick(schedule['next_fire_at'] + dt.timedelta(seconds=8))
    assert outcome['outcome'] == 'fired'


def test_jitter_is_the_same_everywhere_and_bounded(runtime):
    schedule = create(runtime, jitter_seconds=7)
    slot = schedule['next_fire_at']
    delays = {jitter(schedule, slot + dt.timedelta(seconds=10 * step)) for step in range(50)}
    assert all(dt.timedelta(0) <= delay <= dt.timedelta(seconds=7) for delay in delays) and len(delays) > 3
    delay = jitter(schedule, slot)
    scheduler = Scheduler(runtime)
    if delay:
        assert scheduler.tick(slot + delay - dt.timedelta(milliseconds=1)) == []
    assert scheduler.tick(slot + delay)[0]['outcome'] == 'fired'


def test_pause_and_resume(runtime):
    schedule = create(runtime)
    service = ScheduleService(runtime)
    service.pause(schedule['id'], 'admin')
    slot = schedule['next_fire_at']
    assert Scheduler(runtime).tick(slot + dt.timedelta(seconds=30)) == []
    resumed = service.resume('every-10s', 'admin')
    assert resumed['paused'] is False and resumed['next_fire_at'] > utcnow() - dt.timedelta(seconds=1)
    assert runtime.store.schedules.slots(schedule['id']) == []  # nothing caught up from the pause


def test_deadline_after_and_secrets_reach_the_job(runtime):
    template = JobTemplate(playbook='tests/service/playbooks/echo_vars.yml', inventory='tests/service/inventory.yml',
                           extra_vars={'db_password': 'Sched-Secret-77', 'region': 'eu'})
    schedule = create(runtime, name='with-secret', job=template, deadline_after=600)
    assert schedule['job']['extra_vars'] == {'db_password': MASK, 'region': 'eu'}
    assert 'Sched-Secret-77' not in str(runtime.store.schedules.get(schedule['id']))
    slot = schedule['next_fire_at']
    [outcome] = Scheduler(runtime).tick(slot)
    job = runtime.store.jobs.get(outcome['job_id'])
    assert job['deadline'] == slot + dt.timedelta(seconds=600)
    assert job['extra_vars']['db_password'] == MASK
    assert runtime.secrets.open(job['secret_vars']) == {'db_password': 'Sched-Secret-77'}
    # Sending the template back as GET shows it (masked) keeps the secret.
    shown = schedule_view(schedule).job
    ScheduleService(runtime).update('with-secret', ScheduleUpdate(job=JobTemplate(
        **dict(shown, extra_vars={'db_password': MASK, 'region': 'us'}))), 'admin')
    updated = runtime.store.schedules.get(schedule['id'])
    assert runtime.secrets.open(updated['secret_vars']) == {'db_password': 'Sched-Secret-77'}
    assert updated['job']['extra_vars']['region'] == 'us'


def test_changing_the_trigger_recomputes_the_next_fire(runtime):
    schedule = create(runtime)
    updated = ScheduleService(runtime).update(schedule['id'], ScheduleUpdate(expression='0 3 * * *',
                                                                             timezone='Europe/Berlin'), 'admin')
    local = updated['next_fire_at'].astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert updated['expression'] == '0 3 * * *' and local.minute == 0


def test_bad_schedules_are_refused(runtime):
    service = ScheduleService(runtime)
    with pytest.raises(BadRequest, match='unknown time zone'):
        create(runtime, timezone='Nowhere/City')
    with pytest.raises(BadRequest, match="playbook 'nope.yml'"):
        create(runtime, job=JobTemplate(playbook='nope.yml', inventory='tests/service/inventory.yml'))
    with pytest.raises(BadRequest, match='never fires from now on'):
        create(runtime, kind='once', expression='2020-01-01T00:00:00Z')
    create(runtime, name='taken')
    with pytest.raises(BadRequest, match="a schedule named 'taken' already exists"):
        create(runtime, name='taken')
    assert service.preview('taken', 3)[1][0].tzinfo is not None


def test_a_one_shot_fires_once_and_stops(runtime):
    at = (utcnow() + dt.timedelta(seconds=30)).replace(microsecond=0)
    schedule = create(runtime, name='once', kind='once', expression=at.isoformat())
    assert schedule['next_fire_at'] == at
    [outcome] = Scheduler(runtime).tick(at)
    assert outcome['outcome'] == 'fired'
    assert runtime.store.schedules.get('once')['next_fire_at'] is None
    assert Scheduler(runtime).tick(at + dt.timedelta(days=1)) == []


def test_after_makes_each_run_wait_for_the_latest_run_of_another_schedule(runtime):
    from runner_service.schemas import ScheduleDependency
    backup = create(runtime, name='backup', expression='0 * * * * *')
    report = create(runtime, name='report', expression='30 * * * * *', overlap='allow',
                    after=[ScheduleDependency(schedule='backup', on='always')])
    assert report['job']['after'] == [{'schedule': backup['id'], 'on': 'always'}]
    scheduler = Scheduler(runtime)
    backup_slot = backup['next_fire_at']
    scheduler.tick(backup_slot + dt.timedelta(milliseconds=10))  # the report may fire too: nothing to wait for
    first_backup = runtime.store.schedules.get(backup['id'])['last_job_id']
    report_slot = runtime.store.schedules.get(report['id'])['next_fire_at']
    assert report_slot == backup_slot + dt.timedelta(seconds=30)
    [outcome] = scheduler.tick(report_slot + dt.timedelta(milliseconds=10))
    assert runtime.store.jobs.get(outcome['job_id'])['depends_on'] == [{'job_id': first_backup, 'on': 'always'}]
    with pytest.raises(BadRequest, match='after: no schedule'):
        create(runtime, name='orphan', after=[ScheduleDependency(schedule='nope')])
    with pytest.raises(BadRequest, match='itself'):
        ScheduleService(runtime).update('report', ScheduleUpdate(after=[ScheduleDependency(schedule='report')]),
                                        'admin')


def test_a_redis_flush_and_a_scheduler_restart_lose_no_slot_and_double_none(make_runtime):
    from runner_service.jobs.reconciler import reconcile
    first = make_runtime()
    schedule = create(first, expression='* * * * * *', overlap='allow')
    start = schedule['next_fire_at']
    Scheduler(first).tick(start + dt.timedelta(milliseconds=100))
    first.redis.flushall()  # the queue forgets the job it held
    restarted = make_runtime()  # a new scheduler process: nothing but the store to go on
    for step in (0, 1, 2, 2):  # slot 0 again (it fired), then two more, one of them twice
        Scheduler(restarted).tick(start + dt.timedelta(seconds=step, milliseconds=200))
    fired = slot_jobs(restarted, schedule['id'])
    assert sorted(slot['slot_at'] for slot in fired) == [start + dt.timedelta(seconds=step) for step in range(3)]
    assert len({slot['job_id'] for slot in fired}) == 3
    counts = reconcile(restarted)  # what the API's reconciler does: the store's queued jobs back in Redis
    assert counts['enqueued'] == 1  # the flushed one; the two later ones went to Redis when they fired
    jobs = [restarted.store.jobs.get(slot['job_id']) for slot in fired]
    assert [job['status'] for job in jobs] == ['queued'] * 3
    assert restarted.queue.present([(job['id'], job['queue'], job['enqueued_at']) for job in jobs]) == {job['id'] for job in jobs}


def slots_between(runtime, schedule_id):
    return sorted(slot['slot_at'] for slot in runtime.store.schedules.slots(schedule_id, limit=1000))


@pytest.mark.parametrize('kind', ['cron', 'takeover'])
def test_changing_a_cron_schedule_to_an_interval_fires_once_per_interval(runtime, kind):
    """`dbfleet schedules update NAME --every 15s` on a cron schedule (or a taken-over crontab
    entry) fired a slot on every pass: the interval's first fire (its anchor) was kept in the
    job template only when the template changed too, so the trigger read back was anchored at
    'now' on every pass, and each pass's 'next slot' was that pass's now."""
    if kind == 'cron':
        schedule = create(runtime, name='was-cron', expression='0 3 * * *', overlap='allow')
        service = ScheduleService(runtime)
    else:
        from runner_service.bridge.platform import CronBridge
        schedule = minutely(runtime, text='0 3 * * * /usr/bin/true\n')
        CronBridge(runtime).set_mode(schedule['id'], 'takeover', 'admin')
        service = CronBridge(runtime).schedules  # a crontab entry's edits go through its bridge
    updated = service.update(schedule['id'], ScheduleUpdate(kind='interval', expression='15s'), 'admin')
    start = updated['next_fire_at']
    scheduler = Scheduler(runtime)
    for step in range(400):  # 40 s of passes, ten a second
        scheduler.tick(start + dt.timedelta(milliseconds=100 * step))
    slots = slots_between(runtime, schedule['id'])
    assert slots == [start + dt.timedelta(seconds=15 * step) for step in range(3)]
    assert runtime.store.schedules.get(schedule['id'])['next_fire_at'] == start + dt.timedelta(seconds=45)


def test_an_interval_schedule_records_each_slot_once(runtime):
    """One slot was recorded twice, 12 us apart (fired, then skipped): create computed the first
    fire from a trigger anchored at one 'now' and stored another 'now' as the anchor, so the
    slot after the first was the first again, moved by the microseconds between the two."""
    schedule = create(runtime, name='every-15s', kind='interval', expression='15s', overlap='forbid')
    first = schedule['next_fire_at']
    scheduler = Scheduler(runtime)
    for step in range(20):
        scheduler.tick(first + dt.timedelta(milliseconds=step))
    assert slots_between(runtime, schedule['id']) == [first]
    assert runtime.store.schedules.get(schedule['id'])['next_fire_at'] == first + dt.timedelta(seconds=15)


def test_a_job_launched_for_a_slot_another_scheduler_skipped_is_canceled(runtime):
    """Two schedulers, one slot, different views of the last run (it ended between their reads):
    one records the slot skipped while the other launches its job. The first record stays,
    and the job it does not name is canceled, so no job runs that the slot record hides."""
    schedule = create(runtime, name='raced', overlap='forbid')
    slot = schedule['next_fire_at']
    scheduler = Scheduler(runtime)
    launch = scheduler.jobs.launch

    def launch_while_the_other_skips(*args, **kwargs):
        job, created = launch(*args, **kwargs)
        runtime.store.schedules.record_slot(schedule['id'], slot, 'skipped', 'platform', reason='the other scheduler')
        return job, created

    scheduler.jobs.launch = launch_while_the_other_skips
    [outcome] = scheduler.tick(slot)
    assert outcome['outcome'] == 'skipped' and outcome['reason'] == 'the other scheduler'
    [job] = [job for job in runtime.store.jobs.list(limit=10)['jobs'] if job['created_by'] == 'schedule:raced']
    assert job['status'] == 'canceled'


def test_the_loop_passes_again_at_once_only_while_it_makes_progress(runtime):
    schedule = create(runtime, name='catching-up', expression='* * * * * *', misfire_grace_seconds=30,
                      overlap='allow')
    slot = schedule['next_fire_at']
    scheduler = Scheduler(runtime)
    late = slot + dt.timedelta(seconds=3, milliseconds=500)  # slots +0 ... +3 due, within the grace
    assert [scheduler.pass_once(late) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    assert len(slot_jobs(runtime, schedule['id'])) == 4


def test_the_reconciler_tells_what_redis_holds_and_enqueues_the_rest(runtime):
    """What `JobQueue.present` counts as held: a job waiting in its queue or scheduled for later;
    not one whose id is listed but whose job hash is gone, nor one Redis never had. The
    reconciler enqueues exactly the others, once."""
    from rq.job import Job as RQJob

    from runner_service.jobs.reconciler import reconcile
    from runner_service.jobs.service import JobService
    from runner_service.schemas import JobCreate
    service = JobService(runtime)

    def launched(queue: str) -> dict:
        job, _ = service.launch(JobCreate(playbook='tests/service/playbooks/hello.yml',
                                          inventory='tests/service/inventory.yml', limit='node1', queue=queue),
                                actor='test')
        return job

    waiting, later, hashless, forgotten = (launched('presence') for _ in range(4))
    runtime.queue.queue('presence').remove(later['id'])
    runtime.queue.enqueue(runtime.store.jobs.get(later['id']), delay_seconds=3600)
    runtime.redis.delete(RQJob.key_for(hashless['id']))
    runtime.queue.queue('presence').remove(forgotten['id'])
    queued = [item for item in runtime.store.jobs.pending() if item[1] == 'presence']
    assert runtime.queue.present(queued) == {waiting['id'], later['id']}
    assert reconcile(runtime)['enqueued'] == 2
    assert runtime.queue.present(queued) == {item[0] for item in queued}
    assert reconcile(runtime)['enqueued'] == 0


def test_between_full_passes_the_reconciler_checks_recent_jobs_unless_redis_may_have_lost_data(runtime):
    """A Reconciler checks every queued job at its first pass and every DBFLEET_RECONCILE_FULL_SECONDS;
    between, the jobs queued since its last pass (less a minute); at once all of them again when
    Redis may have lost data: flushed (the epoch key is gone) or another server (its run id)."""
    import sqlalchemy as sa

    from dbfleet.store.models import Job
    from runner_service.jobs.reconciler import Presence, reconcile
    from runner_service.jobs.service import JobService
    from runner_service.schemas import JobCreate
    service = JobService(runtime)

    def launched() -> dict:
        job, _ = service.launch(JobCreate(playbook='tests/service/playbooks/hello.yml',
                                          inventory='tests/service/inventory.yml', limit='node1', queue='recent'),
                                actor='test')
        return job

    def forget(job: dict) -> None:  # Redis loses it (or never got it: the launch's enqueue was refused)
        runtime.queue.queue('recent').remove(job['id'])

    def queued_long_ago(job: dict) -> None:
        with runtime.store._engine.begin() as connection:
            connection.execute(sa.update(Job).where(Job.id == job['id']).values(
                enqueued_at=utcnow().replace(tzinfo=None) - dt.timedelta(hours=1)))

    clock = [0.0]
    presence = Presence(300, clock=lambda: clock[0])
    old = launched()
    queued_long_ago(old)
    assert reconcile(runtime, presence)['enqueued'] == 0  # the first pass checks all: held
    forget(old)
    recent = launched()
    forget(recent)
    assert reconcile(runtime, presence)['enqueued'] == 1  # only the recent one is checked
    assert runtime.queue.present(runtime.store.jobs.pending(enqueued_since=utcnow() - dt.timedelta(minutes=5))) == {
        recent['id']}
    clock[0] = 301  # a full pass is due: the old one is found
    assert reconcile(runtime, presence)['enqueued'] == 1
    forget(old)
    clock[0] = 302
    assert reconcile(runtime, presence)['enqueued'] == 0  # recent passes again: not seen
    runtime.redis.delete('dbfleet:epoch')  # a FLUSHALL would take it too
    assert reconcile(runtime, presence)['enqueued'] == 1
    forget(old)
    presence.epoch = ('another run id', presence.epoch[1])  # what a failover to another server looks like
    assert reconcile(runtime, presence)['enqueued'] == 1
    assert reconcile(runtime, presence)['enqueued'] == 0


def test_the_reconciler_prunes_old_events_when_asked(runtime):
    """DBFLEET_KEEP_EVENTS_DAYS: the API's reconciler loop prunes at once, then hourly."""
    import time

    from dbfleet.clock import utcnow
    from runner_service.jobs.reconciler import Reconciler
    job, _ = runtime.store.jobs.create(dict(playbook='tests/service/playbooks/hello.yml',
                                            inventory='tests/service/inventory.yml'))
    runtime.store.jobs.transition(job['id'], 'running', worker='w1')
    runtime.store.jobs.transition(job['id'], 'successful', finished_at=utcnow() - dt.timedelta(days=11))
    runtime.store.events.add(job['id'], [dict(seq=1, event='playbook_on_start'), dict(seq=2, event='playbook_on_stats')])
    runtime.settings.keep_events_days = 10
    reconciler = Reconciler(runtime, interval=0.05).start()
    try:
        deadline = time.monotonic() + 30
        while runtime.store.events.last_seq(job['id']):
            assert time.monotonic() < deadline, 'the events were not pruned'
            time.sleep(0.05)
    finally:
        reconciler.stop()
    assert runtime.store.jobs.get(job['id'])['status'] == 'successful'


def test_a_schedules_window_end_reaches_each_run_from_its_slot(runtime):
    """No host of a run starts after its window end (runner_service.worker.lanes): the schedule
    carries it relative to each slot, as seconds or a time of day in its zone."""
    planned = JobTemplate(playbook='tests/service/playbooks/hello.yml', inventory='tests/service/inventory_many.yml',
                          plan={'lanes': 2})
    schedule = create(runtime, name='windowed', job=planned, window_end_after=1800)
    assert schedule_view(schedule).window_end_after == 1800 and 'window_end_after' not in schedule_view(schedule).job
    slot = schedule['next_fire_at']
    [outcome] = Scheduler(runtime).tick(slot)
    job = runtime.store.jobs.get(outcome['job_id'])
    assert job['plan'] == {'lanes': 2, 'window_end': (slot + dt.timedelta(seconds=1800)).isoformat().replace(
        '+00:00', 'Z')}
    service = ScheduleService(runtime)
    at = service.update('windowed', ScheduleUpdate(window_end_at='05:30', window_end_after=None), 'admin')
    assert (at['job']['window_end_at'], at['job']['window_end_after']) == ('05:30', None)
    assert at['job']['plan']['lanes'] == 2  # what it runs is kept
    # Changing what it runs keeps the window end.
    kept = service.update('windowed', ScheduleUpdate(deadline_after=7200), 'admin')
    assert kept['job']['window_end_at'] == '05:30'
    # Without a plan the play starts all its hosts at once: nothing could stop starting them.
    with pytest.raises(BadRequest, match='plan'):
        create(runtime, name='no-plan', job=JobTemplate(playbook='tests/service/playbooks/hello.yml',
                                                        inventory='tests/service/inventory_many.yml'),
               window_end_after=60)
