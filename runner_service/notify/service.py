"""The front door for notifiers: admins create, list, show, delete and test them; templates name
them in `notify`; anyone with a token reads the notifications and their deliveries.

A notifier's secrets (the webhook's HMAC key, the SMTP password, the Slack URL) are sealed with the
service key before the store sees them and never come back out. Create, delete and test are
audited, without secrets. A test is a notification like any other: stored, then sent by the
outbox (runner_service.notify.outbox), its attempts visible as every delivery's are.
"""

from __future__ import annotations

import uuid

from dbfleet.store import UnknownNotifier
from runner_service.errors import Conflict, NotFound, Unprocessable
from runner_service.notify.kinds import split
from runner_service.notify_schemas import NotifierCreate
from runner_service.runtime import Runtime


class NotifierService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store

    def create(self, request: NotifierCreate, actor: str) -> dict:
        public, secret = split(request)
        try:
            notifier = self.store.notifications.create_notifier(
                request.name, request.kind, public, list(dict.fromkeys(request.events)),
                self.runtime.secrets.seal(secret), created_by=actor)
        except ValueError as exc:
            raise Conflict(str(exc)) from None
        self.store.audit.record(actor, 'notifier.create', request.name,
                                {'kind': request.kind, 'events': notifier['events']})
        return notifier

    def get(self, name: str) -> dict:
        try:
            return self.store.notifications.notifier(name)
        except UnknownNotifier as exc:
            raise NotFound(str(exc)) from None

    def list(self) -> list[dict]:
        return self.store.notifications.notifiers()

    def delete(self, name: str, actor: str) -> dict:
        """Conflict while a template or a schedule names it: change or delete those first."""
        self.get(name)
        users = self.users_of(name)
        if users:
            raise Conflict('notifier %s is named by %s%s: remove it from their notify first'
                           % (name, ', '.join(users[:5]), ' and %d more' % (len(users) - 5) if len(users) > 5 else ''))
        try:
            notifier = self.store.notifications.delete_notifier(name)
        except UnknownNotifier as exc:
            raise NotFound(str(exc)) from None
        self.store.audit.record(actor, 'notifier.delete', name, {'kind': notifier['kind']})
        return notifier

    def users_of(self, name: str) -> list[str]:
        """The templates and schedules whose notify names notifier `name`."""
        def names_it(notify: dict | None) -> bool:
            return any(name in names for names in (notify or {}).values())
        return ['template %s' % template['name'] for template in self.store.templates.list()
                if names_it(template['definition'].get('notify'))] + \
            ['schedule %s' % schedule['name'] for schedule in self.store.schedules.list() if names_it(schedule['notify'])]

    def check_subscriptions(self, notify: dict) -> None:
        """A template's notify: every notifier it names exists; Unprocessable naming the first that does not."""
        known = {notifier['name'] for notifier in self.list()}
        for event, names in notify.items():
            for name in names:
                if name not in known:
                    raise Unprocessable('notify.%s: no notifier %r: `dbfleet notifiers list` shows them'
                                        % (event, name[:200]))

    def test(self, name: str, actor: str) -> dict:
        """A test notification to this notifier alone, stored for the outbox to send."""
        notifier = self.get(name)
        subject = '[dbfleet] test of notifier %s' % name
        notification = self.store.notifications.record(
            'test:%s:%s' % (uuid.uuid4().hex, name[:200]), 'test', subject,
            {'text': 'A test notification sent by %s through notifier %s (%s).' % (actor, name, notifier['kind'])},
            [name])
        self.store.audit.record(actor, 'notifier.test', name, {'notification': notification['id']})
        return self.notification(notification['id'], name)

    def notifications(self, limit: int = 100, notifier: str | None = None, event: str | None = None,
                      before: int | None = None) -> list[dict]:
        """Newest first; `before`: older than that notification id (the next page)."""
        if notifier is not None:
            self.get(notifier)
        return self.store.notifications.list(limit=limit, notifier=notifier, event=event, before=before)

    def notification(self, notification_id: int, notifier: str | None = None) -> dict:
        found = self.store.notifications.list(limit=1, notifier=notifier, notification_id=notification_id)
        if not found:
            raise NotFound('no notification %d' % notification_id)
        return found[0]
