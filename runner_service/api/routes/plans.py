"""/api/v1/plans/preview: which host in which lane, estimated start and end, and whether the
run fits its window, before anything runs."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from dbfleet.clock import utcnow
from runner_service.api.deps import Jobs, Viewer
from runner_service.api.errors import error_responses
from runner_service.bounded import MemoryLimit, TimeLimit
from runner_service.errors import BadRequest, TookTooLong, TooLarge, Unprocessable
from runner_service.jobs import planner
from runner_service.schemas import JobTemplate, PlannedHost, PlannedLane, PlanPreview, PlanPreviewRequest
from runner_service.worker.lanes import PlanError, estimate_hosts, list_hosts

router = APIRouter(prefix='/api/v1/plans', tags=['plans'])
ERRORS = error_responses(400, 401, 403, 413, 422, 504)


@router.post('/preview', response_model=PlanPreview, responses=ERRORS)
def preview(body: PlanPreviewRequest, jobs: Jobs, caller: Viewer) -> PlanPreview:
    if body.hosts is not None:
        hosts = list(dict.fromkeys(body.hosts))
    elif body.tags is not None:
        hosts = jobs.hosts_matching(body.tags)
    else:
        template = JobTemplate(playbook=body.playbook, inventory=body.inventory, limit=body.limit)
        spec, _ = jobs.check_template(template)
        if jobs.project_root() is None:
            raise Unprocessable('a preview of a file inventory reads the project, which comes from git '
                                '(DBFLEET_PROJECT_URL) and is not kept on the API host: preview by tags or hosts')
        try:
            hosts = list_hosts(jobs.settings, spec['playbook'], spec['inventory'], spec['limit_pattern'])
        except PlanError as exc:
            raise BadRequest(str(exc)) from None
        except TimeLimit:
            raise TookTooLong('listing the hosts took more than %g s (DBFLEET_ANSIBLE_CALL_SECONDS): the inventory is '
                              'too slow to read for a preview' % jobs.settings.ansible_call_seconds) from None
        except MemoryLimit as exc:
            raise TooLarge('listing the hosts needed more memory than an API call may use (%s, '
                           'DBFLEET_ANSIBLE_CALL_MEMORY_BYTES): the inventory is too large for a preview' % exc) from None
    if not hosts:
        raise BadRequest('no host to plan')
    try:
        estimates = estimate_hosts(jobs.store, hosts)
    except ValueError as exc:  # a host name the store refuses
        raise BadRequest(str(exc)) from None
    plan = planner.lanes(estimates, min(body.lanes, len(hosts)))
    start = body.start or utcnow()
    rows = planner.timeline(plan, start)
    lanes = [PlannedLane(lane=lane.index, seconds=round(lane.seconds, 3),
                         hosts=[PlannedHost(**{key: row[key] for key in PlannedHost.model_fields})
                                for row in rows if row['lane'] == lane.index]) for lane in plan]
    finish = start + dt.timedelta(seconds=max(lane.seconds for lane in plan))
    fits = warning = None
    if body.window_end is not None:
        fits = finish <= body.window_end
        if not fits:
            warning = 'predicted to overrun the window by %.0f s: finish %s, window ends %s; add lanes or start ' \
                      'earlier' % ((finish - body.window_end).total_seconds(), finish.isoformat(),
                                   body.window_end.isoformat())
    return PlanPreview(start=start, finish=finish, lower_bound_seconds=round(planner.lower_bound(estimates,
                                                                                                 body.lanes), 3),
                       lanes=lanes, window_end=body.window_end, fits=fits, warning=warning)
