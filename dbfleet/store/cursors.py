"""Page cursors of newest-first listings (jobs, backups): the last row of a page as its time in
microseconds since 1970 and its id, so later pages neither repeat nor skip rows when new ones
arrive meanwhile."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from dbfleet.clock import utc

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_CURSOR = re.compile(r'^(\d{1,20})\.([0-9A-Za-z_-]{1,64})$')


def page_cursor(at: dt.datetime, row_id: Any) -> str:
    since = utc(at) - _EPOCH
    return '%d.%s' % ((since.days * 86400 + since.seconds) * 1_000_000 + since.microseconds, row_id)


def parse_page_cursor(cursor: Any, listing: str, numeric_id: bool = False) -> tuple[dt.datetime, str]:
    """(time, id as text) of a cursor page_cursor gave out; ValueError naming `listing` otherwise."""
    match = _CURSOR.match(cursor) if isinstance(cursor, str) else None
    if match is None or (numeric_id and not match.group(2).isdigit()):
        raise ValueError('cursor %r is not one %s gave out: pass next_cursor back unchanged'
                         % (str(cursor)[:100], listing))
    try:
        return _EPOCH + dt.timedelta(microseconds=int(match.group(1))), match.group(2)
    except OverflowError:
        raise ValueError('cursor %r is out of range: pass next_cursor back unchanged' % (cursor[:100],)) from None
