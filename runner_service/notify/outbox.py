"""Working off the outbox: claim each due delivery (a conditional UPDATE: two senders never hold
the same one), send it, record the attempt. A failed attempt is tried again after
DBFLEET_NOTIFY_BACKOFF_SECONDS, doubling up to an hour, until DBFLEET_NOTIFY_ATTEMPTS; then it is
failed. A sender that dies mid-send leaves a claim that expires, and another sender (or itself,
restarted) sends it again: at least once, never twice at the same time."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import traceback
from typing import Callable

from dbfleet.clock import utcnow
from dbfleet.store import UnknownNotifier
from runner_service.notify.senders import DeliveryFailed, send
from runner_service.runtime import Runtime
from runner_service.secret_box import SecretsError

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600.0
BATCH = 20


def backoff(attempts: int, first_seconds: float) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt: first_seconds, doubling, at most an hour."""
    return dt.timedelta(seconds=min(first_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS))


def payload_of(notification: dict) -> dict:
    """The notification as receivers see it: what was stored, plus its id, event and time."""
    return {**notification['payload'], 'id': notification['id'], 'event': notification['event'],
            'subject': notification['subject'], 'created_at': notification['created_at'].isoformat()}


class Outbox:
    def __init__(self, runtime: Runtime, clock: Callable[[], dt.datetime] = utcnow, name: str | None = None):
        self.runtime = runtime
        self.store = runtime.store
        self.clock = clock
        self.name = name or '%s/%d' % (socket.gethostname(), os.getpid())
        settings = runtime.settings
        self.timeout = settings.notify_timeout_seconds
        # A claim outlives the longest attempt: SMTP's connect, STARTTLS, AUTH and DATA each have the timeout.
        self.lease = dt.timedelta(seconds=settings.notify_timeout_seconds * 6 + 30)

    def pass_once(self) -> int:
        """Send what is due now; the number of attempts made."""
        attempts = 0
        for delivery_id in self.store.notifications.due(self.clock(), limit=BATCH):
            delivery = self.store.notifications.claim(delivery_id, self.name, self.clock(), self.lease)
            if delivery is not None:
                self.attempt(delivery)
                attempts += 1
        return attempts

    def attempt(self, delivery: dict) -> dict | None:
        error = None
        try:
            notifier = self.store.notifications.notifier(delivery['notifier'])
            send(notifier, self.runtime.secrets.open(notifier['sealed']), payload_of(delivery['notification']),
                 delivery['id'], self.timeout)
        except UnknownNotifier:
            error = 'notifier %s was deleted' % delivery['notifier']
        except SecretsError:
            error = "the notifier's secrets do not open with this service's DBFLEET_SECRET_KEY"
        except DeliveryFailed as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one delivery never stops the ones queued behind it
            # Its type and where it was raised, never its message (which may hold a secret), in the
            # delivery (a viewer reads it) and in the log.
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            error = 'the sender failed unexpectedly (%s at %s:%d)' % (type(exc).__name__,
                                                                      os.path.basename(frame.filename), frame.lineno)
            log.error('delivery %s to %s: %s', delivery['id'], delivery['notifier'], error)
        now = self.clock()
        attempts = delivery['attempts'] + 1
        retry = (error is not None and attempts < self.runtime.settings.notify_attempts
                 and not error.startswith('notifier '))
        next_at = now + backoff(attempts, self.runtime.settings.notify_backoff_seconds) if retry else None
        if error is not None:
            log.warning('delivery %s to %s, attempt %d: %s', delivery['id'], delivery['notifier'], attempts, error)
        return self.store.notifications.attempted(delivery['id'], self.name, now, error, next_at)
