"""One job's lanes spread over the workers of its queue: the worker that took the job runs its
share, the others run the rest, every host is recorded with the worker that ran it, the events
come in one sequence; and when a worker running a lane dies (SIGKILL of it and everything below
it), its lane is taken back and finished by another worker, the lost host run again when the
job's retries allow, else recorded worker_lost. Real workers, Redis and ansible-playbook."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from runner_service.worker.process_tree import descendants
from devtools.service_harness import PATIENCE, Service, job_processes, most_at_once, runs
from devtools.service_harness import intervals as spans

pytestmark = pytest.mark.service
MANY = 'tests/service/inventory_many.yml'


@pytest.fixture
def service(tmp_path):
    service = Service(tmp_path, workers=2).start()
    yield service
    service.stop()


def wait_until(condition, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout * PATIENCE
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError('timed out waiting for %s' % what)


def test_lanes_are_spread_over_the_workers_of_the_queue(service):
    job = service.launch('sleep.yml', inventory=MANY, extra_vars={'sleep_seconds': 3}, plan={'lanes': 4})
    done = service.wait(job['id'], timeout=300)
    assert done['status'] == 'successful', done['status_reason']
    timeline = runs(service, job['id'])
    assert sorted(run['host'] for run in timeline) == sorted(done['hosts']) and len(timeline) == 8
    assert {run['status'] for run in timeline} == {'ok'}
    # Two workers listen to the queue: each runs two of the four lanes, each lane on one worker.
    by_worker: dict[str, set[int]] = {}
    for run in timeline:
        by_worker.setdefault(run['worker'], set()).add(run['lane'])
    assert len(by_worker) == 2 and done['worker'] in by_worker, by_worker
    assert sorted(len(lanes) for lanes in by_worker.values()) == [2, 2]
    for worker in by_worker:
        assert most_at_once(spans([run for run in timeline if run['worker'] == worker])) <= 2
    for lane in range(4):
        assert most_at_once(spans([run for run in timeline if run['lane'] == lane])) == 1
    # The helper's events reach the store through the job's own writer: one sequence, no gap.
    events = service.events(job['id'])
    assert sorted(event['seq'] for event in events) == list(range(1, len(events) + 1))
    ran = {event['host'] for event in events if event['event'] == 'runner_on_ok'}
    assert ran == set(done['hosts'])
    assert sum(1 for event in events if event['event'] == 'playbook_on_stats') == 8
    # Per-host results come from every worker's recap.
    assert all(counts['ok'] == 1 for counts in done['hosts'].values()), done['hosts']


def kill_helper(service, job: dict) -> str:
    """SIGKILL the worker running a lane that is not the job's own worker, and all below it, once
    it runs a host; returns that host."""
    def helper_running():
        coordinator = service.job(job['id'])['worker']
        return next((run for run in runs(service, job['id'])
                     if run['status'] == 'running' and run['worker'] and run['worker'] != coordinator), None)

    run = wait_until(helper_running, 'a host running on the other worker')
    pid = int(run['worker'].split('/')[1])
    for process in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)
    return run['host']


def test_a_lane_whose_worker_dies_is_finished_by_another_worker(service):
    job = service.launch('sleep.yml', inventory=MANY, limit='host1,host2,host3,host4',
                         extra_vars={'sleep_seconds': 4}, plan={'lanes': 2}, max_retries=1)
    lost = kill_helper(service, job)
    done = service.wait(job['id'], timeout=300)
    assert done['status'] == 'successful', done['status_reason']
    assert done['attempt'] == 1, 'the job itself was not retried: only the lost host ran again'
    timeline = {run['host']: run for run in runs(service, job['id'])}
    assert {run['status'] for run in timeline.values()} == {'ok'}
    # Every host of the lost lane ran on the job's own worker in the end; the lost one says so.
    lane = timeline[lost]['lane']
    assert {run['worker'] for run in timeline.values() if run['lane'] == lane} == {done['worker']}
    assert 'was lost at' in timeline[lost]['detail'] and 'run again' in timeline[lost]['detail']
    notes = [event['stdout'] for event in service.events(job['id']) if 'stopped answering' in (event['stdout'] or '')]
    assert len(notes) == 1 and lost in notes[0] and 'run again on another worker' in notes[0], notes


def test_without_retries_the_lost_host_is_worker_lost_and_the_lane_goes_on(service):
    job = service.launch('sleep.yml', inventory=MANY, limit='host1,host2,host3,host4',
                         extra_vars={'sleep_seconds': 4}, plan={'lanes': 2})
    lost = kill_helper(service, job)
    done = service.wait(job['id'], timeout=300)
    assert done['status'] == 'failed'
    assert 'was lost' in done['status_reason'] and lost in done['status_reason'], done['status_reason']
    timeline = {run['host']: run for run in runs(service, job['id'])}
    assert timeline[lost]['status'] == 'worker_lost' and timeline[lost]['finished_at']
    assert {run['status'] for host, run in timeline.items() if host != lost} == {'ok'}


def test_cancel_stops_the_lanes_on_every_worker(service):
    job = service.launch('sleep.yml', inventory=MANY, extra_vars={'sleep_seconds': 300}, plan={'lanes': 4})

    def both_running():
        return len({run['worker'] for run in runs(service, job['id']) if run['status'] == 'running'}) == 2

    wait_until(both_running, 'hosts running on both workers')
    with service.client('operator') as operator:
        assert operator.post('/api/v1/jobs/%s/cancel' % job['id']).status_code in (200, 202)
    done = service.wait(job['id'], timeout=120)
    assert done['status'] == 'canceled', done['status_reason']
    timeline = runs(service, job['id'])
    assert {run['status'] for run in timeline} <= {'not_run'} and len(timeline) == 8, timeline
    assert all('canceled' in run['detail'] for run in timeline), timeline
    # Nothing of the play is left, on the job's worker or the helper's.
    wait_until(lambda: not job_processes(job['id']), 'every process of the job gone', timeout=30)
