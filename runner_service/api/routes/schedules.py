"""/api/v1/schedules: admins create, change, pause, resume and delete; so do operators for
schedules that name a job template their token may launch. Operators also change the timing of
any schedule (not what it runs: a crontab entry's command stays an admin's), pause and resume it.
Viewers read, preview the next fire times and each slot's history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from runner_service import tokens
from runner_service.api.deps import Operator, Schedules, Viewer
from runner_service.api.errors import error_responses
from runner_service.errors import Forbidden
from runner_service.schedules.service import SCHEDULE_ONLY, SCHEDULE_WINDOW, TIMING_FIELDS, ScheduleService
from runner_service.schemas import BlockedTime, Preview, ScheduleCreate, ScheduleOut, ScheduleUpdate, Slot
from runner_service.templates.service import check_scope

router = APIRouter(prefix='/api/v1/schedules', tags=['schedules'])
ERRORS = error_responses(400, 401, 403, 404, 422)
Ref = Annotated[str, Path(min_length=1, max_length=255, description='schedule id or name')]


def schedule_view(schedule: dict) -> ScheduleOut:
    job = {key: value for key, value in schedule['job'].items() if key not in SCHEDULE_ONLY}
    base = '/api/v1/schedules/%s' % schedule['id']
    return ScheduleOut(**{key: value for key, value in schedule.items() if key in ScheduleOut.model_fields
                          and key not in ('job', 'links', 'deadline_after', 'after', 'start_at')
                          + SCHEDULE_WINDOW},
                       job=job, deadline_after=schedule['job'].get('deadline_after'),
                       **{key: schedule['job'].get(key) for key in SCHEDULE_WINDOW},
                       start_at=schedule['job'].get('start_at'),
                       after=schedule['job'].get('after') or [],
                       links={'self': base, 'preview': base + '/preview', 'slots': base + '/slots'})


def may_change(caller: dict, *templates: str | None) -> None:
    """403 unless the caller may change a schedule that launches each of `templates` (None: a bare
    playbook, for admins only; a template: one the caller's token may launch)."""
    for template in templates:
        if template is None and not tokens.allows(caller['role'], 'admin'):
            raise Forbidden('token %r has role %s: a schedule of a bare playbook needs admin; operators schedule '
                            'job templates (template instead of job)' % (caller['name'], caller['role']))
        check_scope(caller, template)


def _named(schedules: ScheduleService, ref: str) -> str | None:
    return schedules.get(ref)['job'].get('template')


@router.post('', status_code=201, response_model=ScheduleOut, responses=ERRORS)
def create(body: ScheduleCreate, schedules: Schedules, caller: Operator) -> ScheduleOut:
    """A bare playbook (job) needs an admin token; a template, one that may launch it."""
    may_change(caller, body.template)
    return schedule_view(schedules.create(body, caller['name']))


@router.get('', response_model=list[ScheduleOut], responses=ERRORS)
def list_schedules(schedules: Schedules, caller: Viewer) -> list[ScheduleOut]:
    return [schedule_view(schedule) for schedule in schedules.store.schedules.list()]


@router.get('/{ref}', response_model=ScheduleOut, responses=ERRORS)
def show(ref: Ref, schedules: Schedules, caller: Viewer) -> ScheduleOut:
    return schedule_view(schedules.get(ref))


@router.patch('/{ref}', response_model=ScheduleOut, responses=ERRORS)
def update(ref: Ref, body: ScheduleUpdate, schedules: Schedules, caller: Operator) -> ScheduleOut:
    """Operators may change the timing (kind, expression, timezone, start_at, overlap, misfire
    grace, catch-up, jitter, window policy) of any schedule; anything else, above all the job it
    runs (a crontab entry's command), needs an admin, or for a template schedule a token that may
    launch both the old and the new template."""
    current = _named(schedules, ref)
    if set(body.model_dump(exclude_unset=True)) <= TIMING_FIELDS:
        check_scope(caller, current)
    else:
        may_change(caller, current, body.template if body.template is not None else None if body.job is not None
                   else current)
    return schedule_view(schedules.update(ref, body, caller['name']))


@router.delete('/{ref}', response_model=ScheduleOut, responses=ERRORS)
def delete(ref: Ref, schedules: Schedules, caller: Operator) -> ScheduleOut:
    may_change(caller, _named(schedules, ref))
    return schedule_view(schedules.delete(ref, caller['name']))


@router.post('/{ref}/pause', response_model=ScheduleOut, responses=ERRORS)
def pause(ref: Ref, schedules: Schedules, caller: Operator) -> ScheduleOut:
    check_scope(caller, _named(schedules, ref))
    return schedule_view(schedules.pause(ref, caller['name']))


@router.post('/{ref}/resume', response_model=ScheduleOut, responses=ERRORS)
def resume(ref: Ref, schedules: Schedules, caller: Operator) -> ScheduleOut:
    """Fires from the next slot after now; slots that fell in the pause are not caught up."""
    check_scope(caller, _named(schedules, ref))
    return schedule_view(schedules.resume(ref, caller['name']))


@router.get('/{ref}/preview', response_model=Preview, responses=ERRORS)
def preview(ref: Ref, schedules: Schedules, caller: Viewer,
            n: Annotated[int, Query(ge=1, le=100, description='how many fire times')] = 10) -> Preview:
    """The next fire times; `blocked` marks those inside a maintenance window: skipped, or deferred
    to the window's end (one run there, however many slots it covers), as the schedule says."""
    schedule, times, blocked = schedules.preview(ref, n)
    return Preview(schedule=schedule['name'], timezone=schedule['timezone'], times=times,
                   blocked=[BlockedTime(**entry) for entry in blocked])


@router.get('/{ref}/slots', response_model=list[Slot], responses=ERRORS)
def slots(ref: Ref, schedules: Schedules, caller: Viewer,
          limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[Slot]:
    """What each recent slot did (fired with its job, skipped or missed, and why), newest first."""
    return [Slot(**slot) for slot in schedules.store.schedules.slots(schedules.get(ref)['id'], limit)]
