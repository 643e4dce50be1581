"""/api/v1/backups: the backup catalog, every attempt newest first, and each host's restorable window,
for viewers; pins; restores as jobs, for operators (into scratch) and admins (into a server).

Pinning (POST .../keep) is for operators: it only keeps a backup, as manual tags only label a host.
Unpinning (DELETE .../keep) is for admins: it hands the backup back to retention, which may then
delete it - deleting data is an admin's call. Both go to the audit log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from runner_service.api.deps import Admin, BackupsDep, Drills, Jobs, Operator, Restores, Viewer
from runner_service.api.errors import error_responses
from runner_service.api.routes.schedules import schedule_view
from runner_service.api.routes.jobs import job_view
from runner_service.fleet.schemas import (
    BackupOut,
    BackupPage,
    DrillLaunched,
    DrillList,
    DrillRequest,
    DrillSchedule,
    RestoreLaunched,
    RestoreRequest,
    WindowList,
)
from runner_service.schemas import QueryInstant, ScheduleOut

router = APIRouter(prefix='/api/v1/backups', tags=['backups'])
ERRORS = error_responses(400, 401, 403, 422)
ONE_ERRORS = error_responses(401, 403, 404, 422)
BackupId = Annotated[int, Path(ge=1, le=2 ** 63 - 1, description='the backup id, as GET /api/v1/backups lists it')]


@router.get('', response_model=BackupPage, responses=ERRORS)
def catalog(backups: BackupsDep, caller: Viewer,
            host: Annotated[str | None, Query(min_length=1, max_length=255, description='one host')] = None,
            method: Annotated[Literal['logical', 'physical'] | None, Query()] = None,
            status: Annotated[Literal['ok', 'failed'] | None, Query()] = None,
            since: Annotated[QueryInstant | None, Query(description='started at or after this time')] = None,
            until: Annotated[QueryInstant | None, Query(description='started before this time')] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 50,
            cursor: Annotated[str | None, Query(min_length=1, max_length=64, description='a next_cursor')] = None,
            pinned: Annotated[bool | None, Query(description='only pinned (true) or unpinned (false) ones')] = None,
            include_removed: Annotated[bool, Query(description='also backups retention removed')] = False,
            ) -> BackupPage:
    """Newest first (by start); pass next_cursor back as cursor for the next (older) page. Backups
    retention removed are left out unless include_removed."""
    return BackupPage(**backups.page(host=host, method=method, status=status, since=since, until=until, limit=limit,
                                     cursor=cursor, pinned=pinned, include_removed=include_removed))


@router.get('/windows', response_model=WindowList, responses=ERRORS)
def windows(backups: BackupsDep, caller: Viewer,
            host: Annotated[str | None, Query(min_length=1, max_length=255, description='one host')] = None,
            ) -> WindowList:
    """Per host: the restorable window (from the oldest backup with an unbroken binlog chain to the newest
    archived event), the gaps that break the chain, the newest backup and the archive's lag."""
    return WindowList(**backups.windows(host=host))


@router.get('/{backup_id:int}', response_model=BackupOut, responses=ONE_ERRORS)
def one(backup_id: BackupId, backups: BackupsDep, caller: Viewer) -> BackupOut:
    """One attempt, removed or not."""
    return BackupOut(**backups.get(backup_id))


@router.post('/{backup_id:int}/keep', response_model=BackupOut, responses=ONE_ERRORS)
def keep(backup_id: BackupId, backups: BackupsDep, caller: Operator) -> BackupOut:
    """Pin a backup: retention never removes it (the next backup run of its host hands its path to
    the module). 422 for a failed attempt or a backup already removed. Audited."""
    return BackupOut(**backups.keep(backup_id, True, caller['name']))


@router.delete('/{backup_id:int}/keep', response_model=BackupOut, responses=ONE_ERRORS)
def unkeep(backup_id: BackupId, backups: BackupsDep, caller: Admin) -> BackupOut:
    """Unpin a backup: retention may remove it again. Admins only. Audited."""
    return BackupOut(**backups.keep(backup_id, False, caller['name']))


@router.post('/restore', status_code=201, response_model=RestoreLaunched, responses=error_responses(
             400, 401, 403, 404, 409, 422))
def restore(body: RestoreRequest, restores: Restores, jobs: Jobs, caller: Operator,
            response: Response) -> RestoreLaunched:
    """Restore a host's backup as a job (playbooks/restore.yml): the newest successful backup started before
    `to` (or before `to_gtid`, or `backup`), replayed up to that point and verified. Into `scratch` (a sandbox)
    for operators; into an inventory host (a server restored over) for admins. With `from`, the backup and binlogs
    come from that repository's verified copy (the host's own disk lost)."""
    job, backup = restores.launch(body.host, caller, to=body.to, to_gtid=body.to_gtid, backup_id=body.backup,
                                  into=body.into, schema=body.schema_name, force=body.force,
                                  repository=body.repository)
    response.headers['Location'] = '/api/v1/jobs/%s' % job['id']
    return RestoreLaunched(job=job_view(job, jobs.listening()).model_dump(mode='json'), backup=BackupOut(**backup))


@router.get('/drills', response_model=DrillList, responses=ERRORS)
def drills(service: Drills, caller: Viewer,
           host: Annotated[str | None, Query(min_length=1, max_length=255, description='one host')] = None,
           status: Annotated[Literal['ok', 'failed'] | None, Query()] = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> DrillList:
    """Restore drills, newest first: the backup restored, the recovery time measured (RTO), the instant the
    restored data is at and its age when the drill started (RPO)."""
    return DrillList(drills=service.list(host=host, status=status, limit=limit))


@router.post('/drills', status_code=201, response_model=DrillLaunched, responses={
    **error_responses(400, 401, 403, 404, 409, 422),
    200: {'model': DrillLaunched, 'description': 'the job an earlier launch with this idempotency_key made'}})
def drill(body: DrillRequest, service: Drills, jobs: Jobs, caller: Operator, response: Response) -> DrillLaunched:
    """Restore drills as one job of the template `drill` (playbooks/drill.yml): each matching host's newest
    backup restored into a sandbox and replayed to the newest archived event (or to `point`: an instant drawn
    inside the window, or given), verified, recorded with its RTO (and RPO), and the backup marked
    restore-tested; in lanes balanced by backup size. With `from`, each host's copy in that repository is
    drilled instead (fetched, checked, restored; the drill records the repository). For operators.
    The same idempotency_key gives back the same job (200)."""
    job, created = service.launch(caller, tags=body.tags, limit=body.limit, lanes=body.lanes,
                                  window_end=body.window_end, idempotency_key=body.idempotency_key,
                                  point=body.point, repository=body.repository)
    response.headers['Location'] = '/api/v1/jobs/%s' % job['id']
    if not created:
        response.status_code = 200
    return DrillLaunched(job=job_view(job, jobs.listening()).model_dump(mode='json'))


@router.post('/drills/schedule', status_code=201, response_model=ScheduleOut, responses=error_responses(
             400, 401, 403, 409, 422))
def drill_schedule(body: DrillSchedule, service: Drills, caller: Operator) -> ScheduleOut:
    """A schedule that runs the `drill` template every day at `start` (HH:MM in `timezone`), no host starting
    after `end`, narrowed by `limit`; its lanes are the template's plan. For operators (the template is
    seeded when missing); the schedule is then managed like any other (/api/v1/schedules)."""
    return schedule_view(service.schedule(caller, body.name, body.start, body.end, timezone=body.timezone,
                                          limit=body.limit, paused=body.paused, point=body.point,
                                          repository=body.repository))
