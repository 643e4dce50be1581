"""Pure pieces of the fleet pages: the backup size sparkline's geometry, the store job a
worker's RQ job works for, and a host's backup summary at a fixed time."""

from __future__ import annotations

import datetime as dt

from runner_service.jobs.backups_overview import host_summary
from runner_service.jobs.queue_overview import store_job_id
from runner_service.portal.sparkline import HEIGHT, PAD, WIDTH, sparkline

UTC = dt.timezone.utc
NOW = dt.datetime(2027, 5, 4, 12, 0, tzinfo=UTC)


def test_a_sparkline_spans_the_box_from_the_smallest_to_the_largest_value():
    line = sparkline([10, 30, 20])
    points = [tuple(map(float, point.split(','))) for point in line.points.split()]
    assert [x for x, _ in points] == [PAD, WIDTH / 2, WIDTH - PAD]
    assert points[0][1] == HEIGHT - PAD and points[1][1] == PAD  # lowest at the bottom, highest at the top
    assert line.last == points[2]
    assert sparkline([5]) is None and sparkline([]) is None
    flat = sparkline([7, 7, 7])
    assert {y for _, y in (tuple(map(float, point.split(','))) for point in flat.points.split())} == {HEIGHT - PAD}


def test_a_lane_helper_works_for_its_job():
    assert store_job_id('0123abcd') == '0123abcd'
    assert store_job_id('0123abcd-lanes-2-3') == '0123abcd'
    assert store_job_id(None) is None and store_job_id('') is None


def attempt(hours_ago: float, status: str = 'ok', size_bytes: int | None = 100) -> dict:
    started = NOW - dt.timedelta(hours=hours_ago)
    return {'status': status, 'started_at': started, 'finished_at': started + dt.timedelta(minutes=10),
            'bytes': size_bytes if status == 'ok' else None, 'method': 'logical', 'error': None}


def test_a_hosts_backup_summary_at_a_fixed_time():
    fresh = host_summary('db1', [attempt(2, size_bytes=300), attempt(26, size_bytes=200), attempt(50, 'failed'),
                                 attempt(74, size_bytes=100)], NOW)
    assert fresh['last_ok_at'] == NOW - dt.timedelta(hours=2) + dt.timedelta(minutes=10)
    assert fresh['age_seconds'] == 110 * 60 and not fresh['stale']
    assert fresh['sizes'] == [100, 200, 300] and len(fresh['failures']) == 1
    stale = host_summary('db2', [attempt(1, 'failed'), attempt(30)], NOW)
    assert stale['stale'] and stale['last']['status'] == 'failed'
    never = host_summary('db3', [attempt(1, 'failed')], NOW)
    assert never['last_ok'] is None and never['stale'] and never['age_seconds'] is None
