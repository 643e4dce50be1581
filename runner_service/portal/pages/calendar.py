"""Calendar: the coming week, day by day (UTC): maintenance windows, each schedule's runs, and
for a schedule whose run is planned in lanes over tagged hosts, when the plan predicts it ends
(against its window end). Schedules that fire more often than daily are listed apart."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dbfleet.clock import utcnow
from dbfleet.store import UnknownTemplate
from runner_service.bridge.platform import CronBridge
from runner_service.errors import ServiceError
from runner_service.jobs import planner
from runner_service.jobs.service import JobService
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import PageCaller
from runner_service.schedules.service import MAX_PREVIEW
from runner_service.schedules.windows import WindowService
from runner_service.templates.service import window_end
from runner_service.worker.lanes import estimate_hosts

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Calendar', '/calendar')]
DAYS = 7
FREQUENT = 2 * DAYS  # more runs than this in the week: listed apart, not in the days


@dataclass
class Item:
    start: dt.datetime
    kind: str  # window | run
    label: str
    end: dt.datetime | None = None  # a window's end, or a planned run's predicted finish
    window_end: dt.datetime | None = None  # a planned run's window end
    blocked: str = ''  # a run a maintenance window skips or defers
    link: str = ''

    @property
    def overrun(self) -> bool:
        return self.kind == 'run' and None not in (self.end, self.window_end) and self.end > self.window_end


def _plan_of(store, schedule: dict) -> tuple[dict | None, str | None]:
    """(the plan, the tag expression) a schedule's runs use: its own job's, or its template's now."""
    job = schedule['job']
    if job.get('template'):
        try:
            definition = store.templates.get(job['template'])['definition']
        except UnknownTemplate:
            return None, None
        return definition.get('plan'), definition.get('tags')
    return job.get('plan'), job.get('tags')


def _lane_seconds(jobs: JobService, plan: dict | None, tags: str | None) -> float | None:
    """How long the plan's lanes take over the hosts its tags match now; None when it cannot say
    (no lanes, a file inventory: listing it would run Ansible for a page)."""
    if not plan or not plan.get('lanes') or not tags:
        return None
    try:
        hosts = jobs.hosts_matching(tags)
    except ServiceError:
        return None
    if not hosts:
        return None
    lanes = planner.lanes(estimate_hosts(jobs.store, hosts), min(plan['lanes'], len(hosts)))
    return max(lane.seconds for lane in lanes)


def week(request: Request, now: dt.datetime) -> tuple[list[tuple[dt.date, list[Item]]], list[dict]]:
    runtime = request.app.state.runtime
    start = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=DAYS)
    items: list[Item] = []
    for window in WindowService(runtime).windows():
        items.extend(Item(start=begin, end=finish, kind='window', label=window.name)
                     for begin, finish in window.occurrences(start, end))
    schedules = CronBridge(runtime).schedules
    jobs = JobService(runtime)
    frequent = []
    for schedule in schedules.store.schedules.list():
        if schedule['paused']:
            continue
        _, times, blocked = schedules.preview(schedule['id'], MAX_PREVIEW)
        times = [time for time in times if time < end]
        if len(times) > FREQUENT:
            frequent.append({'schedule': schedule, 'count': len(times)})
            continue
        plan, tags = _plan_of(runtime.store, schedule)
        seconds = _lane_seconds(jobs, plan, tags) if times else None
        blocks = {entry['time']: entry for entry in blocked}
        for time in times:
            block = blocks.get(time)
            items.append(Item(
                start=time, kind='run', label=schedule['name'], link='/schedules/%s' % schedule['id'],
                end=None if seconds is None else time + dt.timedelta(seconds=seconds),
                window_end=window_end(plan, time) if plan else None,
                blocked='%s by window %s' % (block['action'], block['window']) if block else ''))
    days = [(start.date() + dt.timedelta(days=offset), []) for offset in range(DAYS)]
    for item in sorted(items, key=lambda item: (item.start, item.kind)):
        offset = (item.start.astimezone(dt.timezone.utc).date() - start.date()).days
        if 0 <= offset < DAYS:
            days[offset][1].append(item)
        elif item.kind == 'window' and offset < 0:  # going on since before today
            days[0][1].append(item)
    return days, frequent


@router.get('/calendar')
def calendar(request: Request, caller: PageCaller) -> Response:
    days, frequent = week(request, utcnow())
    return render(request, caller, 'calendar/week.html', {'days': days, 'frequent': frequent})
