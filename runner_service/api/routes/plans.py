"""/api/v1/plans/preview: which host in which lane, estimated start and end, and whether the
run fits its window, before anything runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

from fastapi import APIRouter

from dbfleet.clock import utcnow
from runner_service.api.deps import Jobs, Viewer
from runner_service.api.errors import error_responses
from runner_service.bounded import MemoryLimit, TimeLimit
from dbfleet.store import UnknownSchedule, UnknownTemplate
from dbfleet.tags import TagExpressionError, parse_tag_expression
from runner_service.errors import BadRequest, NotFound, TookTooLong, TooLarge, Unprocessable
from runner_service.host_patterns import HostPatternError, narrow
from runner_service.jobs import planner
from runner_service.schemas import (
    JobTemplate,
    PlanAccuracy,
    PlannedHost,
    PlannedLane,
    PlanPreview,
    PlanPreviewRequest,
)
from runner_service.templates.service import WINDOW_FIELDS, window_end
from runner_service.worker.lanes import PlanError, estimate_hosts, list_hosts

router = APIRouter(prefix='/api/v1/plans', tags=['plans'])
ERRORS = error_responses(400, 401, 403, 404, 413, 422, 504)
ACCURACY_RUNS = 10  # past runs a preview compares its estimates with


@router.post('/preview', response_model=PlanPreview, responses=ERRORS)
def preview(body: PlanPreviewRequest, jobs: Jobs, caller: Viewer) -> PlanPreview:
    target = _target(body, jobs)
    if target.hosts is not None:
        hosts = target.hosts
    elif target.tags is not None:
        hosts = jobs.hosts_matching(target.tags)
    else:
        hosts = _listed(jobs, target.playbook, target.inventory, target.limit)
    if not hosts:
        raise BadRequest('no host to plan')
    lanes_wanted = body.lanes or target.lanes
    if lanes_wanted is None:
        raise Unprocessable('lanes: give how many lanes (the %s has no lanes in its plan)' % target.kind)
    try:
        estimates = estimate_hosts(jobs.store, hosts)
    except ValueError as exc:  # a host name the store refuses
        raise BadRequest(str(exc)) from None
    plan = planner.lanes(estimates, min(lanes_wanted, len(hosts)))
    start = body.start or target.start or utcnow()
    rows = planner.timeline(plan, start)
    lanes = [PlannedLane(lane=lane.index, seconds=round(lane.seconds, 3),
                         hosts=[PlannedHost(**{key: row[key] for key in PlannedHost.model_fields})
                                for row in rows if row['lane'] == lane.index]) for lane in plan]
    finish = start + dt.timedelta(seconds=max(lane.seconds for lane in plan))
    end = body.window_end or (window_end(target.window, start) if target.window else None)
    fits = warning = None
    if end is not None:
        fits = finish <= end
        if not fits:
            warning = 'predicted to overrun the window by %.0f s: finish %s, window ends %s; add lanes or start ' \
                      'earlier' % ((finish - end).total_seconds(), finish.isoformat(), end.isoformat())
    return PlanPreview(start=start, finish=finish, lower_bound_seconds=round(planner.lower_bound(estimates,
                                                                                                 lanes_wanted), 3),
                       lanes=lanes, window_end=end, fits=fits, warning=warning,
                       accuracy=_accuracy(jobs, target))


@dataclass
class _Target:
    """What a preview plans: hosts (a list, tags, or a playbook's inventory), the lanes and window
    end the template or schedule has, and which past runs its accuracy is measured on."""

    kind: str
    hosts: list[str] | None = None
    tags: str | None = None
    playbook: str | None = None
    inventory: str | None = None
    limit: str | None = None
    lanes: int | None = None
    window: dict | None = None  # window_end_after / window_end_at / window_timezone
    start: dt.datetime | None = None
    history: dict = field(default_factory=dict)  # planned_history's arguments; empty: none
    of: str = ''


def _target(body: PlanPreviewRequest, jobs) -> _Target:
    if body.hosts is not None:
        return _Target('host list', hosts=list(dict.fromkeys(body.hosts)))
    if body.tags is not None:
        expression = str(parse_tag_expression(body.tags)) if _parses(body.tags) else body.tags
        return _Target('tag expression', tags=body.tags, history={'inventory': expression},
                       of='jobs over tags %s' % expression)
    if body.playbook is not None:
        spec, _ = jobs.check_template(JobTemplate(playbook=body.playbook, inventory=body.inventory, limit=body.limit))
        return _Target('playbook', playbook=spec['playbook'], inventory=spec['inventory'], limit=spec['limit_pattern'],
                       history={'playbook': spec['playbook'], 'inventory': spec['inventory']},
                       of='jobs of %s over %s' % (spec['playbook'], spec['inventory']))
    if body.template is not None:
        target = _of_template(jobs, body.template, None)
        return dataclasses.replace(target, history={'template': body.template}, of='template %s' % body.template)
    try:
        schedule = jobs.store.schedules.get(body.schedule)
    except UnknownSchedule as exc:
        raise NotFound(str(exc)) from None
    stored = schedule['job']
    if stored.get('template'):
        target = _of_template(jobs, stored['template'], stored.get('limit'))
    else:
        plan = stored.get('plan') or {}
        target = _Target('schedule', tags=stored.get('tags'), playbook=None if stored.get('tags') else stored['playbook'],
                         inventory=stored.get('inventory'), limit=stored.get('limit'), lanes=plan.get('lanes'))
    window = {key: stored[key] for key in WINDOW_FIELDS if stored.get(key)} or target.window
    return dataclasses.replace(target, kind='schedule', window=window, start=schedule['next_fire_at'],
                               history={'schedule_id': schedule['id']}, of='schedule %s' % schedule['name'])


def _of_template(jobs, name: str, limit: str | None) -> _Target:
    try:
        definition = jobs.store.templates.get(name)['definition']
    except UnknownTemplate as exc:
        raise NotFound(str(exc)) from None
    try:
        limit = narrow(definition.get('limit'), limit)
    except HostPatternError as exc:
        raise Unprocessable(str(exc)) from None
    plan = definition.get('plan') or {}
    window = {key: plan[key] for key in WINDOW_FIELDS if plan.get(key)}
    if definition.get('tags'):
        return _Target('template', tags=definition['tags'], limit=limit, lanes=plan.get('lanes'), window=window)
    return _Target('template', playbook=definition['playbook'], inventory=definition['inventory'], limit=limit,
                   lanes=plan.get('lanes'), window=window)


def _parses(text: str) -> bool:
    try:
        parse_tag_expression(text)
        return True
    except TagExpressionError:
        return False


def _listed(jobs, playbook: str, inventory: str, limit: str | None) -> list[str]:
    if jobs.project_root() is None:
        raise Unprocessable('a preview of a file inventory reads the project, which comes from git '
                            '(DBFLEET_PROJECT_URL) and is not kept on the API host: preview by tags or hosts')
    try:
        return list_hosts(jobs.settings, playbook, inventory, limit)
    except PlanError as exc:
        raise BadRequest(str(exc)) from None
    except TimeLimit:
        raise TookTooLong('listing the hosts took more than %g s (DBFLEET_ANSIBLE_CALL_SECONDS): the inventory is '
                          'too slow to read for a preview' % jobs.settings.ansible_call_seconds) from None
    except MemoryLimit as exc:
        raise TooLarge('listing the hosts needed more memory than an API call may use (%s, '
                       'DBFLEET_ANSIBLE_CALL_MEMORY_BYTES): the inventory is too large for a preview' % exc) from None


def _accuracy(jobs, target: _Target) -> PlanAccuracy | None:
    if not target.history:
        return None
    measured = planner.accuracy(jobs.store.jobs.planned_history(limit=ACCURACY_RUNS, **target.history))
    return PlanAccuracy(of=target.of, **measured)
