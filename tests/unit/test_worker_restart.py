"""`dbfleet worker` outlives an RQ worker that quits on a Redis error outside its dequeue."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError

from runner_service.processes import RESTART_PAUSES, work_until_stopped


class FakeWorker:
    """Stands in for RQ's worker: what work() does is scripted (Redis cannot be made to fail at
    exactly this point for real; the Sentinel failover test covers it end to end)."""

    def __init__(self, outcome):
        self.outcome = outcome
        self._stop_requested = False  # RQ: asked to stop while a job ran
        self._shutdown_requested_date = None  # RQ: asked to stop at all

    def work(self, **options):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        if self.outcome == 'stop':  # SIGTERM while idle: RQ dates it and leaves work()
            self._shutdown_requested_date = 'now'
        if self.outcome == 'stop-busy':
            self._stop_requested = True
            self._shutdown_requested_date = 'now'


def run(outcomes, burst=False):
    made, pauses = [], []

    def make():
        outcome = outcomes[len(made)]
        made.append(FakeWorker(outcome))
        if outcome == 'unmade':  # RQ's worker talks to Redis as it is made
            raise RedisConnectionError('No master found')
        return made[-1]

    work_until_stopped(make, burst, 'INFO', sleep=pauses.append)
    return made, pauses


def test_a_worker_that_quits_on_its_own_is_started_again_with_growing_pauses():
    made, pauses = run(['quit', RedisConnectionError('No master found'), 'unmade', 'quit', 'stop'])
    assert len(made) == 5
    assert pauses == list(RESTART_PAUSES[:4])


def test_a_stop_request_ends_it_at_once_and_burst_never_restarts():
    made, pauses = run(['stop'])
    assert (len(made), pauses) == (1, [])
    made, pauses = run(['quit', 'stop-busy'])
    assert (len(made), pauses) == (2, [RESTART_PAUSES[0]])
    made, pauses = run(['quit'], burst=True)
    assert (len(made), pauses) == (1, [])


def test_the_pause_stops_growing():
    made, pauses = run(['quit'] * 9 + ['stop'])
    assert pauses[-1] == RESTART_PAUSES[-1] and max(pauses) == RESTART_PAUSES[-1]


def test_a_stop_request_during_the_pause_ends_it():
    from rq.exceptions import StopRequested

    made = []

    def make():
        made.append(FakeWorker('quit'))
        return made[-1]

    def sleep(seconds):
        raise StopRequested()  # RQ's handler of the last worker, on SIGTERM while idle

    work_until_stopped(make, False, 'INFO', sleep=sleep)
    assert len(made) == 1
