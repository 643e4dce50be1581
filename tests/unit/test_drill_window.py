"""`dbfleet backups drill --window HH:MM-HH:MM`: the end of the daily window that the launch is in (across
midnight and time zones), or none; the time is passed in, never read from the clock."""

from __future__ import annotations

import datetime as dt

import pytest
import typer

from runner_service.cli.backups import drill_window, window_end_now

UTC = dt.timezone.utc


@pytest.mark.parametrize('now, span, zone, end', [
    (dt.datetime(2026, 3, 1, 2, 30, tzinfo=UTC), ('02:00', '05:00'), 'UTC', dt.datetime(2026, 3, 1, 5, 0, tzinfo=UTC)),
    (dt.datetime(2026, 3, 1, 5, 0, tzinfo=UTC), ('02:00', '05:00'), 'UTC', None),  # the end itself is outside
    (dt.datetime(2026, 3, 1, 14, 0, tzinfo=UTC), ('02:00', '05:00'), 'UTC', None),
    # Across midnight: 23:30 and 01:00 are both in 22:00-02:00, which ends the next (same) morning.
    (dt.datetime(2026, 3, 1, 23, 30, tzinfo=UTC), ('22:00', '02:00'), 'UTC', dt.datetime(2026, 3, 2, 2, 0, tzinfo=UTC)),
    (dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC), ('22:00', '02:00'), 'UTC', dt.datetime(2026, 3, 2, 2, 0, tzinfo=UTC)),
    # 01:30 UTC is 02:30 in Paris (winter): inside 02:00-05:00 there, which ends at 04:00 UTC.
    (dt.datetime(2026, 3, 1, 1, 30, tzinfo=UTC), ('02:00', '05:00'), 'Europe/Paris',
     dt.datetime(2026, 3, 1, 4, 0, tzinfo=UTC)),
])
def test_the_window_end_of_a_launch_now(now, span, zone, end):
    assert window_end_now(now, span, zone) == end


def test_a_window_is_two_times_of_day_in_a_known_zone():
    assert drill_window(' 02:00 - 05:30 ', 'UTC') == ('02:00', '05:30')
    for text, zone in (('2-5', 'UTC'), ('02:00-24:00', 'UTC'), ('02:00-02:00', 'UTC'), ('02:00-05:00', 'Mars/Base')):
        with pytest.raises(typer.Exit) as stopped:
            drill_window(text, zone)
        assert stopped.value.exit_code == 2
