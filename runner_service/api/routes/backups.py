"""/api/v1/backups: the backup catalog, every attempt newest first, and each host's restorable window,
for viewers."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from runner_service.api.deps import BackupsDep, Viewer
from runner_service.api.errors import error_responses
from runner_service.fleet.schemas import BackupPage, WindowList
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


@router.get('/windows', response_model=WindowList, responses=ERRORS)
def windows(backups: BackupsDep, caller: Viewer,
            host: Annotated[str | None, Query(min_length=1, max_length=255, description='one host')] = None,
            ) -> WindowList:
    """Per host: the restorable window (from the oldest backup with an unbroken binlog chain to the newest
    archived event), the gaps that break the chain, the newest backup and the archive's lag."""
    return WindowList(**backups.windows(host=host))
