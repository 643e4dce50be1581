"""runner_service.notify.anomaly: a backup far from its host's recent history, and not before there is one."""

from __future__ import annotations

from runner_service.notify.anomaly import anomalies

HISTORY = [{'bytes': 1000, 'duration_seconds': 60.0}, {'bytes': 1100, 'duration_seconds': 66.0},
           {'bytes': 900, 'duration_seconds': 54.0}]


def backup(size, seconds):
    return {'bytes': size, 'duration_seconds': seconds}


def test_an_empty_dump_that_finished_too_fast_is_far_on_both_counts():
    assert anomalies(backup(0, 1.0), HISTORY) == [
        "size 0 bytes is under a quarter of the host's median 1000 bytes",
        "duration 1 s is under a quarter of the host's median 60 s"]


def test_one_far_larger_or_slower_is_far_and_an_ordinary_one_is_not():
    assert anomalies(backup(5000, 60.0), HISTORY) == ["size 5000 bytes is over 4 times the host's median 1000 bytes"]
    assert anomalies(backup(1000, 300.0), HISTORY) == ["duration 300 s is over 4 times the host's median 60 s"]
    assert anomalies(backup(700, 45.0), HISTORY) == []


def test_too_short_a_history_or_missing_figures_judge_nothing():
    assert anomalies(backup(0, 0.1), HISTORY[:2]) == []
    assert anomalies(backup(None, None), HISTORY) == []
    assert anomalies(backup(0, 1.0), [{'bytes': None, 'duration_seconds': None}] * 5) == []
