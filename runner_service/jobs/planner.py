"""Batch plans: how the hosts of one job are split and ordered.

- lanes: N lanes that each run their hosts one after another, balanced to finish together.
  The estimate of a host is its start-up overhead plus its work. The work is its recent backup
  durations when known (median of the last few), else its data size from facts divided by the
  fleet's observed throughput (bytes per second over recent backups), else the fleet's median
  work. The overhead is what a host's run costs beyond the backup itself (ansible-playbook's
  start, facts, connecting, recording): measured as a run's wall time minus the duration of the
  backup it took, the median of the host's recent runs, else the fleet's recent median, else
  DEFAULT_OVERHEAD_SECONDS. Hosts go longest first, each to the
  lane that frees first (LPT: within 4/3 of the optimum in the worst case, and close to the
  lower bound max(longest host, total / N) when hosts are many).
- rolling: batches in order, like Ansible's `serial` (sizes or percentages, the last repeating),
  stopped when a batch fails more than max_fail_percentage.
Nothing here touches a process: the runner (runner_service.worker.run) executes plans, the API
previews them.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import statistics
from dataclasses import dataclass, field

DEFAULT_THROUGHPUT = 50 * 1024 * 1024  # bytes per second, until the fleet's own backups say otherwise
DEFAULT_SECONDS = 60.0  # a host nothing is known about, in a fleet nothing is known about
# Start-up cost of one host's run before any is measured: ansible-playbook's own start (~0.7 s
# here), gathering facts, the dbfleet modules' imports and the store writes; 3-4 s measured on
# the local fleet (docs/benchmarks.md).
DEFAULT_OVERHEAD_SECONDS = 3.0


@dataclass
class Estimate:
    host: str
    seconds: float  # overhead_seconds + the work
    source: str  # of the work: 'history', 'size' or 'default'
    overhead_seconds: float = 0.0
    overhead_source: str = 'none'  # 'host', 'fleet', 'default' ('none': not estimated)

    @property
    def work_seconds(self) -> float:
        return self.seconds - self.overhead_seconds


@dataclass
class Lane:
    index: int
    hosts: list[Estimate] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(estimate.seconds for estimate in self.hosts)


def throughput(history: dict[str, list[tuple[float, float]]]) -> float:
    """Bytes per second over the fleet's recent backups: {host: [(bytes, seconds), ...]}."""
    total_bytes = sum(size for runs in history.values() for size, _ in runs if size)
    total_seconds = sum(seconds for runs in history.values() for size, seconds in runs if size and seconds)
    return total_bytes / total_seconds if total_bytes and total_seconds else DEFAULT_THROUGHPUT


def estimate(hosts: list[str], durations: dict[str, list[float]], sizes: dict[str, float],
             bytes_per_second: float = DEFAULT_THROUGHPUT, overheads: dict[str, list[float]] | None = None,
             fleet_overheads: list[float] | None = None) -> list[Estimate]:
    """Seconds each host is expected to take (see the module doc for the order of sources).
    overheads: {host: start-up seconds of its recent runs, newest first}; fleet_overheads: the
    fleet's recent ones. Without either (None), no overhead is added."""
    estimates = []
    for host in hosts:
        known = [seconds for seconds in durations.get(host, []) if seconds and seconds > 0]
        if known:
            estimates.append(Estimate(host, statistics.median(known[:5]), 'history'))
        elif sizes.get(host):
            estimates.append(Estimate(host, max(1.0, sizes[host] / bytes_per_second), 'size'))
        else:
            estimates.append(Estimate(host, 0.0, 'default'))
    known_seconds = [item.seconds for item in estimates if item.source != 'default']
    fallback = statistics.median(known_seconds) if known_seconds else DEFAULT_SECONDS
    for item in estimates:
        if item.source == 'default':
            item.seconds = fallback
    if overheads is not None or fleet_overheads is not None:
        fleet = [seconds for seconds in fleet_overheads or () if seconds >= 0]
        for item in estimates:
            own = [seconds for seconds in (overheads or {}).get(item.host, []) if seconds >= 0]
            if own:
                item.overhead_seconds, item.overhead_source = statistics.median(own[:5]), 'host'
            elif fleet:
                item.overhead_seconds, item.overhead_source = statistics.median(fleet), 'fleet'
            else:
                item.overhead_seconds, item.overhead_source = DEFAULT_OVERHEAD_SECONDS, 'default'
            item.seconds += item.overhead_seconds
    return estimates


def lanes(estimates: list[Estimate], count: int) -> list[Lane]:
    """Longest first, each host to the lane that frees first; ties keep input order, so a plan is
    the same every time for the same estimates."""
    if count < 1:
        raise ValueError('lanes must be at least 1, got %r' % count)
    result = [Lane(index) for index in range(count)]
    heap = [(0.0, index) for index in range(count)]
    for item in sorted(estimates, key=lambda item: -item.seconds):
        load, index = heapq.heappop(heap)
        result[index].hosts.append(item)
        heapq.heappush(heap, (load + item.seconds, index))
    return result


def round_robin(estimates: list[Estimate], count: int) -> list[Lane]:
    """AWX-style slicing (host i to slice i mod N), for comparison in benchmarks."""
    result = [Lane(index) for index in range(count)]
    for position, item in enumerate(estimates):
        result[position % count].hosts.append(item)
    return result


def lane_share(lanes: int, workers: int, most: int | None = None) -> int:
    """How many of a job's `lanes` one worker runs at once when `workers` listen to its queue: an
    even share (the coordinator asks the others for the rest), at most `most` when set."""
    share = math.ceil(lanes / max(1, workers)) if lanes > 0 else 1
    return max(1, min(share, most) if most else share)


def lower_bound(estimates: list[Estimate], count: int) -> float:
    """No plan of `count` lanes can finish before this."""
    if not estimates:
        return 0.0
    return max(max(item.seconds for item in estimates), sum(item.seconds for item in estimates) / count)


def batches(hosts: list[str], sizes: list[int | str]) -> list[list[str]]:
    """Ansible `serial` semantics: sizes in order, the last repeating; '20%' of all the hosts
    (at least one)."""
    if not sizes:
        return [list(hosts)] if hosts else []
    result, position, index = [], 0, 0
    while position < len(hosts):
        size = batch_size(sizes[min(index, len(sizes) - 1)], len(hosts))
        result.append(hosts[position:position + size])
        position += size
        index += 1
    return result


def batch_size(size: int | str, total: int) -> int:
    if isinstance(size, str):
        text = size.strip()
        if not text.endswith('%'):
            raise ValueError('a rolling batch is a number of hosts or a percentage such as "20%%", got %r' % size)
        try:
            percent = float(text[:-1])
        except ValueError:
            raise ValueError('a rolling batch is a number of hosts or a percentage such as "20%%", got %r'
                             % size) from None
        if not 0 < percent <= 100:
            raise ValueError('a rolling percentage must be above 0%% and at most 100%%, got %r' % size)
        return max(1, int(math.floor(total * percent / 100)))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError('a rolling batch size must be a positive number of hosts, got %r' % (size,))
    return size


def batch_failed_too_much(failed: int, size: int, max_fail_percentage: int | None) -> bool:
    """Ansible's rule: stop when more than max_fail_percentage of the batch failed; without a
    percentage, when every host of the batch failed."""
    if size == 0:
        return False
    if max_fail_percentage is None:
        return failed == size
    return failed * 100 / size > max_fail_percentage


def timeline(plan: list[Lane], start: dt.datetime) -> list[dict]:
    """Estimated start and end of each host, lane by lane."""
    rows = []
    for lane in plan:
        at = start
        for item in lane.hosts:
            end = at + dt.timedelta(seconds=item.seconds)
            rows.append({'lane': lane.index, 'host': item.host, 'estimate_seconds': round(item.seconds, 3),
                         'source': item.source, 'overhead_seconds': round(item.overhead_seconds, 3),
                         'overhead_source': item.overhead_source, 'start': at, 'end': end})
            at = end
    return rows


def ratio(actual: float, estimated: float) -> float | None:
    return round(actual / estimated, 3) if estimated > 0 else None


def accuracy(jobs: list[dict]) -> dict:
    """How past estimates held: for each job that ran in lanes ({id, started_at, finished_at,
    runs: [{lane, estimate_seconds, started_at, finished_at, status}]}), the estimated total (its
    longest lane's estimates) against its run time (started to finished), and each lane's
    estimate against its wall time (its first host's start to its last host's end); ratios are
    actual / estimated (above 1: slower than estimated). Jobs whose hosts did not all run are
    left out (the lane times would mean nothing)."""
    measured = []
    for job in jobs:
        runs = [run for run in job['runs'] if run.get('lane') is not None]
        if not runs or any(run.get('estimate_seconds') is None or run.get('started_at') is None
                           or run.get('finished_at') is None for run in runs):
            continue
        lanes = []
        for index in sorted({run['lane'] for run in runs}):
            mine = [run for run in runs if run['lane'] == index]
            estimated = sum(run['estimate_seconds'] for run in mine)
            actual = (max(run['finished_at'] for run in mine) - min(run['started_at'] for run in mine)).total_seconds()
            lanes.append({'lane': index, 'hosts': len(mine), 'estimated_seconds': round(estimated, 3),
                          'actual_seconds': round(actual, 3), 'ratio': ratio(actual, estimated)})
        estimated = max(lane['estimated_seconds'] for lane in lanes)
        actual = (job['finished_at'] - job['started_at']).total_seconds()
        measured.append({'job_id': job['id'], 'started_at': job['started_at'], 'estimated_seconds': estimated,
                         'actual_seconds': round(actual, 3), 'ratio': ratio(actual, estimated), 'lanes': lanes})
    totals = [item['ratio'] for item in measured if item['ratio'] is not None]
    lane_ratios = [lane['ratio'] for item in measured for lane in item['lanes'] if lane['ratio'] is not None]
    return {'runs': measured,
            'median_ratio': round(statistics.median(totals), 3) if totals else None,
            'lane_ratio_median': round(statistics.median(lane_ratios), 3) if lane_ratios else None,
            'lane_ratio_min': min(lane_ratios) if lane_ratios else None,
            'lane_ratio_max': max(lane_ratios) if lane_ratios else None}
