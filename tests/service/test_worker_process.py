"""`dbfleet worker` as a process: its RQ scheduler child is restarted when it dies, and a Redis
that forgot it (FLUSHALL) has it registered again within 30 s."""

from __future__ import annotations

import os
import signal
import time

import pytest
from rq import Worker

from runner_service.worker.process_tree import descendants
from devtools.service_harness import Service

pytestmark = pytest.mark.service


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('worker-service'), workers=1).start()
    yield service
    service.stop()


def scheduler_child(worker_pid: int, timeout: float = 30, other_than: int | None = None) -> int:
    deadline = time.monotonic() + timeout
    while True:
        children = [pid for pid in descendants(worker_pid) if pid != other_than and running(pid)]
        if children:
            return children[0]
        assert time.monotonic() < deadline, 'no RQ scheduler process under the worker'
        time.sleep(0.2)


def running(pid: int) -> bool:
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def test_the_rq_scheduler_child_is_restarted_when_it_dies(service):
    worker = service.live_workers()[0]
    first = scheduler_child(worker.pid)
    os.kill(first, signal.SIGKILL)
    second = scheduler_child(worker.pid, timeout=60, other_than=first)
    assert second != first and worker.poll() is None


def test_the_worker_registers_again_after_a_redis_flush(service):
    redis = service.redis_client()
    names = {worker.name for worker in Worker.all(connection=redis)}
    assert names
    redis.flushall()
    assert Worker.all(connection=redis) == []
    deadline = time.monotonic() + 30
    while {worker.name for worker in Worker.all(connection=redis)} != names:
        assert time.monotonic() < deadline, 'the worker did not register again within 30 s'
        time.sleep(0.5)
    found = Worker.all(connection=redis)[0]
    assert found.queue_names() == ['dbfleet-default'] and found.birth_date is not None
    job = service.launch('hello.yml', role='admin', limit='node1')
    assert service.wait(job['id'], timeout=90)['status'] == 'successful'
