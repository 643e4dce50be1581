"""The moves that have consequences, each done in one place whoever makes it (the worker,
the API, the reconciler): ending a job releases its dependents, losing a job kills what is
left of it and schedules its retry, queuing a job puts it in Redis."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from runner_service.credentials.private_data import remove_private_data
from runner_service.runtime import Runtime

log = logging.getLogger(__name__)

# Set in the environment of every process of a job's play (see kill_job_processes).
JOB_ENV = 'DBFLEET_JOB_ID'


def enqueue(runtime: Runtime, jobs: list[dict]) -> None:
    """Put queued store jobs into RQ. A Redis failure is logged, not raised: the job stays
    queued in the store and the reconciler enqueues it when Redis is back."""
    for job in jobs:
        if job['status'] != 'queued':
            continue
        try:
            runtime.queue.enqueue(job)
        except Exception as exc:  # redis.ConnectionError and friends
            log.warning('job %s stays queued in the store, Redis refused it: %s', job['id'], exc)


def finish(runtime: Runtime, job_id: str, status: str, expect='running', **fields) -> dict | None:
    """Move the job to a terminal status, then queue or fail the jobs waiting for it and tell followers."""
    job = runtime.store.jobs.transition(job_id, status, expect=expect, **fields)
    released(runtime, job_id)
    return job


def released(runtime: Runtime, job_id: str) -> None:
    """The job has ended (or was canceled): resolve what waits for it."""
    enqueue(runtime, runtime.store.jobs.ready_dependents(job_id))
    try:
        runtime.queue.publish_events(job_id, -1)
    except Exception:  # followers also poll the store
        pass


def lose(runtime: Runtime, job: dict, reason: str) -> dict | None:
    """Mark a running job worker_lost, kill its ansible processes if they run on this machine,
    and queue its retry (after its backoff) when its policy allows one."""
    kill_runner(runtime, job)
    lost = runtime.store.jobs.transition(job['id'], 'worker_lost', expect='running', status_reason=reason)
    if lost is None:
        return None
    if lost['cancel_requested'] or lost['attempt'] > lost['max_retries']:
        released(runtime, job['id'])
        return lost
    retried = runtime.store.jobs.transition(job['id'], 'queued', expect='worker_lost',
                                            status_reason='retry %d of %d, after: %s' % (lost['attempt'], lost['max_retries'],
                                                                                  reason))
    if retried is not None:
        try:
            runtime.queue.enqueue(retried, delay_seconds=retried['retry_backoff_seconds'])
        except Exception as exc:
            log.warning('retry of job %s waits for the reconciler, Redis refused it: %s', job['id'], exc)
    return retried or lost


def kill_runner(runtime: Runtime, job: dict) -> int:
    """Kill what is left of the job's play when it ran on this machine, and remove the files of its
    run that held secrets (its run could not: it was killed); returns how many processes."""
    if job.get('runner_host') not in (None, runtime.hostname):
        return 0
    killed = kill_job_processes(job['id'])
    remove_private_data(runtime.settings.runs_dir / job['id'])
    return killed


def kill_job_processes(job_id: str, rounds: int = 3) -> int:
    """SIGKILL every process of the job's play. Ansible's own workers start new sessions, so
    neither a process group nor the parent chain finds them all; the environment does: the
    worker starts ansible-playbook with DBFLEET_JOB_ID, and every descendant inherits it."""
    marker = ('%s=%s' % (JOB_ENV, job_id)).encode() + b'\0'
    killed = 0
    for _ in range(rounds):
        found = 0
        for entry in Path('/proc').iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / 'environ').read_bytes()
            except OSError:
                continue
            if environ.startswith(marker) or b'\0' + marker in environ:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                    found += 1
                except (ProcessLookupError, PermissionError):
                    pass
        killed += found
        if not found:
            break
    return killed
