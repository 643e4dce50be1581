"""Cancel, a deadline and a lost worker kill every process a job started, wherever it went:
out of the environment (`env -i`), the session (setsid), the parent chain (a double fork),
nohup, and a process that ignores SIGTERM (tests/service/playbooks/escape.yml)."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.service

ESCAPES = {1: 'env -i', 2: 'setsid', 3: 'double fork', 4: 'nohup', 5: 'ignores SIGTERM', 0: 'the play itself'}


def marked(marker: str) -> dict[int, int]:
    """{escape number: pid} of the processes running `sleep 300.<marker><n>`."""
    found = {}
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / 'cmdline').read_bytes().split(b'\0')
            except OSError:
                continue
            for arg in argv:
                if arg.startswith(('300.%s' % marker).encode()) and len(arg) == len(marker) + 5:
                    found[int(arg[-1:])] = int(entry.name)
    return found


def launch_escapes(service, **body) -> tuple[dict, str]:
    marker = '%09d' % random.randrange(10 ** 9)
    job = service.launch('escape.yml', role='admin', limit='node1', extra_vars={'marker': marker}, **body)
    deadline = time.monotonic() + 60
    while set(marked(marker)) != set(ESCAPES):
        assert time.monotonic() < deadline, 'the escapes did not start: %s (job %s)' % (
            marked(marker), service.job(job['id'])['status'])
        time.sleep(0.2)
    return service.job(job['id']), marker


def assert_none_survive(marker: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while left := marked(marker):
        assert time.monotonic() < deadline, 'survived: %s' % {ESCAPES[number]: pid for number, pid in left.items()}
        time.sleep(0.2)


def test_cancel_kills_every_escaped_process(service):
    job, marker = launch_escapes(service)
    with service.client() as client:
        assert client.post('/api/v1/jobs/%s/cancel' % job['id']).status_code == 202
    assert service.wait(job['id'], timeout=60)['status'] == 'canceled'
    assert_none_survive(marker)


def test_a_timeout_kills_every_escaped_process(service):
    job, marker = launch_escapes(service, timeout=20)
    assert service.wait(job['id'], timeout=90)['status'] == 'timed_out'
    assert_none_survive(marker)


def test_a_killed_worker_leaves_no_process_behind(service):
    """SIGKILL of `dbfleet worker` mid-job: its work horse notices, kills what is below it (the
    escapes too) and records the loss; RQ's scheduler child gets SIGTERM from the kernel."""
    job, marker = launch_escapes(service)
    worker = int(job['worker'].rsplit('/', 1)[1])
    below = descendants(worker)
    assert below, 'the worker has children (work horse, RQ scheduler)'
    os.kill(worker, signal.SIGKILL)
    assert service.wait(job['id'], statuses={'worker_lost'}, timeout=60)['status'] == 'worker_lost'
    assert_none_survive(marker)
    deadline = time.monotonic() + 30
    while alive := [pid for pid in below if is_running(pid)]:
        assert time.monotonic() < deadline, 'orphans of the killed worker: %s' % alive
        time.sleep(0.2)
    service.workers = [process for process in service.workers if process.pid != worker]
    service.start_worker()


def test_a_killed_work_horse_leaves_no_process_behind(service):
    """The horse SIGKILLed alone (as RQ's stop-job does): what it started is re-parented to the
    worker, a subreaper too, which kills it once the horse is gone."""
    job, marker = launch_escapes(service)
    worker = int(job['worker'].rsplit('/', 1)[1])
    escapes = set(marked(marker).values())
    horses = [pid for pid in children(worker) if escapes & set(descendants(pid))]
    assert len(horses) == 1, 'one child of the worker runs the play'
    os.kill(horses[0], signal.SIGKILL)
    assert_none_survive(marker)
    lost = service.wait(job['id'], timeout=60)  # the reconciler: no heartbeat
    assert lost['status'] == 'worker_lost', lost


def test_a_stopped_worker_leaves_no_process_behind(service):
    # The worker holding RQ's scheduler lock has the scheduler as a child; after a worker was
    # killed, its lock expires (61 s) before another one takes it over.
    deadline = time.monotonic() + 120
    while not (found := [(worker, below) for worker in service.live_workers() if (below := descendants(worker.pid))]):
        assert time.monotonic() < deadline, 'no RQ scheduler child under any worker'
        time.sleep(0.5)
    worker, below = found[0]
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    deadline = time.monotonic() + 30
    while alive := [pid for pid in below if is_running(pid)]:
        assert time.monotonic() < deadline, 'orphans of the stopped worker: %s' % alive
        time.sleep(0.2)
    service.workers.remove(worker)
    service.start_worker()


def descendants(pid: int) -> list[int]:
    from runner_service.worker.process_tree import descendants as below
    return below(pid)


def children(pid: int) -> list[int]:
    return [child for child in descendants(pid) if parent(child) == pid]


def parent(pid: int) -> int | None:
    try:
        return int(Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()[1])
    except OSError:
        return None


def is_running(pid: int) -> bool:
    try:
        return (Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()[0]) != 'Z'
    except OSError:
        return False
