"""Jobs an older dbfleet queued name `runner_service.execution.run_job` (RQ keeps the dotted path with
each job): after an upgrade, RQ must still find the worker's run there."""

from __future__ import annotations

from redis import Redis
from rq.job import Job

from runner_service.worker.run import run_job


def test_a_job_queued_under_the_old_path_runs_the_workers_run():
    queued = Job.create('runner_service.execution.run_job', args=['0' * 32], connection=Redis())
    assert queued.func_name == 'runner_service.execution.run_job'
    assert queued.func is run_job
