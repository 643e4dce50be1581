"""A planned job's lane timeline as a Gantt chart: one row per lane (or rolling batch), one bar
per host run from its start to its end (still running: to now), and the plan's window end as a
line. Geometry only; templates/jobs/gantt.html draws it as SVG."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dbfleet.clock import utc

WIDTH = 1000
LABEL = 90  # the lane names' column
ROW = 26
TOP = 8
AXIS = 30


@dataclass
class Bar:
    host: str
    status: str
    x: float
    y: float
    width: float
    title: str


@dataclass
class Chart:
    width: int
    height: int
    rows: list[tuple[str, float]]  # (lane label, y)
    bars: list[Bar]
    start: dt.datetime
    end: dt.datetime
    window_end: dt.datetime | None
    window_x: float | None
    window_off_chart: bool  # the window ends well after the runs: its line stands at the right edge
    overrun: bool  # the last run ends after the window


def chart(runs: list[dict], plan: dict | None, now: dt.datetime) -> Chart | None:
    """None for a job without host runs (no plan) or whose runs have not started."""
    started = [run for run in runs if run.get('started_at') is not None]
    if not started:
        return None
    window_end = _instant((plan or {}).get('window_end'))
    start = min(utc(run['started_at']) for run in started)
    ends = [utc(run['finished_at']) if run.get('finished_at') else now for run in started]
    end = max(ends)
    # A window end far past the runs would squeeze them to slivers: past twice their span, it is
    # drawn at the right edge, marked as off the chart.
    window_off_chart = window_end is not None and window_end > end + (end - start) + dt.timedelta(seconds=1)
    if window_end is not None and not window_off_chart:
        end = max(end, window_end)
    span = max((end - start).total_seconds(), 1.0)
    scale = (WIDTH - LABEL - 10) / span

    def x(moment: dt.datetime) -> float:
        return LABEL + (moment - start).total_seconds() * scale

    lanes: dict[str, float] = {}
    bars = []
    for run, run_end in zip(started, ends):
        label = 'lane %s' % run['lane'] if run.get('lane') is not None else 'batch %s' % run.get('batch')
        y = lanes.setdefault(label, TOP + len(lanes) * ROW)
        begin = utc(run['started_at'])
        bars.append(Bar(host=run['host'], status=run['status'], x=x(begin), y=y,
                        width=max(x(run_end) - x(begin), 2.0),
                        title='%s %s: %ds%s' % (run['host'], run['status'], (run_end - begin).total_seconds(),
                                                ' (estimate %ds)' % run['estimate_seconds']
                                                if run.get('estimate_seconds') else '')))
    height = TOP + len(lanes) * ROW + AXIS
    return Chart(width=WIDTH, height=height, rows=list(lanes.items()), bars=bars, start=start, end=end,
                 window_end=window_end, window_off_chart=window_off_chart,
                 window_x=(WIDTH - 2 if window_off_chart else x(window_end)) if window_end else None,
                 overrun=window_end is not None and max(ends) > window_end)


def _instant(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return utc(value)
