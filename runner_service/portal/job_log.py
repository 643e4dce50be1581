"""A job's output as the job page shows it: the tail (the last events, not all 20 MB), what came
after a seq the page has (follow), and a search through every event, page by page."""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner_service.jobs.service import JobService

# The events the page opens with, and the most one follow poll brings (the browser keeps at
# most MAX_LINES lines: static/portal.js drops the oldest).
TAIL_EVENTS = 400
FOLLOW_EVENTS = 1000
MAX_LINES = 3000
SEARCH_MATCHES = 200
SEARCH_TEXT = 200  # the longest search text
_ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')


@dataclass
class LogLines:
    lines: list[tuple[int, str]]  # (event seq, its output)
    last_seq: int  # the seq to follow after
    more: bool = False  # more stored already (a follow poll brings them next)


def _lines(events: list[dict]) -> list[tuple[int, str]]:
    return [(event['seq'], _ANSI.sub('', event['stdout'])) for event in events if event['stdout']]


def tail(jobs: JobService, job_id: str) -> LogLines:
    last = jobs.store.events.last_seq(job_id)
    page = jobs.events(job_id, after=max(0, last - TAIL_EVENTS), limit=TAIL_EVENTS)
    return LogLines(_lines(page['events']), max([last] + [event['seq'] for event in page['events']]))


def after(jobs: JobService, job_id: str, seq: int) -> LogLines:
    page = jobs.events(job_id, after=seq, limit=FOLLOW_EVENTS)
    events = page['events']
    return LogLines(_lines(events), events[-1]['seq'] if events else seq, more=page['next_cursor'] is not None)


def search(jobs: JobService, job_id: str, text: str) -> tuple[list[tuple[int, str]], bool]:
    """(up to SEARCH_MATCHES output lines holding `text`, case-insensitive, with their event seq;
    whether there were more)."""
    needle = text.casefold()
    found: list[tuple[int, str]] = []
    cursor = None
    while True:
        page = jobs.events(job_id, after=cursor, limit=1000)
        for seq, output in _lines(page['events']):
            for line in output.splitlines():
                if needle in line.casefold():
                    if len(found) == SEARCH_MATCHES:
                        return found, True
                    found.append((seq, line))
        cursor = page['next_cursor']
        if cursor is None:
            return found, False
