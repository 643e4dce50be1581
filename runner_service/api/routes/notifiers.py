"""/api/v1/notifiers: admins create, list, show, delete and test notifiers; nobody reads a secret
back. Their deliveries (what was sent, each attempt) any token but an agent's may read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from runner_service.api.deps import Admin, Notifiers, Viewer
from runner_service.api.errors import error_responses
from runner_service.notify_schemas import NotificationOut, NotifierCreate, NotifierOut

router = APIRouter(prefix='/api/v1/notifiers', tags=['notifications'])
ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422)
Name = Annotated[str, Path(min_length=1, max_length=255, description='a notifier name')]
Limit = Annotated[int, Query(ge=1, le=1000, description='at most this many, newest first')]


def notifier_view(notifier: dict) -> NotifierOut:
    """Only what may be shown: the sealed secrets stay behind."""
    public = {key: value for key, value in notifier['public'].items() if key != 'ca_cert'}
    return NotifierOut(name=notifier['name'], kind=notifier['kind'], events=notifier['events'],
                       created_at=notifier['created_at'], created_by=notifier['created_by'],
                       links={'self': '/api/v1/notifiers/%s' % notifier['name'],
                              'deliveries': '/api/v1/notifiers/%s/deliveries' % notifier['name']}, **public)


@router.post('', status_code=201, response_model=NotifierOut, responses=ERRORS)
def create(body: NotifierCreate, notifiers: Notifiers, caller: Admin) -> NotifierOut:
    """The secret fields (secret, password, a Slack url) are sealed with the service key and never returned."""
    return notifier_view(notifiers.create(body, caller['name']))


@router.get('', response_model=list[NotifierOut], responses=ERRORS)
def list_notifiers(notifiers: Notifiers, caller: Admin) -> list[NotifierOut]:
    return [notifier_view(notifier) for notifier in notifiers.list()]


@router.get('/{name}', response_model=NotifierOut, responses=ERRORS)
def show(name: Name, notifiers: Notifiers, caller: Admin) -> NotifierOut:
    return notifier_view(notifiers.get(name))


@router.delete('/{name}', response_model=NotifierOut, responses=ERRORS)
def delete(name: Name, notifiers: Notifiers, caller: Admin) -> NotifierOut:
    """Refused (409) while a template names it."""
    return notifier_view(notifiers.delete(name, caller['name']))


@router.post('/{name}/test', status_code=202, response_model=NotificationOut, responses=ERRORS)
def test(name: Name, notifiers: Notifiers, caller: Admin) -> NotificationOut:
    """A test notification, stored and then sent like any other: follow it in its deliveries."""
    return NotificationOut(**notifiers.test(name, caller['name']))


@router.get('/{name}/deliveries', response_model=list[NotificationOut], responses=ERRORS)
def deliveries(name: Name, notifiers: Notifiers, caller: Viewer, limit: Limit = 100) -> list[NotificationOut]:
    """The notifications sent (or silenced) through this notifier, with each delivery's attempts."""
    return [NotificationOut(**notification) for notification in notifiers.notifications(limit, notifier=name)]
