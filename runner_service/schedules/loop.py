"""The cron loop: fires due schedule slots as jobs, exactly once, whatever runs beside it.

    dbfleet scheduler        # or inside `dbfleet up`

Each pass reads the schedules whose next slot is due from the store. For a slot it decides:
- late beyond the schedule's misfire grace (the scheduler was down): every slot up to now is
  recorded missed, and with catch_up 'once' the latest of them fires anyway;
- inside a maintenance window in the schedule's scope (runner_service.schedules.windows): the slot is
  skipped; with window_policy 'defer' the next slot becomes the window's end when that comes
  first, so however many slots the window covers, one job fires at its end (keyed by that end);
- the last run still going: overlap 'forbid' skips the slot, 'replace' cancels that run first,
  'allow' fires anyway;
- otherwise the slot fires: a job launched through JobService with the idempotency key
  'schedule:<id>:<slot>'.
then moves next_fire_at on by compare-and-set (on the next fire and the schedule's updated_at as
read: an edit made meanwhile wins). Two schedulers racing on one slot launch the
same job (the key), record one slot (its primary key) and advance once (the compare-and-set);
one that dies between launching and advancing finds the slot's job again on restart. Nothing
is kept in memory between passes, so a restart or a Redis flush loses nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading

from dbfleet.clock import utcnow
from dbfleet.store import TERMINAL_STATUSES, UnknownSchedule, is_launching
from runner_service.errors import ServiceError
from runner_service.jobs.service import JobService, schedule_key
from runner_service.runtime import Runtime
from runner_service.schedules.provenance import crontab_mode
from runner_service.schedules.service import SCHEDULE_ONLY, SCHEDULE_WINDOW
from runner_service.schedules.triggers import TriggerError, trigger_of, zone
from runner_service.schedules.windows import Block, WindowService, block_reason, deferred_next
from runner_service.schemas import Dependency, JobCreate, JobTemplate
from runner_service.templates.service import TemplateService, window_end

log = logging.getLogger(__name__)

MAX_SLEEP = 0.5  # new and changed schedules are seen within this
MISSED_RECORDED = 100  # a long outage records its latest missed slots, not thousands


def jitter(schedule: dict, slot: dt.datetime) -> dt.timedelta:
    """The same delay for a slot in every scheduler process (derived, not random)."""
    if not schedule['jitter_seconds']:
        return dt.timedelta(0)
    digest = hashlib.sha256(('%s/%s' % (schedule['id'], slot.isoformat())).encode()).digest()
    return dt.timedelta(seconds=int.from_bytes(digest[:8], 'big') % (schedule['jitter_seconds'] + 1))


class Scheduler:
    def __init__(self, runtime: Runtime, name: str = 'scheduler'):
        self.runtime = runtime
        self.store = runtime.store
        self.jobs = JobService(runtime)
        self.templates = TemplateService(runtime)
        self.windows = WindowService(runtime)
        self.name = name

    def run(self, stopped: threading.Event) -> None:
        while not stopped.is_set():
            stopped.wait(self.pass_once())
        self._passed(stopping=True)

    def pass_once(self, now: dt.datetime | None = None) -> float:
        """One pass of the loop; how long to sleep before the next. At once when the pass did
        something and more is due; else until the next fire, at most MAX_SLEEP. A schedule that
        is due but waits (its jitter, an observed entry's grace) does not count as more to do:
        the loop would spin on it, reading the store thousands of times a second."""
        now = now or utcnow()
        try:
            did = self.tick(now)
            next_due = self.store.schedules.next_due_at()
        except Exception as exc:  # the store away for a moment: try again shortly
            log.warning('scheduler pass failed: %s', exc)
            return MAX_SLEEP
        self._passed()
        if next_due is None or (next_due <= now and not did):
            return MAX_SLEEP
        return min(MAX_SLEEP, max(0.0, (next_due - now).total_seconds()))

    def _passed(self, stopping: bool = False) -> None:
        """Tell /healthz this loop is alive (its last pass), or that it stopped."""
        try:
            if stopping:
                self.runtime.queue.scheduler_stopped(self.name)
            else:
                self.runtime.queue.scheduler_passed(self.name, utcnow())
        except Exception:  # Redis away: /healthz says so itself
            pass

    def tick(self, now: dt.datetime | None = None) -> list[dict]:
        """One pass over the due schedules; returns what each slot did."""
        now = now or utcnow()
        outcomes = []
        for schedule in self.store.schedules.due(now):
            try:
                outcomes.extend(self._handle(schedule, now))
            except Exception:
                log.exception('schedule %s: pass failed', schedule['name'])
        return outcomes

    def _handle(self, schedule: dict, now: dt.datetime) -> list[dict]:
        if crontab_mode(schedule) == 'observe':
            return self._observe(schedule, now)
        slot = schedule['next_fire_at']
        if slot + jitter(schedule, slot) > now:
            return []
        try:
            trigger = trigger_of(schedule)
        except TriggerError as exc:  # e.g. a time zone this machine lacks: stop it, say why
            self.store.schedules.update(schedule['id'], paused=True)
            self._record(schedule, slot, 'skipped', reason='paused: %s' % exc)
            return []
        late = (now - slot - jitter(schedule, slot)).total_seconds()
        if late <= schedule['misfire_grace_seconds']:
            block = self.windows.blocking(schedule, slot)
            outcome = self._fire(schedule, slot, now, block=block)
            following = deferred_next(trigger.next_after(slot), block, schedule['window_policy'])
            self.store.schedules.advance(schedule['id'], slot, following, fired_job=outcome.get('job_id'), fired_at=now,
                                         updated_at=schedule['updated_at'])
            return [outcome]
        # Missed: every slot up to now.
        missed = [slot]
        following = trigger.next_after(slot)
        while following is not None and following + jitter(schedule, following) <= now:
            missed.append(following)
            following = trigger.next_after(following)
            if len(missed) > 100000:
                break
        fire = missed[-1] if schedule['catch_up'] == 'once' else None
        outcomes = []
        for old in missed[-MISSED_RECORDED:]:
            if old != fire:
                outcomes.append(self._record(schedule, old, 'missed', reason='%.0f s late, beyond the misfire grace of '
                                             '%d s (was the scheduler down?)' % ((now - old).total_seconds(),
                                                                                 schedule['misfire_grace_seconds'])))
        if fire is not None:
            block = self.windows.blocking(schedule, fire)
            outcomes.append(self._fire(schedule, fire, now, catching_up=len(missed), block=block))
            following = deferred_next(following, block, schedule['window_policy'])
        job_id = next((outcome.get('job_id') for outcome in outcomes if outcome.get('outcome') == 'fired'), None)
        self.store.schedules.advance(schedule['id'], slot, following, fired_job=job_id, fired_at=now if job_id else None,
                                     updated_at=schedule['updated_at'])
        return outcomes

    def _observe(self, schedule: dict, now: dt.datetime) -> list[dict]:
        """A crontab entry in observe mode: crontab fires it; once a slot's grace is over, record
        the slot as run (with what the wrapper reported) or missed."""
        grace = dt.timedelta(seconds=schedule['misfire_grace_seconds'])
        trigger = trigger_of(schedule)
        slot, outcomes = schedule['next_fire_at'], []
        while slot is not None and slot + grace <= now and len(outcomes) < MISSED_RECORDED:
            run = self.store.cron.run_for_slot(schedule['id'], slot)
            if run is None:
                outcomes.append(self._record(schedule, slot, 'missed', reason='no report from crontab by %s (the '
                                             'slot plus a grace of %d s)' % ((slot + grace).isoformat(),
                                                                             schedule['misfire_grace_seconds'])))
            else:
                state = {'running': 'still running', 'ok': 'exit 0'}.get(run['status'], 'FAILED, exit %s'
                                                                           % run['exit_code'])
                outcomes.append(self._record(schedule, slot, 'fired', claimed_by='crontab',
                                             reason='crontab ran it: run %s, %s' % (run['id'], state)))
            slot = trigger.next_after(slot)
        if outcomes:
            self.store.schedules.advance(schedule['id'], schedule['next_fire_at'], slot, updated_at=schedule['updated_at'])
        return outcomes

    def _fire(self, schedule: dict, slot: dt.datetime, now: dt.datetime, catching_up: int = 0,
              block: Block | None = None) -> dict:
        done = self.store.schedules.slot(schedule['id'], slot)
        if done is not None and not is_launching(done):
            return done  # another scheduler got here first, or crontab ran it (a bridged entry's fallback)
        claimed = done is not None  # claimed by a pass that died before settling it: launch it again
        if block is not None:
            return self._settle(schedule, slot, claimed, 'skipped', reason=block_reason(
                block, schedule['window_policy'], zone(schedule['timezone'])))
        actor = 'schedule:%s' % schedule['name']
        previous = self.store.jobs.get(schedule['last_job_id']) if schedule['last_job_id'] else None
        if previous is not None and previous['status'] not in TERMINAL_STATUSES:
            if schedule['overlap'] == 'forbid':
                return self._settle(schedule, slot, claimed, 'skipped', reason='the last run %s is still %s '
                                    '(overlap: forbid)' % (previous['id'], previous['status']))
            if schedule['overlap'] == 'replace':
                try:
                    self.jobs.cancel(previous['id'], actor)
                except ServiceError:  # it ended meanwhile
                    pass
        template = {key: value for key, value in schedule['job'].items() if key not in SCHEDULE_ONLY}
        try:
            depends_on = self._depends_on(schedule)
        except UnknownSchedule as exc:
            return self._settle(schedule, slot, claimed, 'skipped', reason='after: %s' % exc)
        deadline = None
        if schedule['job'].get('deadline_after'):
            deadline = slot + dt.timedelta(seconds=schedule['job']['deadline_after'])
        if crontab_mode(schedule) == 'takeover' and not claimed:
            # Crontab may run this slot too (its watchdog re-enabled the line while the platform
            # was away): claim the slot before launching, so that one of the two stands down.
            record, claimed = self.store.schedules.record_slot(schedule['id'], slot, 'fired', claimed_by='platform')
            if not claimed and not is_launching(record):
                return record
            claimed = True
        key = schedule_key(schedule['id'], slot)
        # The schedule's own window end (relative to the slot) wins over its template's.
        closes = window_end({**{name: schedule['job'].get(name) for name in SCHEDULE_WINDOW},
                             'window_timezone': schedule['timezone']}, slot)
        try:
            if template.get('template'):  # checked against the template as it is now
                job, _ = self.templates.launch_slot(schedule, slot, actor, deadline=deadline, depends_on=depends_on,
                                                    idempotency_key=key, closes=closes)
            else:
                request = JobCreate(**JobTemplate(**template).model_dump(), deadline=deadline, depends_on=depends_on,
                                    idempotency_key=key)
                if closes is not None and request.plan is not None:
                    request.plan = request.plan.model_copy(update={'window_end': closes})
                job, _ = self.jobs.launch(request, actor, sealed_secrets=schedule['secret_vars'])
        except (ServiceError, ValueError) as exc:
            return self._settle(schedule, slot, claimed, 'skipped', reason='could not launch: %s'
                                % getattr(exc, 'detail', exc))
        reason = 'catching up: the latest of %d missed slots' % catching_up if catching_up else None
        record = self._settle(schedule, slot, claimed, 'fired', job_id=job['id'], reason=reason)
        if record['job_id'] != job['id']:
            # Another scheduler settled this slot first, differently (it saw the last run still
            # going, say): the slot's record is the truth, and no job runs that it does not name.
            try:
                self.jobs.cancel(job['id'], actor)
            except ServiceError:
                pass
        return record

    def _settle(self, schedule: dict, slot: dt.datetime, claimed: bool, outcome: str, job_id: str | None = None,
                reason: str | None = None) -> dict:
        """Record what the platform did with a slot: settle the claim made before launching, or
        record it now (the first record of a slot stays: whatever is there is returned)."""
        if claimed:
            return self.store.schedules.settle_claim(schedule['id'], slot, outcome, job_id, reason=reason)
        return self._record(schedule, slot, outcome, job_id=job_id, reason=reason)

    def _depends_on(self, schedule: dict) -> list[Dependency]:
        """`after`: the latest job of each schedule named there (none yet: nothing to wait for)."""
        found = []
        for dependency in schedule['job'].get('after') or ():
            other = self.store.schedules.get(dependency['schedule'])
            if other['last_job_id']:
                found.append(Dependency(job_id=other['last_job_id'], on=dependency['on']))
        return found

    def _record(self, schedule: dict, slot: dt.datetime, outcome: str, job_id: str | None = None,
                reason: str | None = None, claimed_by: str = 'platform') -> dict:
        """Record a slot (the first record stays); a missed slot was claimed by nobody."""
        record, _ = self.store.schedules.record_slot(schedule['id'], slot, outcome, None if outcome == 'missed' else claimed_by,
                                                     job_id=job_id, reason=reason)
        return record
