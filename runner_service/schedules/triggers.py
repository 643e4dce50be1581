"""When a schedule fires: cron expressions (with an optional seconds field), fixed intervals,
one-shot times, each in an IANA time zone.

    trigger = parse_trigger('cron', '0 30 1 * * *', 'Europe/Berlin')   # 01:30:00 every day
    trigger.next_after(utc_instant) -> the next fire time (aware UTC) or None

Cron: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first (as in
Quartz and Spring), names (MON-FRI, JAN), 0 and 7 for Sunday, ranges, steps and lists, and
@yearly @monthly @weekly @daily @midnight @hourly. croniter computes wall-clock times; how
they map onto real instants across daylight-saving changes is decided here, as cronie does:
- a wall time that does not exist (clocks jump forward): a schedule with a fixed hour fires
  once, as much later as the clock jumped (02:30 -> 03:30); one that runs every hour or more
  often simply has no fire in the missing hour;
- a wall time that happens twice (clocks go back): a fixed-hour schedule fires once, at the
  first; an hourly-or-more-often schedule fires at both, so it keeps its real-time rhythm.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

KINDS = ('cron', 'interval', 'once')
NAMED = {'@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0',
         '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *'}
UTC = dt.timezone.utc
# Enough wall-clock steps to cross a repeated hour of a per-second schedule.
_MAX_STEPS = 100000


class TriggerError(ValueError):
    """A schedule's timing cannot be used; the message says why and what is expected."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory such as 'Europe'
        raise TriggerError('unknown time zone %r: use an IANA name such as UTC, Europe/Berlin or '
                           'America/New_York' % (name,)) from None


@dataclass(frozen=True)
class CronTrigger:
    expression: str
    tz: ZoneInfo
    seconds: bool  # six fields, seconds first
    wildcard_hour: bool

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        local = after.astimezone(self.tz).replace(tzinfo=None)
        # When the clocks go back soon, wall times just before `after`'s recur after it: start
        # that much earlier (the offset's drop over the next hours), else just before `after`.
        offset = after.astimezone(self.tz).utcoffset()
        drop = max((offset - (after + dt.timedelta(hours=hours)).astimezone(self.tz).utcoffset()
                    for hours in (1, 2, 3)), default=dt.timedelta(0))
        start = local - max(drop, dt.timedelta(0)) - dt.timedelta(seconds=1)
        iterator = croniter(self.expression, start, second_at_beginning=self.seconds)
        # Wall times come in order, their instants not quite: in a repeated hour the second
        # 02:00 (01:00Z in Berlin) comes after the first 02:05 (00:05Z). Keep the earliest
        # instant found, and stop at the first wall time whose first instant is not earlier.
        best = None
        for _ in range(_MAX_STEPS):
            try:
                wall = iterator.get_next(dt.datetime)
            except CroniterBadDateError:  # matches no date at all (30 February)
                return best
            for instant in self._instants(wall):
                if instant > after and (best is None or instant < best):
                    best = instant
            if best is not None and wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC) >= best:
                return best
        return best

    def _instants(self, wall: dt.datetime) -> list[dt.datetime]:
        first = wall.replace(tzinfo=self.tz, fold=0)
        second = wall.replace(tzinfo=self.tz, fold=1)
        exists = _exists(first)
        if not exists:  # skipped by a jump forward
            return [] if self.wildcard_hour else [first.astimezone(UTC)]
        instants = [first.astimezone(UTC)]
        if second.astimezone(UTC) != instants[0] and self.wildcard_hour:  # happens twice
            instants.append(second.astimezone(UTC))
        return instants


# An interval longer than this is refused: a year is the longest a DBA means by 'every'.
MAX_INTERVAL_SECONDS = 366 * 86400


@dataclass(frozen=True)
class IntervalTrigger:
    seconds: float
    anchor: dt.datetime  # the first fire; later ones are anchor + k * seconds, in real time

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        if after < self.anchor:
            return self.anchor
        steps = int((after - self.anchor).total_seconds() // self.seconds) + 1
        try:
            return self.anchor + dt.timedelta(seconds=steps * self.seconds)
        except OverflowError:  # past the calendar's end (a stored interval from before the bound): never
            return None


@dataclass(frozen=True)
class OnceTrigger:
    at: dt.datetime

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        return self.at if self.at > after else None


Trigger = CronTrigger | IntervalTrigger | OnceTrigger


def parse_trigger(kind: str, expression: str, timezone: str = 'UTC', anchor: dt.datetime | None = None) -> Trigger:
    """kind cron: a cron expression; interval: seconds, or a duration like 90s, 15m, 2h, 1d
    (first fire at `anchor`, required: an interval is only defined by where it starts, and one
    anchored at 'now' when read would move its slots on every reading); once: an ISO time
    (naive means in `timezone`)."""
    tz = zone(timezone)
    if not isinstance(expression, str) or not expression.strip():
        raise TriggerError('%s: the expression is empty' % kind)
    expression = expression.strip()
    if kind == 'cron':
        return _cron(expression, tz)
    if kind == 'interval':
        seconds = parse_duration(expression)
        if anchor is None:
            raise TriggerError('interval: no first fire (start_at) is stored; give the interval again, or a start_at')
        return IntervalTrigger(seconds, anchor.astimezone(UTC))
    if kind == 'once':
        try:
            at = dt.datetime.fromisoformat(expression.replace('Z', '+00:00'))
        except ValueError:
            raise TriggerError('once: %r is not an ISO time such as 2026-12-24T18:00:00 or '
                               '2026-12-24T17:00:00Z' % expression) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=tz)
        return OnceTrigger(at.astimezone(UTC))
    raise TriggerError('unknown schedule kind %r: use one of %s' % (kind, ', '.join(KINDS)))


def trigger_of(schedule: dict):
    """The schedule's trigger, as stored: the one thing every fire time is computed from (the
    scheduler's slots, create's and update's next fire, the preview), so they all agree. An
    interval is anchored at its stored start (job['start_at']); one without it is refused
    (TriggerError), never anchored at 'now'."""
    anchor = schedule['job'].get('start_at')
    return parse_trigger(schedule['kind'], schedule['expression'], schedule['timezone'],
                         anchor=dt.datetime.fromisoformat(anchor) if anchor else None)


def _cron(expression: str, tz: ZoneInfo) -> CronTrigger:
    expanded = NAMED.get(expression.lower(), expression)
    if expanded.startswith('@'):
        raise TriggerError('cron: unknown name %r; known: %s (@reboot belongs to crontab, not to a schedule)'
                           % (expression, ', '.join(sorted(NAMED))))
    fields = expanded.split()
    if len(fields) not in (5, 6):
        raise TriggerError('cron: %r has %d fields; give 5 (minute hour day month weekday) or 6 with seconds '
                           'first (second minute hour day month weekday)' % (expression, len(fields)))
    seconds = len(fields) == 6
    if not croniter.is_valid(expanded, second_at_beginning=seconds):
        raise TriggerError('cron: %r is not a valid expression (fields: %s)' % (
            expression, 'second minute hour day month weekday' if seconds else 'minute hour day month weekday'))
    hour = fields[2 if seconds else 1]
    trigger = CronTrigger(expanded, tz, seconds, wildcard_hour=hour == '*' or hour.startswith('*/'))
    if trigger.next_after(dt.datetime.now(UTC)) is None:
        raise TriggerError('cron: %r never fires' % expression)
    return trigger


def parse_duration(text: str) -> float:
    units = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}
    value = text.strip().lower()
    try:
        seconds = float(value[:-1]) * units[value[-1]] if value[-1:] in units else float(value)
    except ValueError:
        raise TriggerError('interval: %r is not a duration such as 30, 90s, 15m, 2h or 1d' % text) from None
    if not seconds >= 1:
        raise TriggerError('interval: %r is shorter than one second' % text[:40])
    if not seconds <= MAX_INTERVAL_SECONDS:
        raise TriggerError('interval: %r is longer than a year (366d); use a cron expression or a one-shot time'
                           % text[:40])
    return seconds


def preview(trigger: Trigger, count: int, after: dt.datetime) -> list[dt.datetime]:
    times: list[dt.datetime] = []
    while len(times) < count:
        following = trigger.next_after(times[-1] if times else after)
        if following is None:
            break
        times.append(following)
    return times


def _exists(aware: dt.datetime) -> bool:
    """Whether a wall time really occurs in its zone (not inside a jump forward)."""
    round_trip = aware.astimezone(UTC).astimezone(aware.tzinfo)
    return round_trip.replace(tzinfo=None) == aware.replace(tzinfo=None)
