"""Points in time a command takes: a duration back from now (7d) or a date or datetime."""

from __future__ import annotations

from typing import Optional

from runner_service.cli.output import fail


def point_in_time(text: Optional[str], option: str):
    """The UTC datetime `text` names (None for None); a bad one ends the command naming `option`."""
    if text is None:
        return None
    from dbfleet.clock import utcnow
    from dbfleet.durations import TimeSpecError, parse_duration, parse_point_in_time
    try:
        try:
            return utcnow() - parse_duration(text)
        except TimeSpecError:
            return parse_point_in_time(text)
    except (TimeSpecError, OverflowError) as exc:
        fail('%s: %s' % (option, str(exc)[:200]))
