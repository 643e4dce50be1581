"""Maintenance windows: named blackout periods in which the schedules in scope do not fire.

    windows = WindowService(runtime)
    windows.create(WindowCreate(name='saturday-night', kind='recurring', start='0 1 * * 6',
                                duration_seconds=7200, timezone='Europe/Berlin'), 'admin')
    windows.blocking(schedule, slot) -> (window, end) or None

A recurring window begins at each fire of its cron expression (daylight-saving changes handled
as for schedules, runner_service.schedules.triggers), an absolute one once, at an ISO time. Each occurrence
lasts duration_seconds of real time and covers [start, end): a slot at the very end is outside.
A window without tags covers every schedule; one with tags covers the schedules whose job
targets tags and shares at least one host of the store with the window's tags (a schedule on
an inventory file has hosts the store does not know, so only unscoped windows cover it).

What a covered slot does is the schedule's window_policy (the scheduler acts on it, the preview
shows it): 'skip' drops the slot; 'defer' drops it too and fires once at the window's end, however
many slots the window covered (`deferred_next`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from dbfleet.clock import utcnow
from dbfleet.store import UnknownWindow
from dbfleet.tags import TagExpression, TagExpressionError, parse_tag_expression
from runner_service.errors import BadRequest, NotFound
from runner_service.runtime import Runtime
from runner_service.schedules.triggers import Trigger, TriggerError, parse_trigger, zone
from runner_service.schemas import WindowCreate

log = logging.getLogger(__name__)

# An occurrence list stops here, whatever the range asked (a window may start every second).
MAX_OCCURRENCES = 100
UPCOMING_WITHIN = dt.timedelta(days=400)

Block = tuple['Window', dt.datetime]  # the window covering an instant, and when that occurrence ends


def parse_start(kind: str, start: str, timezone: str) -> Trigger:
    """When a window's occurrences begin: a cron trigger (recurring) or a one-shot (absolute)."""
    return parse_trigger('cron' if kind == 'recurring' else 'once', start, timezone)


@dataclass(frozen=True)
class Window:
    id: str
    name: str
    starts: Trigger
    duration: dt.timedelta
    tags: TagExpression | None

    @classmethod
    def from_row(cls, row: dict) -> Window:
        """TriggerError or TagExpressionError when the stored start, time zone or tags do not parse."""
        return cls(id=row['id'], name=row['name'], starts=parse_start(row['kind'], row['start'], row['timezone']),
                   duration=dt.timedelta(seconds=row['duration_seconds']),
                   tags=parse_tag_expression(row['tags']) if row['tags'] else None)

    def active_at(self, instant: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
        """(start, end) of the occurrence covering `instant`, the latest-starting one if several
        overlap; None outside every occurrence. Triggers only step forward, so look for the
        latest start in (instant - span, instant], widening span up to the duration: an occurrence
        that began longer ago has ended."""
        span = dt.timedelta(seconds=1)
        while True:
            span = min(span, self.duration)
            start = self.starts.next_after(instant - span)
            if start is not None and start <= instant:
                following = self.starts.next_after(start)
                while following is not None and following <= instant:
                    start, following = following, self.starts.next_after(following)
                return start, start + self.duration
            if span == self.duration:
                return None
            span *= 2

    def occurrences(self, after: dt.datetime, before: dt.datetime,
                    limit: int = MAX_OCCURRENCES) -> list[tuple[dt.datetime, dt.datetime]]:
        """The occurrences overlapping [after, before): the one going on at `after`, then those
        starting before `before`, at most `limit`."""
        found = []
        current = self.active_at(after)
        if current is not None:
            found.append(current)
        start = self.starts.next_after(after)
        while start is not None and start < before and len(found) < limit:
            found.append((start, start + self.duration))
            start = self.starts.next_after(start)
        return found

    def applies_to(self, schedule: dict, store) -> bool:
        if self.tags is None:
            return True
        target = schedule['job'].get('tags')
        if target is None and schedule['job'].get('template'):  # the template's hosts, as it is now
            try:
                target = store.templates.get(schedule['job']['template'])['definition'].get('tags')
            except LookupError:
                return False
        if target is None:
            return False
        targeted = parse_tag_expression(target)
        return any(targeted.matches(host['tags']) and self.tags.matches(host['tags'])
                   for host in store.hosts.inventory(fact_paths=()))


def deferred_next(following: dt.datetime | None, block: Block | None, policy: str) -> dt.datetime | None:
    """The slot after a blocked one. With 'defer' it is the window's end when that comes first, so
    the slots a window covers fire once, at its end (an instant that may be no trigger slot)."""
    if block is None or policy != 'defer':
        return following
    end = block[1]
    return end if following is None or end < following else following


def block_reason(block: Block, policy: str, tz) -> str:
    window, end = block
    if policy == 'defer':
        return 'deferred to the end of maintenance window %s (%s)' % (window.name, end.astimezone(tz).isoformat())
    return 'inside maintenance window %s (until %s)' % (window.name, end.astimezone(tz).isoformat())


class WindowService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store

    def create(self, request: WindowCreate, actor: str) -> dict:
        try:
            zone(request.timezone)
        except TriggerError as exc:
            raise BadRequest('timezone: %s' % exc) from None
        try:
            starts = parse_start(request.kind, request.start, request.timezone)
        except TriggerError as exc:
            raise BadRequest('start: %s' % exc) from None
        if request.tags is not None:
            try:
                parse_tag_expression(request.tags)
            except TagExpressionError as exc:
                raise BadRequest('tags: %s' % exc) from None
        now = utcnow()
        if request.kind == 'absolute' and starts.next_after(now - dt.timedelta(seconds=request.duration_seconds)) \
                is None:
            raise BadRequest('start: the window %s + %d s is over already; give a time to come'
                             % (request.start, request.duration_seconds))
        try:
            window = self.store.windows.create(created_by=actor, **request.model_dump())
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        self.store.audit.record(actor, 'window.create', window['name'], {'kind': window['kind'], 'start': window['start'],
                                                                   'duration_seconds': window['duration_seconds']})
        return window

    def list(self) -> list[dict]:
        return self.store.windows.list()

    def get(self, ref: str) -> dict:
        try:
            return self.store.windows.get(ref)
        except UnknownWindow as exc:
            raise NotFound(str(exc)) from None

    def delete(self, ref: str, actor: str) -> dict:
        window = self.store.windows.delete(self.get(ref)['id'])
        self.store.audit.record(actor, 'window.delete', window['name'])
        return window

    def upcoming(self, window: dict, count: int = 5) -> list[tuple[dt.datetime, dt.datetime]]:
        """The window's occurrence going on now and the next ones (within 400 days), in its time
        zone; none when this machine cannot read it (a time zone it lacks)."""
        try:
            parsed, tz = Window.from_row(window), zone(window['timezone'])
        except (TriggerError, TagExpressionError):
            return []
        now = utcnow()
        return [(start.astimezone(tz), end.astimezone(tz))
                for start, end in parsed.occurrences(now, now + UPCOMING_WITHIN, limit=count)]

    def windows(self) -> list[Window]:
        """Every stored window, parsed. One this machine cannot read (a time zone it lacks) is left
        out, with a warning: it was checked when created."""
        parsed = []
        for row in self.store.windows.list():
            try:
                parsed.append(Window.from_row(row))
            except (TriggerError, TagExpressionError) as exc:
                log.warning('maintenance window %s is ignored: %s', row['name'], exc)
        return parsed

    def blocking(self, schedule: dict, instant: dt.datetime, windows: list[Window] | None = None) -> Block | None:
        """The window in the schedule's scope covering `instant` that ends last, with that end;
        None when no window blocks it. `windows`: already loaded (a preview checks many instants)."""
        found: Block | None = None
        for window in self.windows() if windows is None else windows:
            occurrence = window.active_at(instant)
            if occurrence is not None and (found is None or occurrence[1] > found[1]) \
                    and window.applies_to(schedule, self.store):
                found = (window, occurrence[1])
        return found
