"""The notifier inside each API process: every DBFLEET_NOTIFY_SECONDS, notice the jobs that ended and the slots missed or skipped
(watch.Watcher) and send what is due (outbox.Outbox), on a daemon thread beside the reconciler.

The API runs it because the API is the one process every installation has running (the scheduler
is optional, workers are many and come and go) and its reconciler already watches the same store;
two APIs are harmless: a notification is stored once by its key and a delivery is sent by the one
sender that claimed it.
"""

from __future__ import annotations

import logging
import threading

from runner_service.notify.outbox import Outbox
from runner_service.notify.watch import Watcher
from runner_service.runtime import Runtime

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, runtime: Runtime):
        self.interval = runtime.settings.notify_seconds
        self.watcher = Watcher(runtime)
        self.outbox = Outbox(runtime)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name='dbfleet-notifier', daemon=True)

    def start(self) -> 'Notifier':
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        while not self.stopped.is_set():
            for step in (self.watcher.pass_once, self.outbox.pass_once):
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - the store away: next pass
                    log.warning('notifier pass failed: %s', exc)
            self.stopped.wait(self.interval)
