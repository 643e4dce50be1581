"""Kept for jobs queued before the worker package existed: RQ stores the function's dotted
path with each job, and jobs enqueued by an older dbfleet name `runner_service.execution.run_job`."""

from runner_service.worker.run import run_job

__all__ = ['run_job']
