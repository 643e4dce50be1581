"""A plan's window end: after it no host starts, the hosts running finish, and those not started
are recorded skipped with the reason. Real ansible-playbook runs through the lanes runner, with an
injected clock that passes the window end while the first run is under way."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import pytest

from dbfleet.store import open_store
from runner_service.job_queue import connect
from runner_service.processes import PrivateRedis
from runner_service.worker.lane_board import LaneBoard
from runner_service.worker.lanes import LaneSpread, PlanRunner

pytestmark = pytest.mark.service
REPO = Path(__file__).resolve().parents[2]
WINDOW_END = dt.datetime(2026, 12, 5, 3, 0, tzinfo=dt.timezone.utc)


class Clock:
    """Before the window end until a play's recap arrives, after it from then on."""

    def __init__(self):
        self.now = WINDOW_END - dt.timedelta(minutes=5)

    def __call__(self) -> dt.datetime:
        return self.now


class Control:
    """The run the lanes runner belongs to (RunControl), without a worker: nothing stops it."""

    stop_reason = None
    worker = 'test/%d' % os.getpid()

    def __init__(self, clock: Clock):
        self.clock = clock
        self.events: list[dict] = []

    def abandoning(self) -> bool:
        return False

    def should_stop(self) -> bool:
        return False

    def add_event(self, event: dict) -> bool:
        self.events.append(event)
        if event.get('event') == 'playbook_on_stats':
            self.clock.now = WINDOW_END + dt.timedelta(seconds=1)  # the window closes while the run ends
        return True

    def add_row(self, row: dict) -> None:
        pass

    def flush_events(self) -> None:
        pass

    def hold_lease(self, pool: str, holder: str) -> bool:
        return True

    def release_lease(self, pool: str, holder: str) -> None:
        pass


@pytest.fixture(scope='module')
def redis(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp('window-redis')).start()
    yield connect(server.url)
    server.stop()


def _run(tmp_path, redis, plan: dict, window_end: dt.datetime = WINDOW_END):
    store = open_store('sqlite:///%s' % (tmp_path / 'store.db'))
    job, _ = store.jobs.create({'playbook': 'tests/service/playbooks/hello.yml',
                                'inventory': 'tests/service/inventory_many.yml',
                                'plan': dict(plan, window_end=window_end.isoformat())})
    job = store.jobs.transition(job['id'], 'running')
    clock = Clock()
    control = Control(clock)
    (tmp_path / 'run').mkdir()
    kwargs = dict(private_data_dir=str(tmp_path / 'run'), project_dir=str(REPO), playbook=job['playbook'],
                  inventory=str(REPO / job['inventory']), limit='host1,host2,host3', quiet=True,
                  envvars={'PATH': os.pathsep.join([os.path.dirname(sys.executable), os.environ['PATH']]),
                           'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg')},
                  settings={'suppress_ansible_output': True})
    spread = LaneSpread(board=LaneBoard(redis, job['id'], job['attempt']))
    result = PlanRunner(control, job, store, kwargs, spread=spread, clock=clock).run()
    return result, {run['host']: run for run in store.jobs.host_runs(job['id'])}


def test_no_host_of_a_lane_starts_after_the_window_end(tmp_path, redis):
    result, runs = _run(tmp_path, redis, {'lanes': 1})
    assert result.status == 'failed' and result.skipped == ['host2', 'host3']
    assert result.window_end == WINDOW_END
    # The host running when the window closed finished (a deadline would have killed it).
    assert runs['host1']['status'] == 'ok' and runs['host1']['finished_at'] is not None
    for host in ('host2', 'host3'):
        assert runs[host]['status'] == 'skipped' and runs[host]['started_at'] is None
        assert 'window ended at 2026-12-05T03:00:00Z' in runs[host]['detail']


def test_no_rolling_batch_starts_after_the_window_end(tmp_path, redis):
    result, runs = _run(tmp_path, redis, {'rolling': [2, 1]})
    assert result.skipped == ['host3'] and result.status == 'failed'
    assert runs['host1']['status'] == runs['host2']['status'] == 'ok'
    assert runs['host3']['status'] == 'skipped' and runs['host3']['batch'] == 1


def test_a_window_that_has_not_ended_changes_nothing(tmp_path, redis):
    result, runs = _run(tmp_path, redis, {'lanes': 2}, window_end=WINDOW_END + dt.timedelta(days=1))
    assert result.status == 'successful' and result.skipped == []
    assert {run['status'] for run in runs.values()} == {'ok'}
