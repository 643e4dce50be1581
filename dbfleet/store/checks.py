"""Input checks the jobs, events and audit parts share: each refuses bad input with a
ValueError that names the field and what it wanted, before any transaction starts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dbfleet.clock import utc

MAX_PAGE = 1000


def check_text(value: Any, what: str, length: int | None = None) -> str:
    if not isinstance(value, str) or not value or (length is not None and len(value) > length):
        raise ValueError('%s must be a non-empty string%s, got %r'
                         % (what, ' of at most %d characters' % length if length else '', value))
    return value


def check_int(value: Any, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        raise ValueError('%s must be an integer%s, got %r'
                         % (what, ' of at least %d' % minimum if minimum is not None else '', value))
    return value


def check_datetime(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise ValueError('%s must be a datetime, got %r' % (what, value))
    return utc(value)


def check_limit(limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError('limit must be an integer from 1 to %d, got %r' % (MAX_PAGE, limit))
