"""/api/v1/backups: the backup catalog, every attempt newest first, for viewers; restores as jobs, for
operators (into scratch) and admins (into a server)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from runner_service.api.deps import BackupsDep, Jobs, Operator, RuntimeDep, Viewer
from runner_service.api.errors import error_responses
from runner_service.api.routes.jobs import job_view
from runner_service.fleet.restores import RestoreService
from runner_service.fleet.schemas import BackupOut, BackupPage, RestoreLaunched, RestoreRequest
from runner_service.schemas import QueryInstant

router = APIRouter(prefix='/api/v1/backups', tags=['backups'])
ERRORS = error_responses(400, 401, 403, 422)


@router.get('', response_model=BackupPage, responses=ERRORS)
def catalog(backups: BackupsDep, caller: Viewer,
            host: Annotated[str | None, Query(min_length=1, max_length=255, description='one host')] = None,
            method: Annotated[Literal['logical', 'physical'] | None, Query()] = None,
            status: Annotated[Literal['ok', 'failed'] | None, Query()] = None,
            since: Annotated[QueryInstant | None, Query(description='started at or after this time')] = None,
            until: Annotated[QueryInstant | None, Query(description='started before this time')] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 50,
            cursor: Annotated[str | None, Query(min_length=1, max_length=64, description='a next_cursor')] = None,
            ) -> BackupPage:
    """Newest first (by start); pass next_cursor back as cursor for the next (older) page."""
    return BackupPage(**backups.page(host=host, method=method, status=status, since=since, until=until, limit=limit,
                                     cursor=cursor))


@router.post('/restore', status_code=201, response_model=RestoreLaunched, responses=error_responses(
             400, 401, 403, 404, 409, 422))
def restore(body: RestoreRequest, runtime: RuntimeDep, jobs: Jobs, caller: Operator,
            response: Response) -> RestoreLaunched:
    """Restore a host's backup as a job (playbooks/restore.yml): the newest successful backup started before
    `to` (or before `to_gtid`, or `backup`), replayed up to that point and verified. Into `scratch` (a sandbox)
    for operators; into an inventory host (a server restored over) for admins."""
    job, backup = RestoreService(runtime).launch(body.host, caller, to=body.to, to_gtid=body.to_gtid,
                                                 backup_id=body.backup, into=body.into, schema=body.schema_name,
                                                 force=body.force)
    response.headers['Location'] = '/api/v1/jobs/%s' % job['id']
    return RestoreLaunched(job=job_view(job, jobs.listening()).model_dump(mode='json'), backup=BackupOut(**backup))
