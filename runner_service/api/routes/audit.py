"""/api/v1/audit: who created, edited, deleted, launched and canceled what; admins read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from runner_service.api.deps import Admin, RuntimeDep
from runner_service.api.errors import error_responses
from runner_service.errors import BadRequest
from runner_service.schemas import AuditEntryOut, AuditPage, QueryInstant

router = APIRouter(prefix='/api/v1/audit', tags=['audit'])
ERRORS = error_responses(400, 401, 403, 422)


@router.get('', response_model=AuditPage, responses=ERRORS)
def audit_log(runtime: RuntimeDep, caller: Admin,
              actor: Annotated[str | None, Query(max_length=255, description='a token name (or cli:USER)')] = None,
              action: Annotated[str | None, Query(max_length=32, description='an action (launch, token.create), or '
                                                  'a prefix ending in a dot (token., schedule., cron.)')] = None,
              target: Annotated[str | None, Query(max_length=255, description='a job id or a name')] = None,
              since: Annotated[QueryInstant | None, Query(description='entries at or after this time')] = None,
              until: Annotated[QueryInstant | None, Query(description='entries before this time')] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              cursor: Annotated[int | None, Query(ge=1, le=2**62, description='a next_cursor')] = None) -> AuditPage:
    """Newest first; pass next_cursor back as cursor for the next (older) page."""
    try:
        # Naive times are UTC, as everywhere in the store.
        entries = runtime.store.audit.list(limit=limit, actor=actor, action=action, target=target,
                                           since=since, until=until, before=cursor)
    except (ValueError, OverflowError) as exc:
        raise BadRequest('audit: %s' % str(exc)[:200]) from None
    return AuditPage(entries=[AuditEntryOut(**entry) for entry in entries],
                     next_cursor=entries[-1]['id'] if len(entries) == limit else None)

