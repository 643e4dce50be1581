"""Points in time that users write: '7d', '12h', '30m', '2w', '2026-12-31', '2026-12-31T18:00:00Z'."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from dbfleet.clock import utc, utcnow

_UNITS = {'s': 'seconds', 'm': 'minutes', 'h': 'hours', 'd': 'days', 'w': 'weeks'}
_DURATION = re.compile(r'^\s*(\d+)\s*([smhdw])\s*$')


class TimeSpecError(ValueError):
    """A duration or date that cannot be read; the message says what forms are accepted."""


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text or '')
    if not match:
        raise TimeSpecError('%r is not a duration: write a number and a unit s, m, h, d or w (e.g. 7d)' % (text,))
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_point_in_time(text: str, now: datetime | None = None) -> datetime:
    """A duration from now, or an ISO date/datetime (naive means UTC); returned timezone-aware in UTC."""
    now = now or utcnow()
    if _DURATION.match(text or ''):
        return now + parse_duration(text)
    try:
        value = datetime.fromisoformat(text.strip().replace('Z', '+00:00'))
    except (ValueError, AttributeError):
        raise TimeSpecError('%r is neither a duration (7d, 12h) nor an ISO date or datetime (2026-12-31, '
                            '2026-12-31T18:00:00Z)' % (text,)) from None
    return utc(value)
