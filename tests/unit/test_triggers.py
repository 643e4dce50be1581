"""Triggers: cron with seconds, names and time zones, both DST transitions, intervals, one-shots."""

from __future__ import annotations

import datetime as dt

import pytest

from runner_service.schedules.triggers import TriggerError, parse_duration, parse_trigger, preview

UTC = dt.timezone.utc


def local(times, zone):
    return [time.astimezone(zone).strftime('%m-%d %H:%M:%S%z') for time in times]


def at(*args):
    return dt.datetime(*args, tzinfo=UTC)


def test_six_fields_put_seconds_first():
    trigger = parse_trigger('cron', '*/15 * * * * *', 'UTC')
    assert preview(trigger, 4, at(2026, 1, 1, 0, 0, 1)) == [at(2026, 1, 1, 0, 0, 15), at(2026, 1, 1, 0, 0, 30),
                                                           at(2026, 1, 1, 0, 0, 45), at(2026, 1, 1, 0, 1, 0)]
    five = parse_trigger('cron', '5 1 * * *', 'UTC')
    assert five.next_after(at(2026, 1, 1)) == at(2026, 1, 1, 1, 5)


@pytest.mark.parametrize('expression, after, expected', [
    ('@daily', at(2026, 5, 5, 10), at(2026, 5, 6)),
    ('@hourly', at(2026, 5, 5, 10, 1), at(2026, 5, 5, 11)),
    ('@weekly', at(2026, 5, 5), at(2026, 5, 10)),  # Sunday
    ('@monthly', at(2026, 5, 5), at(2026, 6, 1)),
    ('@yearly', at(2026, 5, 5), at(2027, 1, 1)),
    ('0 3 * * MON-FRI', at(2026, 5, 8, 4), at(2026, 5, 11, 3)),  # Friday 04:00 -> Monday
    ('0 0 1 JAN *', at(2026, 5, 5), at(2027, 1, 1)),
    ('0 0 * * 7', at(2026, 5, 5), at(2026, 5, 10)),  # 7 is Sunday too
    ('0 0 * * 0', at(2026, 5, 5), at(2026, 5, 10)),
    ('0 9-17/4 * * *', at(2026, 5, 5, 10), at(2026, 5, 5, 13)),
    ('0 0 1,15 * *', at(2026, 5, 2), at(2026, 5, 15)),
])
def test_cron_syntax(expression, after, expected):
    assert parse_trigger('cron', expression, 'UTC').next_after(after) == expected


def test_time_zones_move_the_instants():
    berlin = parse_trigger('cron', '0 1 * * *', 'Europe/Berlin')
    assert berlin.next_after(at(2026, 1, 9, 12)) == at(2026, 1, 10, 0)  # CET, UTC+1
    assert berlin.next_after(at(2026, 7, 10)) == at(2026, 7, 10, 23)  # CEST: 01:00 on the 11th
    new_york = parse_trigger('cron', '@daily', 'America/New_York')
    assert new_york.next_after(at(2026, 1, 1)) == at(2026, 1, 1, 5)


def test_spring_forward_fixed_time_fires_once_shifted_hourly_skips_the_missing_hour():
    zone = parse_trigger('cron', '30 2 * * *', 'Europe/Berlin').tz  # 2026-03-29 02:00 -> 03:00
    fixed = parse_trigger('cron', '30 2 * * *', 'Europe/Berlin')
    assert local(preview(fixed, 3, at(2026, 3, 27, 12)), zone) == [
        '03-28 02:30:00+0100', '03-29 03:30:00+0200', '03-30 02:30:00+0200']
    hourly = parse_trigger('cron', '30 * * * *', 'Europe/Berlin')
    assert local(preview(hourly, 3, at(2026, 3, 29, 0, 0)), zone) == [
        '03-29 01:30:00+0100', '03-29 03:30:00+0200', '03-29 04:30:00+0200']
    every_minute = parse_trigger('cron', '* * * * *', 'Europe/Berlin')
    times = preview(every_minute, 3, at(2026, 3, 29, 0, 58))
    assert local(times, zone) == ['03-29 01:59:00+0100', '03-29 03:00:00+0200', '03-29 03:01:00+0200']
    assert [later - earlier for earlier, later in zip(times, times[1:])] == [dt.timedelta(minutes=1)] * 2


def test_fall_back_fixed_time_fires_once_hourly_fires_in_both_hours():
    zone = parse_trigger('cron', '30 2 * * *', 'Europe/Berlin').tz  # 2026-10-25 03:00 -> 02:00
    fixed = parse_trigger('cron', '30 2 * * *', 'Europe/Berlin')
    assert local(preview(fixed, 3, at(2026, 10, 24, 12)), zone) == [
        '10-25 02:30:00+0200', '10-26 02:30:00+0100', '10-27 02:30:00+0100']
    hourly = parse_trigger('cron', '30 * * * *', 'Europe/Berlin')
    times = preview(hourly, 4, at(2026, 10, 24, 23, 0))
    assert local(times, zone) == ['10-25 01:30:00+0200', '10-25 02:30:00+0200', '10-25 02:30:00+0100',
                                  '10-25 03:30:00+0100']
    assert all(later - earlier == dt.timedelta(hours=1) for earlier, later in zip(times, times[1:]))
    # From inside the repeated hour, the second 02:30 is still ahead.
    assert hourly.next_after(at(2026, 10, 25, 0, 45)) == at(2026, 10, 25, 1, 30)


def test_us_transitions_too():
    fixed = parse_trigger('cron', '30 2 * * *', 'America/New_York')  # 2026-03-08 02:00 -> 03:00
    assert fixed.next_after(at(2026, 3, 8, 0)) == at(2026, 3, 8, 7, 30)  # 03:30 EDT
    # 2026-11-01 02:00 EDT -> 01:00 EST repeats 01:xx, so 02:30 happens once, in EST
    assert fixed.next_after(at(2026, 11, 1, 0)) == at(2026, 11, 1, 7, 30)
    early = parse_trigger('cron', '30 1 * * *', 'America/New_York')
    assert early.next_after(at(2026, 11, 1, 0)) == at(2026, 11, 1, 5, 30)  # the first 01:30 (EDT)
    assert early.next_after(at(2026, 11, 1, 5, 30)) == at(2026, 11, 2, 6, 30)  # not the second


def test_interval_and_once():
    start = at(2026, 1, 1, 12)
    every = parse_trigger('interval', '15m', 'UTC', anchor=start)
    assert every.next_after(at(2026, 1, 1, 11)) == start
    assert every.next_after(start) == at(2026, 1, 1, 12, 15)
    assert every.next_after(at(2026, 1, 1, 13, 7)) == at(2026, 1, 1, 13, 15)
    once = parse_trigger('once', '2026-12-24T18:00:00', 'Europe/Berlin')
    assert once.next_after(at(2026, 12, 1)) == at(2026, 12, 24, 17)
    assert once.next_after(at(2026, 12, 25)) is None
    assert parse_trigger('once', '2026-12-24T17:00:00Z', 'Asia/Tokyo').next_after(at(2026, 1, 1)) == at(2026, 12, 24, 17)
    assert [parse_duration(text) for text in ('30', '90s', '15m', '2h', '1d', '1.5')] == [30, 90, 900, 7200, 86400, 1.5]


@pytest.mark.parametrize('kind, expression, timezone, message', [
    ('cron', '61 * * * *', 'UTC', 'not a valid expression'),
    ('cron', '* * *', 'UTC', 'has 3 fields'),
    ('cron', '@reboot', 'UTC', '@reboot belongs to crontab'),
    ('cron', '0 0 30 2 *', 'UTC', 'never fires'),
    ('cron', '0 0 * * *', 'Mars/Olympus', 'unknown time zone'),
    ('interval', '0.2s', 'UTC', 'shorter than one second'),
    ('interval', 'often', 'UTC', 'not a duration'),
    ('once', 'tomorrow', 'UTC', 'not an ISO time'),
    ('weekly', 'x', 'UTC', 'unknown schedule kind'),
    ('cron', '  ', 'UTC', 'expression is empty'),
])
def test_bad_triggers_say_why(kind, expression, timezone, message):
    with pytest.raises(TriggerError, match=message):
        parse_trigger(kind, expression, timezone)


@pytest.mark.parametrize('expression', ['*/5 * * * *', '0 * * * *', '15,45 * * * *', '*/30 * * * * *'])
@pytest.mark.parametrize('timezone', ['Europe/Berlin', 'America/New_York'])
def test_an_hourly_or_more_often_schedule_keeps_its_real_time_rhythm_across_both_changes(expression, timezone):
    """Fall-back lost the first pass of the repeated hour: in the wall hour that happens twice,
    the second occurrence of 02:00 was returned before the first of 02:05 (01:00Z before 00:05Z),
    so a five-minute schedule jumped from 00:00Z to 01:00Z. In whole-hour zones such a schedule
    fires at exactly the instants the same expression has in UTC."""
    from runner_service.schedules.triggers import preview
    changes = {'Europe/Berlin': ('2026-03-29T00:00:00+00:00', '2026-10-25T00:00:00+00:00'),
               'America/New_York': ('2026-03-08T06:00:00+00:00', '2026-11-01T05:00:00+00:00')}[timezone]
    for change in changes:
        after = dt.datetime.fromisoformat(change) - dt.timedelta(hours=2)
        count = 300 if expression.count(' ') == 5 else 60
        zoned = preview(parse_trigger('cron', expression, timezone), count, after)
        assert zoned == preview(parse_trigger('cron', expression, 'UTC'), count, after)
        for moment in zoned[:40]:  # and from any instant, too
            assert parse_trigger('cron', expression, timezone).next_after(moment - dt.timedelta(seconds=1)) == moment
