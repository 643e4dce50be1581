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
