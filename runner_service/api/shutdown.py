"""The API process is stopping (SIGTERM, SIGINT): live event streams end at their next wake-up,
so uvicorn's graceful shutdown is not held open by them. Clients reconnect with Last-Event-ID."""

from __future__ import annotations

import threading

_stopping = threading.Event()


def begin() -> None:
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()
