"""The life of a job: its statuses, the moves between them, and when a dependent may run.

    waiting ──▶ queued ──▶ running ──▶ successful | failed | canceled | timed_out | worker_lost
       │          │                                                                 │
       ├──▶ dependency_failed, canceled, timed_out                                  │
       │          └──▶ canceled, timed_out                     (retry) queued ◀─────┘
    awaiting_approval ──▶ (approved) queued | waiting | dependency_failed
            └──▶ rejected, expired, canceled, timed_out

A job of a template that requires approval is created awaiting_approval and is in no queue
until an admin approves it; it is then decided as a new job would be (its dependencies).

TRANSITIONS is the one definition of it. A job is *final* when its status is terminal and
will not change again: worker_lost is final only once its retries are used up or it was
canceled, because until then the reconciler may put it back in the queue.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from dbfleet.store.models import Job

TERMINAL_STATUSES = frozenset({'successful', 'failed', 'canceled', 'timed_out', 'dependency_failed', 'worker_lost',
                               'rejected', 'expired'})
# to_status: the statuses a job may move to it from. Terminal statuses never move again,
# except worker_lost back to queued while it has retries left (the retry path).
TRANSITIONS: dict[str, frozenset[str]] = {
    'awaiting_approval': frozenset(),  # only ever the status a job is created with
    'waiting': frozenset({'awaiting_approval'}),  # created so, or approved before its dependencies ended
    'queued': frozenset({'waiting', 'worker_lost', 'awaiting_approval'}),
    'running': frozenset({'queued'}),
    'successful': frozenset({'running'}),
    'failed': frozenset({'running'}),
    'canceled': frozenset({'waiting', 'queued', 'running', 'awaiting_approval'}),
    'timed_out': frozenset({'waiting', 'queued', 'running', 'awaiting_approval'}),
    'dependency_failed': frozenset({'waiting', 'awaiting_approval'}),
    'worker_lost': frozenset({'running'}),
    'rejected': frozenset({'awaiting_approval'}),
    'expired': frozenset({'awaiting_approval'}),
}
# depends_on `on:` -> the final statuses of the dependency that let the dependent run.
SATISFIED_BY: dict[str, frozenset[str]] = {
    'success': frozenset({'successful'}),
    'failure': frozenset({'failed', 'timed_out', 'worker_lost', 'dependency_failed'}),
    'always': TERMINAL_STATUSES,
}


def is_final(status: str, attempt: int, max_retries: int, cancel_requested: bool) -> bool:
    """Whether a job with this status will not change again (what its dependents wait for)."""
    if status == 'worker_lost':
        return cancel_requested or attempt > max_retries
    return status in TERMINAL_STATUSES


def final_columns():
    """The columns of a dependency that `decide` reads."""
    return select(Job.id, Job.status, Job.attempt, Job.max_retries, Job.cancel_requested)


def decide(dependencies: dict[str, str], upstream: dict[str, Any]) -> tuple[str, str | None]:
    """('queued' | 'waiting' | 'dependency_failed', reason) for a job with these dependencies
    ({job_id: on}) given their rows: it waits until all are final, then runs if each ended as asked."""
    if any(not is_final(row.status, row.attempt, row.max_retries, row.cancel_requested)
           for row in (upstream[job_id] for job_id in dependencies)):
        return 'waiting', None
    unmet = ['dependency %s ended %s, but this job runs on %s' % (job_id, upstream[job_id].status, on)
             for job_id, on in sorted(dependencies.items()) if upstream[job_id].status not in SATISFIED_BY[on]]
    return ('dependency_failed', '; '.join(unmet)) if unmet else ('queued', None)


def move(job: Job, to_status: str, now: dt.datetime, fields: dict[str, Any]) -> None:
    """Set the status and what goes with it; the caller has checked that the move is legal."""
    retry = job.status == 'worker_lost'
    job.status = to_status
    if to_status == 'queued':
        job.enqueued_at = now
        if retry:
            job.started_at = job.finished_at = job.worker = job.return_code = job.status_reason = None
    elif to_status == 'running':
        job.started_at = job.heartbeat_at = now
        job.runner_host = job.runner_pid = None
        job.attempt += 1
    if to_status in TERMINAL_STATUSES:
        job.finished_at = now
    if to_status == 'canceled':
        job.cancel_requested = True
    for name, value in fields.items():
        setattr(job, name, value)
