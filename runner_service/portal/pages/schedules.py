"""Schedules: each schedule's next run in its own zone and the viewer's, pause and resume, and a
schedule's page with its coming fire times (those a maintenance window blocks marked) and what
each recent slot did (fired, skipped, missed, and why)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from runner_service.bridge.platform import CronBridge
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import Caller, FormCaller, PageCaller
from runner_service.schedules.service import ScheduleService
from runner_service.schedules.triggers import zone
from runner_service.templates.service import check_scope

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Schedules', '/schedules')]
Ref = Annotated[str, Path(min_length=1, max_length=255)]
PREVIEW = 10
SLOTS = 50


def _schedules(request: Request) -> ScheduleService:
    # The bridge's own schedule service, as the API's: a crontab entry's edits become its line.
    return CronBridge(request.app.state.runtime).schedules


@router.get('/schedules')
def schedule_list(request: Request, caller: PageCaller) -> Response:
    schedules = _schedules(request).store.schedules.list()
    return render(request, caller, 'schedules/list.html', {'schedules': schedules, 'zone': zone})


@router.get('/schedules/{ref}')
def schedule_page(request: Request, caller: PageCaller, ref: Ref) -> Response:
    service = _schedules(request)
    schedule, times, blocked = service.preview(ref, PREVIEW)
    blocked_at = {entry['time']: entry for entry in blocked}
    slots = service.store.schedules.slots(schedule['id'], SLOTS)
    return render(request, caller, 'schedules/detail.html', {
        'schedule': schedule, 'times': [(time, blocked_at.get(time)) for time in times], 'slots': slots,
        'zone': zone})


def _pausing(request: Request, caller: Caller, ref: str) -> ScheduleService:
    """The schedule service, once the caller may pause or resume `ref` (an operator whose token
    may launch the schedule's template; any operator for a bare playbook's, as the API)."""
    caller.need('operator')
    service = _schedules(request)
    check_scope(caller.record, service.get(ref)['job'].get('template'))
    return service


@router.post('/schedules/{ref}/pause')
def pause(request: Request, caller: FormCaller, ref: Ref) -> Response:
    schedule = _pausing(request, caller, ref).pause(ref, caller.name)
    return RedirectResponse('/schedules/%s' % schedule['id'], status_code=303)


@router.post('/schedules/{ref}/resume')
def resume(request: Request, caller: FormCaller, ref: Ref) -> Response:
    schedule = _pausing(request, caller, ref).resume(ref, caller.name)
    return RedirectResponse('/schedules/%s' % schedule['id'], status_code=303)
