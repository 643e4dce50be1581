"""Time as dbfleet keeps it: aware datetimes in UTC. A naive datetime (as SQLite and some
drivers hand back) is taken to be UTC already."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """`value` as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)
