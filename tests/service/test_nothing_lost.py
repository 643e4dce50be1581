"""The store is the system of record: lost workers, a flushed Redis and restarts lose no job."""

from __future__ import annotations

import os
import signal
import time

import pytest

from devtools.service_harness import job_processes

pytestmark = pytest.mark.service


def worker_pid(job: dict) -> int:
    """The RQ worker process that forked the job's work horse (job['worker'] is host/pid)."""
    return int(job['worker'].rsplit('/', 1)[1])


def wait_for_play(service, job_id: str) -> dict:
    job = service.wait(job_id, statuses={'running'})
    deadline = time.monotonic() + 30
    while not job_processes(job_id):
        assert time.monotonic() < deadline, 'the play never started'
        time.sleep(0.2)
    return service.job(job_id)


def test_a_worker_killed_mid_job_is_worker_lost_and_its_play_is_gone(service):
    job = wait_for_play(service, service.launch('sleep.yml', limit='node1')['id'])
    pid = worker_pid(job)
    os.kill(pid, signal.SIGKILL)
    lost = service.wait(job['id'], statuses={'worker_lost'}, timeout=30)
    assert 'died' in lost['status_reason'] or 'no heartbeat' in lost['status_reason']
    assert job_processes(job['id']) == []
    service.workers = [worker for worker in service.workers if worker.pid != pid]
    service.start_worker()


def test_a_lost_job_is_retried_as_its_policy_says(service):
    job = wait_for_play(service, service.launch('sleep.yml', limit='node1', max_retries=1, retry_backoff=1,
                                                extra_vars={'sleep_seconds': 4})['id'])
    pid = worker_pid(job)
    os.kill(pid, signal.SIGKILL)
    service.workers = [worker for worker in service.workers if worker.pid != pid]
    service.start_worker()
    # A retried job passes through worker_lost on its way back to queued (two transitions): a poll may
    # land between them, so the wait is for how the retry ends.
    done = service.wait(job['id'], statuses={'successful', 'failed', 'canceled', 'timed_out'}, timeout=90)
    assert done['status'] == 'successful' and done['attempt'] == 2
    seqs = [event['seq'] for event in service.events(job['id'])]
    assert len(seqs) == len(set(seqs)), 'the retry numbers its events after the first attempt'


def test_a_whole_worker_process_group_killed_is_found_by_the_reaper(service):
    """Worker and work horse both gone (as in a crash): no one reports the job; the reconciler
    notices the silence, marks it worker_lost and kills the orphaned play."""
    job = wait_for_play(service, service.launch('sleep.yml', limit='node2')['id'])
    pid = worker_pid(job)
    children = _children(pid)  # the work horse (and RQ's scheduler), before they are orphaned
    for process in [pid] + children:
        os.kill(process, signal.SIGKILL)
    horse_group = [worker for worker in service.workers if worker.pid == pid]
    lost = service.wait(job['id'], statuses={'worker_lost'}, timeout=30)
    assert 'no heartbeat' in lost['status_reason'] or 'died' in lost['status_reason']
    deadline = time.monotonic() + 10
    while job_processes(job['id']):
        assert time.monotonic() < deadline, 'the orphaned play was not killed'
        time.sleep(0.2)
    service.workers = [worker for worker in service.workers if worker not in horse_group]
    service.start_worker()


def test_jobs_queued_when_redis_is_flushed_still_run(service):
    for worker in service.live_workers():
        worker.send_signal(signal.SIGTERM)
    for worker in service.workers:
        worker.wait(30)
    service.workers = []
    jobs = [service.launch('hello.yml', limit='node%d' % index) for index in (1, 2, 3)]
    assert service.redis_client().llen('rq:queue:dbfleet-default') == 3
    service.redis_client().flushall()
    service.start_worker()
    service.start_worker()
    assert [service.wait(job['id'], timeout=60)['status'] for job in jobs] == ['successful'] * 3


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as handle:
                    fields = handle.read().rsplit(')', 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError):
                pass
    return found
