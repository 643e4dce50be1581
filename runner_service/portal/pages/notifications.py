"""Notifications: what was noticed, newest first, with each delivery's notifier, status, attempts
(their log unfolds), next attempt and last error, filtered by event and notifier; and for admins
the notifiers (name, kind, events: never a secret) with a "Send test" button. The same
NotifierService and role checks as /api/v1/notifications and /api/v1/notifiers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from runner_service.notify.service import NotifierService
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import FormCaller, PageCaller

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Notifications', '/notifications')]
PAGE = 100
NotifierName = r'^[A-Za-z0-9][A-Za-z0-9_.:@-]*$'


@router.get('/notifications')
def notification_list(request: Request, caller: PageCaller,
                      event: Annotated[str, Query(max_length=32, pattern=r'^[a-z_]*$')] = '',
                      notifier: Annotated[str, Query(max_length=255, pattern=NotifierName + '|^$')] = '',
                      before: Annotated[int | None, Query(ge=1, le=2 ** 63 - 1)] = None) -> Response:
    service = NotifierService(request.app.state.runtime)
    notifications = service.notifications(PAGE, notifier=notifier or None, event=event or None, before=before)
    older = notifications[-1]['id'] if len(notifications) == PAGE else None
    return render(request, caller, 'notifications/list.html', {
        'notifications': notifications, 'filters': {'event': event, 'notifier': notifier}, 'older': older,
        'paged': before is not None,
        'notifiers': service.list() if caller.can('admin') else None})


@router.post('/notifiers/{name}/test')
def send_test(request: Request, caller: FormCaller,
              name: Annotated[str, Path(min_length=1, max_length=255, pattern=NotifierName)]) -> Response:
    caller.need('admin')
    NotifierService(request.app.state.runtime).test(name, caller.name)
    return RedirectResponse('/notifications?notifier=%s' % name, status_code=303)
