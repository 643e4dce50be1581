"""The planner: estimates, lanes balanced to the lower bound, rolling batches with Ansible's rules."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from runner_service.jobs import planner


def test_estimates_prefer_history_then_size_then_the_fleet_median():
    estimates = planner.estimate(['a', 'b', 'c', 'd'], durations={'a': [100, 120, 110]},
                                 sizes={'b': 50 * 2**20, 'a': 10**12}, bytes_per_second=2**20)
    by_host = {item.host: (item.seconds, item.source) for item in estimates}
    assert by_host['a'] == (110, 'history')
    assert by_host['b'] == (50, 'size')
    assert by_host['c'] == by_host['d'] == (80, 'default')  # median of what is known
    assert planner.estimate(['x'], {}, {})[0].seconds == planner.DEFAULT_SECONDS
    assert planner.throughput({'a': [(100, 10), (300, 10)], 'b': [(0, 5)]}) == 20
    assert planner.throughput({}) == planner.DEFAULT_THROUGHPUT


def test_lanes_are_balanced_longest_first():
    estimates = [planner.Estimate(name, seconds, 'size') for name, seconds in
                 [('a', 7), ('b', 5), ('c', 4), ('d', 3), ('e', 3), ('f', 2)]]
    lanes = planner.lanes(estimates, 3)
    # 24 s of work: the bound is 8, but 7 s cannot be paired to 8, so 9 is the best any plan can do.
    assert max(lane.seconds for lane in lanes) == 9 and planner.lower_bound(estimates, 3) == 8
    assert sorted(item.host for lane in lanes for item in lane.hosts) == list('abcdef')
    assert [item.host for item in lanes[0].hosts][0] == 'a'


@pytest.mark.parametrize('seed', range(5))
def test_500_skewed_hosts_in_5_lanes_finish_near_the_lower_bound(seed):
    rng = random.Random(seed)
    estimates = [planner.Estimate('db%03d' % index, min(3600.0, rng.lognormvariate(4.5, 1.2)), 'size')
                 for index in range(500)]
    bound = planner.lower_bound(estimates, 5)
    balanced = max(lane.seconds for lane in planner.lanes(estimates, 5))
    sliced = max(lane.seconds for lane in planner.round_robin(estimates, 5))
    assert balanced / bound <= 1.05
    assert sliced >= balanced


def test_one_huge_host_sets_the_bound():
    estimates = [planner.Estimate('big', 1000, 'size')] + [planner.Estimate('s%d' % i, 10, 'size') for i in range(20)]
    lanes = planner.lanes(estimates, 5)
    assert max(lane.seconds for lane in lanes) == 1000 == planner.lower_bound(estimates, 5)
    assert [item.host for item in lanes[0].hosts] == ['big']


def test_batches_follow_ansible_serial():
    hosts = ['h%d' % index for index in range(10)]
    assert [len(batch) for batch in planner.batches(hosts, [1, 3, '50%'])] == [1, 3, 5, 1]
    assert [len(batch) for batch in planner.batches(hosts, ['20%'])] == [2, 2, 2, 2, 2]
    assert [len(batch) for batch in planner.batches(hosts, [4])] == [4, 4, 2]
    assert planner.batches(hosts, ['1%'])[0] == ['h0']  # at least one host
    assert sum(planner.batches(hosts, [3]), []) == hosts
    with pytest.raises(ValueError, match='percentage'):
        planner.batches(hosts, ['x'])
    with pytest.raises(ValueError, match='positive number'):
        planner.batches(hosts, [0])


def test_batch_failure_rule():
    assert planner.batch_failed_too_much(1, 5, 0) is True
    assert planner.batch_failed_too_much(1, 5, 20) is False
    assert planner.batch_failed_too_much(2, 5, 20) is True
    assert planner.batch_failed_too_much(4, 5, None) is False
    assert planner.batch_failed_too_much(5, 5, None) is True


def test_timeline_chains_each_lane():
    start = dt.datetime(2026, 11, 28, 1, tzinfo=dt.timezone.utc)
    lanes = planner.lanes([planner.Estimate('a', 60, 'size'), planner.Estimate('b', 30, 'size'),
                           planner.Estimate('c', 20, 'size')], 2)
    rows = {row['host']: row for row in planner.timeline(lanes, start)}
    assert rows['a']['end'] == start + dt.timedelta(seconds=60)
    assert rows['c']['start'] == rows['b']['end'] == start + dt.timedelta(seconds=30)


def test_estimates_add_each_hosts_measured_start_up_else_the_fleets():
    estimates = planner.estimate(['a', 'b', 'c'], durations={'a': [10], 'b': [20], 'c': [30]}, sizes={},
                                 overheads={'a': [3.0, 4.0, 5.0], 'b': [], 'c': []}, fleet_overheads=[1.0, 2.0, 9.0])
    by_host = {item.host: item for item in estimates}
    assert (by_host['a'].seconds, by_host['a'].overhead_seconds, by_host['a'].overhead_source) == (14.0, 4.0, 'host')
    assert (by_host['b'].seconds, by_host['b'].overhead_source, by_host['b'].work_seconds) == (22.0, 'fleet', 20.0)
    # Nothing measured anywhere: the default start-up, not zero.
    alone = planner.estimate(['x'], {'x': [5]}, {}, overheads={'x': []}, fleet_overheads=[])[0]
    assert (alone.seconds, alone.overhead_source) == (5 + planner.DEFAULT_OVERHEAD_SECONDS, 'default')
    # Callers that give no overheads get the work alone, as before.
    assert planner.estimate(['x'], {'x': [5]}, {})[0].seconds == 5


def test_a_lane_of_short_backups_is_dominated_by_start_up():
    """Three one-second backups that each take 4.6 s end to end (the 3-host plan of issue 16): the
    estimate follows the measured runs, not the backups' own durations."""
    estimates = planner.estimate(['a', 'b', 'c'], durations={host: [1.0] for host in 'abc'}, sizes={},
                                 overheads={host: [3.6, 3.5, 3.7] for host in 'abc'}, fleet_overheads=[])
    lane, = planner.lanes(estimates, 1)
    assert lane.seconds == pytest.approx(3 * 4.6)


def _at(seconds: float) -> dt.datetime:
    return dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)


def _run(lane, estimate, start, end, status='ok'):
    return {'lane': lane, 'estimate_seconds': estimate, 'started_at': _at(start), 'finished_at': _at(end),
            'status': status}


def test_accuracy_compares_each_run_and_lane_with_its_estimate():
    jobs = [
        {'id': 'j2', 'started_at': _at(0), 'finished_at': _at(25),
         'runs': [_run(0, 5, 1, 11), _run(0, 5, 11, 21), _run(1, 10, 1, 24)]},
        {'id': 'j1', 'started_at': _at(0), 'finished_at': _at(10),
         'runs': [_run(0, 5, 0, 5), _run(1, 5, 0, 10)]},
        # a host that never ran: left out
        {'id': 'j0', 'started_at': _at(0), 'finished_at': _at(10),
         'runs': [_run(0, 5, 0, 5), {'lane': 0, 'estimate_seconds': 5, 'started_at': None, 'finished_at': None}]},
    ]
    report = planner.accuracy(jobs)
    assert [run['job_id'] for run in report['runs']] == ['j2', 'j1']
    newest = report['runs'][0]
    assert (newest['estimated_seconds'], newest['actual_seconds'], newest['ratio']) == (10, 25, 2.5)
    assert [(lane['lane'], lane['estimated_seconds'], lane['actual_seconds'], lane['ratio'])
            for lane in newest['lanes']] == [(0, 10, 20, 2.0), (1, 10, 23, 2.3)]
    assert report['median_ratio'] == pytest.approx((2.5 + 2.0) / 2)
    assert (report['lane_ratio_min'], report['lane_ratio_max']) == (1.0, 2.3)
    assert planner.accuracy([]) == {'runs': [], 'median_ratio': None, 'lane_ratio_median': None,
                                    'lane_ratio_min': None, 'lane_ratio_max': None}
