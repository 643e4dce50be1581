"""Retention of job run directories (runner_service.worker.run.prune_runs): the newest
DBFLEET_KEEP_RUNS stay, and with DBFLEET_KEEP_RUNS_DAYS none older than that; the clock is passed in."""

from __future__ import annotations

import os

from runner_service.worker.run import prune_runs

NOW = 1_900_000_000.0  # any fixed instant: ages are counted from it
DAY = 86400


def make_runs(runs_dir, ages_in_days: dict[str, float]):
    for name, age in ages_in_days.items():
        (runs_dir / name / 'artifacts').mkdir(parents=True)
        os.utime(runs_dir / name, (NOW - age * DAY, NOW - age * DAY))


def left(runs_dir) -> set[str]:
    return {path.name for path in runs_dir.iterdir()}


def test_the_newest_are_kept_by_count(tmp_path):
    make_runs(tmp_path, {'a': 0.1, 'b': 1, 'c': 2, 'd': 30})
    removed = prune_runs(tmp_path, keep=2, now=NOW)
    assert left(tmp_path) == {'a', 'b'} and {path.name for path in removed} == {'c', 'd'}


def test_an_age_limit_removes_old_runs_however_few(tmp_path):
    make_runs(tmp_path, {'a': 0.1, 'b': 6.9, 'c': 7.1, 'd': 30})
    prune_runs(tmp_path, keep=200, keep_days=7, now=NOW)
    assert left(tmp_path) == {'a', 'b'}


def test_count_and_age_both_apply(tmp_path):
    make_runs(tmp_path, {'a': 0.1, 'b': 0.2, 'c': 0.3, 'd': 10})
    prune_runs(tmp_path, keep=2, keep_days=7, now=NOW)
    assert left(tmp_path) == {'a', 'b'}
    prune_runs(tmp_path, keep=2, keep_days=0.15, now=NOW)
    assert left(tmp_path) == {'a'}


def test_no_age_limit_by_default(tmp_path):
    make_runs(tmp_path, {'a': 1000, 'b': 2000})
    assert prune_runs(tmp_path, keep=2, now=NOW) == [] and left(tmp_path) == {'a', 'b'}


def test_no_runs_directory_yet(tmp_path):
    assert prune_runs(tmp_path / 'runs', keep=1, keep_days=1, now=NOW) == []
