"""/api/v1/notifications: what was noticed (a job failed, recovered, timed out...), whether a
maintenance window silenced it, and each delivery with its attempts. Viewers read; no secret is in them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from runner_service.api.deps import Notifiers, Viewer
from runner_service.api.errors import error_responses
from runner_service.notify_schemas import NotificationOut

router = APIRouter(prefix='/api/v1/notifications', tags=['notifications'])
ERRORS = error_responses(401, 403, 422)


@router.get('', response_model=list[NotificationOut], responses=ERRORS)
def list_notifications(notifiers: Notifiers, caller: Viewer,
                       limit: Annotated[int, Query(ge=1, le=1000, description='at most this many, newest first')] = 100,
                       event: Annotated[str | None, Query(max_length=32, description='only this event: failed, '
                                                          'recovered, timed_out, worker_lost, test')] = None,
                       before: Annotated[int | None, Query(ge=1, le=2 ** 63 - 1, description='only notifications '
                                                           'older than this id: the next page is before the '
                                                           'last id of this one')] = None,
                       ) -> list[NotificationOut]:
    return [NotificationOut(**notification)
            for notification in notifiers.notifications(limit, event=event, before=before)]
