"""The coming week as a calendar: every active schedule's fire times (those a maintenance
window blocks marked skipped or deferred, as the scheduler will treat them), the maintenance
windows' occurrences, and for a schedule whose job runs in lanes over tagged hosts the
planner's predicted finish of each run against the run's window end.

The prediction is the plan preview's (/api/v1/plans/preview): estimates from the hosts' past
backups and data sizes, the lanes balanced by them. The hosts of a job over an inventory file are
listed by Ansible as the plan preview does (`ansible-playbook --list-hosts`, bounded in time and
memory), once per playbook, inventory and limit every LISTED_SECONDS: a page shows the week without
running Ansible each time, and an inventory edited since is listed again within minutes."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field

from runner_service.bounded import MemoryLimit, TimeLimit
from runner_service.errors import ServiceError
from runner_service.host_patterns import HostPatternError, narrow
from runner_service.jobs import planner
from runner_service.jobs.service import JobService
from runner_service.runtime import Runtime
from runner_service.schedules.triggers import TriggerError, preview, trigger_of
from runner_service.schedules.windows import WindowService
from runner_service.templates.service import DEFAULTS, window_end
from runner_service.worker.lanes import PlanError, estimate_hosts, list_hosts

DAYS = 7
# Fire times shown per schedule: an every-minute schedule would otherwise fill the week.
MOST_PER_SCHEDULE = 50
# How long the hosts Ansible listed for (project, playbook, inventory, limit) are used again.
LISTED_SECONDS = 600.0
_listed: dict[tuple, tuple[float, list[str]]] = {}
_listed_lock = threading.Lock()


@dataclass
class Prediction:
    seconds: float | None  # the longest lane's estimate; None when no prediction could be made
    hosts: int = 0
    lanes: int = 0
    note: str = ''


@dataclass
class Slot:
    at: dt.datetime
    schedule: dict
    blocked_by: str | None = None  # the maintenance window's name
    action: str | None = None  # skip or defer
    finish: dt.datetime | None = None
    window_end: dt.datetime | None = None

    @property
    def overruns(self) -> bool:
        return self.finish is not None and self.window_end is not None and self.finish > self.window_end


@dataclass
class Day:
    date: dt.date
    slots: list[Slot] = field(default_factory=list)
    windows: list[dict] = field(default_factory=list)  # {name, start, end, tags}


def week(runtime: Runtime, now: dt.datetime, days: int = DAYS) -> dict:
    """{'days': [Day] from now's day (UTC), 'predictions': {schedule id: Prediction},
    'more': [names of the schedules with more fire times than shown], 'start', 'end'}."""
    end = now + dt.timedelta(days=days)
    windows = WindowService(runtime)
    parsed = windows.windows()
    calendar = {now.date() + dt.timedelta(days=offset): Day(now.date() + dt.timedelta(days=offset))
                for offset in range(days + 1)}
    predictions: dict[str, Prediction] = {}
    more: list[str] = []
    for schedule in runtime.store.schedules.list():
        if schedule['paused'] or schedule['next_fire_at'] is None:
            continue
        times, left_out = _fire_times(schedule, now, end)
        if left_out:
            more.append(schedule['name'])
        if not times:
            continue
        prediction = predictions[schedule['id']] = predict(runtime, schedule)
        plan = _plan(runtime, schedule)
        for time in times:
            slot = Slot(at=time, schedule=schedule)
            runs_at: dt.datetime | None = time
            block = windows.blocking(schedule, time, parsed)
            if block is not None:
                slot.blocked_by, slot.action = block[0].name, schedule['window_policy']
                # Skipped: no run; deferred: it runs when the window ends (windows.deferred_next).
                runs_at = block[1] if slot.action == 'defer' else None
            if prediction.seconds is not None and runs_at is not None:
                slot.finish = runs_at + dt.timedelta(seconds=prediction.seconds)
                slot.window_end = _window_end(plan, runs_at)
            calendar[time.date()].slots.append(slot)
    for window in parsed:
        for start, stop in window.occurrences(now, end):
            for day in _days_of(start, stop, now, end):
                calendar[day].windows.append({'name': window.name, 'start': start, 'end': stop,
                                              'tags': str(window.tags) if window.tags else None})
    for day in calendar.values():
        day.slots.sort(key=lambda slot: (slot.at, slot.schedule['name']))
        day.windows.sort(key=lambda window: (window['start'], window['name']))
    return {'days': [calendar[day] for day in sorted(calendar) if day <= end.date()], 'predictions': predictions,
            'more': more, 'start': now, 'end': end}


def predict(runtime: Runtime, schedule: dict) -> Prediction:
    """How long a run of the schedule's job is predicted to take, when it runs in lanes over the
    hosts a tag expression names."""
    plan = _plan(runtime, schedule)
    if not plan.get('lanes'):
        return Prediction(None)
    tags = _tags(runtime, schedule)
    try:
        hosts = JobService(runtime).hosts_matching(tags) if tags is not None else _inventory_hosts(runtime, schedule)
        estimates = estimate_hosts(runtime.store, hosts)
    except (ServiceError, ValueError, PlanError, HostPatternError) as exc:
        return Prediction(None, note=str(getattr(exc, 'detail', exc))[:200])
    except (TimeLimit, MemoryLimit):
        return Prediction(None, note='listing the inventory\'s hosts took more time or memory than an API call '
                                     'may use (DBFLEET_ANSIBLE_CALL_SECONDS / _MEMORY_BYTES)')
    if not hosts:
        return Prediction(None, note='no host matches')
    lanes = planner.lanes(estimates, min(plan['lanes'], len(hosts)))
    return Prediction(max(lane.seconds for lane in lanes), hosts=len(hosts), lanes=len(lanes))


def _inventory_hosts(runtime: Runtime, schedule: dict) -> list[str]:
    """The hosts the schedule's job reaches in its inventory file, as Ansible lists them (cached)."""
    jobs = JobService(runtime)
    project = jobs.project_root()
    if project is None:
        raise ValueError('runs over an inventory file of the git project, which the API host does not keep: '
                         'no prediction')
    template = _template(runtime, schedule)
    job = template if template is not None else schedule['job']
    # A template's slot runs with the schedule's limit within the template's (as a launch does).
    limit = narrow(template.get('limit'), schedule['job'].get('limit')) if template is not None else job.get('limit')
    key = (str(project), job['playbook'], job['inventory'], limit)
    now = time.monotonic()
    with _listed_lock:
        cached = _listed.get(key)
    if cached is not None and now - cached[0] < LISTED_SECONDS:
        return cached[1]
    hosts = list_hosts(runtime.settings, job['playbook'], job['inventory'], limit)
    with _listed_lock:
        _listed[key] = (now, hosts)
    return hosts


def _fire_times(schedule: dict, now: dt.datetime, end: dt.datetime) -> tuple[list[dt.datetime], bool]:
    """(its fire times in [now, end), at most MOST_PER_SCHEDULE; whether more were left out)."""
    try:
        trigger = trigger_of(schedule)
    except TriggerError:
        return [], False
    first = schedule['next_fire_at']
    within = [time for time in [first] + preview(trigger, MOST_PER_SCHEDULE, first) if now <= time < end]
    return within[:MOST_PER_SCHEDULE], len(within) > MOST_PER_SCHEDULE


def _template(runtime: Runtime, schedule: dict) -> dict | None:
    name = schedule['job'].get('template')
    if not name:
        return None
    try:
        return {**DEFAULTS, **runtime.store.templates.get(name)['definition']}
    except LookupError:
        return None


def _plan(runtime: Runtime, schedule: dict) -> dict:
    template = _template(runtime, schedule)
    return (template.get('plan') if template is not None else schedule['job'].get('plan')) or {}


def _tags(runtime: Runtime, schedule: dict) -> str | None:
    template = _template(runtime, schedule)
    return template.get('tags') if template is not None else schedule['job'].get('tags')


def _window_end(plan: dict, slot: dt.datetime) -> dt.datetime | None:
    if plan.get('window_end'):
        return dt.datetime.fromisoformat(plan['window_end']) if isinstance(plan['window_end'], str) \
            else plan['window_end']
    return window_end(plan, slot)


def _days_of(start: dt.datetime, stop: dt.datetime, now: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """The UTC days an occurrence covers within [now, end]."""
    day, last = max(start, now).date(), min(stop, end).date()
    found = []
    while day <= last:
        found.append(day)
        day += dt.timedelta(days=1)
    return found
