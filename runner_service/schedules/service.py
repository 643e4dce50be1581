"""The front door for schedules: create, change, pause, resume, delete, preview. The API routes
and the CLI call these; the scheduler (runner_service.schedules.loop) fires what they store. The
preview shows what maintenance windows (runner_service.schedules.windows) do to the coming fire times."""

from __future__ import annotations

import datetime as dt
from typing import Callable

from dbfleet.clock import utcnow
from dbfleet.store import UnknownSchedule
from runner_service.errors import BadRequest, Conflict, NotFound
from runner_service.jobs.service import JobService
from runner_service.notify.service import NotifierService
from runner_service.runtime import Runtime
from runner_service.schedules.provenance import CrontabLines, crontab_mode
from runner_service.schedules.triggers import TriggerError, preview, trigger_of, zone
from runner_service.schedules.windows import WindowService
from runner_service.schemas import JobTemplate, ScheduleCreate, ScheduleUpdate
from runner_service.secret_box import MASK, split_extra_vars
from runner_service.templates.service import TemplateService

MAX_PREVIEW = 100
# Kept in a schedule's stored job beside the launch template: not part of a launch request.
# When no host of a run starts any more (runner_service.worker.lanes), relative to each slot.
SCHEDULE_WINDOW = ('window_end_after', 'window_end_at')
SCHEDULE_ONLY = ('deadline_after', 'start_at', 'after') + SCHEDULE_WINDOW
# What an operator may change in a schedule: when it fires and how its slots behave. What it
# runs (the job: playbook, extra vars, a crontab entry's command, stdin, user, environment), its
# name, deadline and dependencies are an admin's.
TIMING_FIELDS = frozenset({'kind', 'expression', 'timezone', 'start_at', 'overlap', 'misfire_grace_seconds',
                           'catch_up', 'jitter_seconds', 'window_policy'} | set(SCHEDULE_WINDOW))


class ScheduleService:
    def __init__(self, runtime: Runtime, clock: Callable[[], dt.datetime] = utcnow,
                 crontab: CrontabLines | None = None):
        self.runtime = runtime
        self.clock = clock  # tests pass their own time
        self.crontab = crontab  # keeps a bridged schedule's crontab line in step with its edits
        self.store = runtime.store
        self.jobs = JobService(runtime)
        self.windows = WindowService(runtime)

    def create(self, request: ScheduleCreate, actor: str) -> dict:
        now = self.clock()
        # One anchor, read once: the stored one is the one the first fire is computed from.
        anchor = (request.start_at or now) if request.kind == 'interval' else None
        timing = dict(kind=request.kind, expression=request.expression, timezone=request.timezone)
        self._trigger(dict(timing, job={'start_at': anchor.isoformat() if anchor else None}))
        if request.template is not None:
            job, sealed = self._template_launch(request.template, request.extra_vars or {}, request.limit,
                                                request.deadline_after, anchor, after=self._after(request.after))
        else:
            job, sealed = self._template(request.job, request.deadline_after, anchor,
                                         after=self._after(request.after))
        job.update({key: getattr(request, key) for key in SCHEDULE_WINDOW})
        self._check_window(job)
        first = self._trigger(dict(timing, job=job)).next_after(now - dt.timedelta(microseconds=1))
        if first is None:
            raise BadRequest('%s %r never fires from now on' % (request.kind, request.expression))
        try:
            schedule = self.store.schedules.create(
                name=request.name, kind=request.kind, expression=request.expression, timezone=request.timezone,
                job=job, secret_vars=sealed, overlap=request.overlap,
                misfire_grace_seconds=request.misfire_grace_seconds, catch_up=request.catch_up,
                jitter_seconds=request.jitter_seconds, paused=request.paused, next_fire_at=first, source=None,
                created_by=actor, notify=self._notify(request.notify))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if request.window_policy != schedule['window_policy']:
            schedule = self._set_window_policy(schedule['id'], request.window_policy)
        self.store.audit.record(actor, 'schedule.create', schedule['name'], {'kind': request.kind,
                                                                       'expression': request.expression})
        return schedule

    def update(self, ref: str, request: ScheduleUpdate, actor: str) -> dict:
        """Only what the request gives changes. A new timing (kind, expression, time zone or
        start) fires from the first slot of the new trigger after now, computed from the
        schedule exactly as it is stored."""
        now = self.clock()
        current = self.get(ref)
        changes = request.model_dump(exclude_unset=True)
        fields: dict = {name: changes[name] for name in ('name', 'overlap', 'misfire_grace_seconds', 'catch_up',
                                                         'jitter_seconds') if name in changes}
        if 'notify' in changes:
            fields['notify'] = self._notify(changes['notify'])
        timing = {name: current[name] if changes.get(name) is None else changes[name]
                  for name in ('kind', 'expression', 'timezone')}
        anchor = self._anchor(current, timing['kind'], request.start_at, now)
        named = request.template or (current['job'].get('template') if request.job is None else None)
        if named is None and set(changes) & {'extra_vars', 'limit'}:
            raise BadRequest('extra_vars and limit go with a schedule that names a template; change the job instead')
        if named is not None and (request.template is not None
                                  or set(changes) & {'extra_vars', 'limit', 'deadline_after', 'start_at', 'after'}):
            extra_vars = changes['extra_vars'] if 'extra_vars' in changes else current['job'].get('extra_vars')
            fields['job'], fields['secret_vars'] = self._template_launch(
                named, extra_vars or {},
                changes['limit'] if 'limit' in changes else current['job'].get('limit'),
                changes['deadline_after'] if 'deadline_after' in changes else current['job'].get('deadline_after'),
                anchor, after=self._after(request.after, current['id']) if request.after is not None else
                current['job'].get('after') or [], keep=current['secret_vars'])
        elif request.job is not None or set(changes) & {'deadline_after', 'start_at', 'after'}:
            template = request.job or JobTemplate(**{key: value for key, value in current['job'].items()
                                                     if key not in SCHEDULE_ONLY})
            deadline_after = changes['deadline_after'] if 'deadline_after' in changes else \
                current['job'].get('deadline_after')
            after = self._after(request.after, current['id']) if request.after is not None else \
                current['job'].get('after') or []
            fields['job'], sealed = self._template(template, deadline_after, anchor, keep=current['secret_vars'],
                                                   after=after)
            if request.job is not None:
                fields['secret_vars'] = sealed
        window = {key: changes[key] if key in changes else current['job'].get(key) for key in SCHEDULE_WINDOW}
        if 'job' in fields or set(changes) & set(SCHEDULE_WINDOW):
            fields['job'] = dict(fields.get('job', current['job']), **window)
            self._check_window(fields['job'])
        job = fields.get('job', current['job'])
        anchor_changed = job.get('start_at') != (anchor.isoformat() if anchor else None)
        if anchor_changed:
            fields['job'] = dict(job, start_at=anchor.isoformat() if anchor else None)
        if anchor_changed or set(changes) & {'kind', 'expression', 'timezone', 'start_at'}:
            fields.update(timing)
            fields['next_fire_at'] = self._trigger(dict(current, **fields)).next_after(now)
        source = self._source_after_update(current, fields)
        if source is not None:
            fields['source'] = source
        schedule = self.store.schedules.update(current['id'], **fields)
        if changes.get('window_policy') is not None:
            schedule = self._set_window_policy(schedule['id'], changes['window_policy'])
        self.store.audit.record(actor, 'schedule.update', schedule['name'], sorted(changes))
        return schedule

    def _check_window(self, job: dict) -> None:
        """A window end stops starting hosts, which only a plan's runs can do: refused (400) without one."""
        if not any(job.get(key) for key in SCHEDULE_WINDOW):
            return
        if job.get('template'):
            plan = (self.store.templates.get(job['template'])['definition'].get('plan') or {})
        else:
            plan = job.get('plan') or {}
        if not (plan.get('lanes') or plan.get('rolling') or plan.get('pool')):
            raise BadRequest('window_end_after / window_end_at: no host starts after the window end only in a run '
                             'with a plan (lanes, rolling or a pool): without one the play runs all its hosts at '
                             'once; give the %s a plan, or use deadline_after' % (
                                 'template' if job.get('template') else 'job'))

    def _notify(self, notify: dict | None) -> dict | None:
        """Who hears of the schedule's events, checked: every notifier named exists (422 naming one that does not)."""
        if notify:
            NotifierService(self.runtime).check_subscriptions(notify)
        return notify or None

    def pause(self, ref: str, actor: str) -> dict:
        schedule = self.store.schedules.update(self.get(ref)['id'], paused=True)
        self.store.audit.record(actor, 'schedule.pause', schedule['name'])
        return schedule

    def resume(self, ref: str, actor: str) -> dict:
        """Fires again from the next slot after now: slots that fell in the pause are not caught up."""
        current = self.get(ref)
        if crontab_mode(current) == 'reverted':
            raise Conflict('%s was reverted to crontab, which runs it; `dbfleet cron observe` or `takeover` '
                           'brings it back here' % current['name'])
        schedule = self.store.schedules.update(current['id'], paused=False,
                                               next_fire_at=self._trigger(current).next_after(self.clock()))
        self.store.audit.record(actor, 'schedule.resume', schedule['name'])
        return schedule

    def delete(self, ref: str, actor: str) -> dict:
        current = self.get(ref)
        if crontab_mode(current) not in (None, 'reverted'):
            raise Conflict('%s is a crontab entry in mode %s: its crontab line names this schedule; revert it '
                           'first (`dbfleet cron revert`: the line comes back as it was), then delete it'
                           % (current['name'], crontab_mode(current)))
        schedule = self.store.schedules.delete(current['id'])
        self.store.audit.record(actor, 'schedule.delete', schedule['name'])
        return schedule

    def get(self, ref: str) -> dict:
        try:
            return self.store.schedules.get(ref)
        except UnknownSchedule as exc:
            raise NotFound(str(exc)) from None

    def preview(self, ref: str, count: int = 10) -> tuple[dict, list[dt.datetime], list[dict]]:
        """(schedule, its next fire times, those of them inside a maintenance window as
        {time, window, action, until}), times in the schedule's time zone."""
        schedule = self.get(ref)
        tz = zone(schedule['timezone'])
        start = schedule['next_fire_at']
        if start is None:
            return schedule, [], []
        times = [time.astimezone(tz) for time in
                 ([start] + preview(self._trigger(schedule), min(count, MAX_PREVIEW) - 1, start))[:count]]
        windows = self.windows.windows()
        blocked = []
        for time in times:
            block = self.windows.blocking(schedule, time, windows)
            if block is not None:
                blocked.append(dict(time=time, window=block[0].name, action=schedule['window_policy'],
                                    until=block[1].astimezone(tz)))
        return schedule, times, blocked

    def _source_after_update(self, current: dict, fields: dict) -> dict | None:
        if crontab_mode(current) is None:
            return None
        if self.crontab is None:
            # An edit written without its crontab line would leave the host's agent writing the
            # old line back: refuse rather than let the two drift apart.
            raise RuntimeError('%s is a crontab entry: update it through the crontab bridge\'s schedule service '
                               '(CronBridge(runtime).schedules)' % current['name'])
        return self.crontab.source_after_update(current, fields)

    def _set_window_policy(self, schedule_id: str, policy: str) -> dict:
        self.store.windows.set_policy(schedule_id, policy)
        return self.store.schedules.get(schedule_id)

    @staticmethod
    def _trigger(schedule: dict):
        """trigger_of the schedule (as it is or will be stored); BadRequest when it has none."""
        try:
            return trigger_of(schedule)
        except TriggerError as exc:
            raise BadRequest(str(exc)) from None

    @staticmethod
    def _anchor(current: dict, kind: str, start_at: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        """Where an updated schedule's interval starts: the start given, else the one it has
        (an interval staying an interval), else now; None for the kinds that have none."""
        if kind != 'interval':
            return None
        if start_at is not None:
            return start_at
        stored = current['job'].get('start_at')
        if current['kind'] == 'interval' and stored:
            return dt.datetime.fromisoformat(stored)
        return now

    def _after(self, after, own_id: str | None = None) -> list[dict]:
        """The schedules a schedule's runs wait for, by id (refused: unknown ones, itself)."""
        found = []
        for dependency in after or ():
            try:
                other = self.get(dependency.schedule)
            except NotFound as exc:
                raise BadRequest('after: %s' % exc.detail) from None
            if other['id'] == own_id:
                raise BadRequest('after: a schedule cannot wait for itself')
            found.append({'schedule': other['id'], 'on': dependency.on})
        return found

    def _template_launch(self, template: str, extra_vars: dict, limit: str | None, deadline_after: int | None,
                         start_at: dt.datetime | None, after: list[dict] | None = None,
                         keep: str | None = None) -> tuple[dict, str | None]:
        """The stored job of a schedule that launches `template`: its survey values checked as a
        launch would be, secret ones sealed; a secret sent back masked keeps its sealed value."""
        job, secret = TemplateService(self.runtime).schedule_job(template, self._unmasked(extra_vars, keep), limit)
        return _with_timing(job, deadline_after, after, start_at), self.runtime.secrets.seal(secret)

    def _template(self, template: JobTemplate, deadline_after: int | None, start_at: dt.datetime | None,
                  keep: str | None = None, after: list[dict] | None = None) -> tuple[dict, str | None]:
        """The job template as stored: checked like a launch, secret extra vars masked and sealed.
        A secret sent back masked (as GET shows it) keeps its sealed value from `keep`."""
        self.jobs.check_template(template)
        public, secret = split_extra_vars(self._unmasked(template.extra_vars, keep))
        job = dict(template.model_dump(mode='json'), extra_vars=public)
        return _with_timing(job, deadline_after, after, start_at), self.runtime.secrets.seal(secret)

    def _unmasked(self, extra_vars: dict, keep: str | None) -> dict:
        """`extra_vars` with each value sent back masked (as GET shows it) replaced by its sealed
        value from `keep`."""
        previous = self.runtime.secrets.open(keep) if keep else {}
        return {name: previous[name] if value == MASK and name in previous else value
                for name, value in extra_vars.items()}


def _with_timing(job: dict, deadline_after: int | None, after: list[dict] | None,
                 start_at: dt.datetime | None) -> dict:
    """A schedule's stored job with what the schedule adds to each launch: the deadline after
    its slot, the schedules it waits for, an interval's start."""
    job.update(deadline_after=deadline_after, after=after or [], start_at=start_at.isoformat() if start_at else None)
    return job
