"""Where a schedule came from: a schedule imported from a crontab line carries that line in its
`source` (runner_service.bridge.platform describes the record), and its crontab mode decides who
fires it and what may change it here.

The bridge builds on schedules, never the other way round: a schedule service that must keep a
bridged entry's crontab line in step with its edits is given the bridge as its `CrontabLines`.
"""

from __future__ import annotations

from typing import Protocol

CRONTAB_ORIGIN = 'crontab'  # source.origin of schedules imported from crontab


def crontab_mode(schedule: dict) -> str | None:
    """The crontab bridge's mode of a schedule imported from crontab (observe, takeover, reverted), else None."""
    source = schedule.get('source') or {}
    return source.get('mode') if source.get('origin') == CRONTAB_ORIGIN else None


def is_bridged(schedule: dict) -> bool:
    return crontab_mode(schedule) is not None


class CrontabLines(Protocol):
    def source_after_update(self, current: dict, fields: dict) -> dict | None:
        """Before a bridged schedule is written with `fields`: its new source (the crontab line
        its new timing or command becomes), None when the line stays; Conflict or BadRequest
        when crontab cannot follow."""
