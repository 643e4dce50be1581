"""A worker's help with another worker's job: some of its lanes.

    run_lane_share(job_id, attempt, share)   # what RQ executes for a lanes helper

The worker running a job with lanes (its coordinator, runner_service.worker.run) asks the other
workers of its queue for help (runner_service.job_queue.JobQueue.enqueue_lane_helpers). A helper
prepares a run of its own on this worker, like the job's (credentials, extra vars, the commit the
coordinator runs), then claims the job's waiting lanes from its lane board and runs up to `share`
of them at once (runner_service.worker.lanes) until none waits. Its events go through the board
to the coordinator, which writes them with its own; its hosts' starts and ends go to the store.
The helper stops when the job is canceled or its deadline passes, like the job's own run; when
the job's attempt ends elsewhere (its coordinator was lost) or its own worker is stopping, it
leaves its lanes unfinished for the coordinator to take back. A helper that finds no lane
waiting ends at once.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading

from dbfleet.clock import utcnow
from runner_service.runtime import Runtime, process_runtime
from runner_service.worker.events import EventWriter, RelayWriter
from runner_service.worker.lane_board import LaneBoard
from runner_service.worker.lanes import LaneSpread, PlanRunner
from runner_service.worker.run import PROJECT_COPY, JobRun

log = logging.getLogger(__name__)


def run_lane_share(job_id: str, attempt: int, share: int) -> str:
    """RQ's entry point for a lanes helper. Returns what it did (RQ keeps it briefly as the result)."""
    runtime = process_runtime()
    job = runtime.store.jobs.get(job_id)
    if job is None or job['status'] != 'running' or job['attempt'] != attempt:
        return 'no lanes to run: the job is %s' % ('gone' if job is None else '%s, attempt %d' % (
            job['status'], job['attempt']))
    board = LaneBoard(runtime.queue.redis, job_id, attempt)
    if not board.waiting():
        return 'no lanes to run: none waits'
    return LaneShare(runtime, job, board, share).run()


class LaneShare(JobRun):
    """A run of the job on this worker that only runs lanes it claims from the job's board."""

    def __init__(self, runtime: Runtime, job: dict, board: LaneBoard, share: int):
        self.board = board
        self.share = max(1, int(share))
        super().__init__(runtime, job)
        # Its own directory and process marker: the coordinator may run on this machine too, and
        # ending this run must not touch the coordinator's files or plays.
        self.marker = '%s/lanes-%d' % (self.job_id, os.getpid())
        self.private_dir = self.settings.runs_dir / ('%s-lanes-%d' % (self.job_id, os.getpid()))

    def _writer(self) -> EventWriter:
        return RelayWriter(self.runtime, self.job_id, self.redactor, self.board)

    def run(self) -> str:
        heartbeat = threading.Thread(target=self._heartbeat, name='dbfleet-heartbeat', daemon=True)
        heartbeat.start()
        outcome = 'lanes run'
        try:
            kwargs = self._prepare()
            PlanRunner(self, self.job, self.store, kwargs, spread=LaneSpread(board=self.board)).work(self.share)
        except Exception as exc:  # nothing claimed yet when preparing fails: the others run the lanes
            log.exception('job %s: lanes helper could not run', self.job_id)
            outcome = 'could not run lanes: %s' % self.redactor.text(str(exc))
            self.add_event({'event': 'verbose', 'created': utcnow().isoformat(), 'event_data': {},
                            'stdout': 'dbfleet: worker %s could not run lanes of this job: %s' % (
                                self.worker, self.redactor.text(str(exc))[:500])})
        finally:
            self.done.set()
            self._kill_play()
            self._scrub()
            self.writer.close()
        return outcome

    def _project(self):
        """The commit the coordinator runs, not wherever the branch points now."""
        if not self.settings.project_url:
            return super()._project()
        copy, _ = self._check_out(self.job.get('project_revision'))
        return copy

    # -- while it runs ----------------------------------------------------------------------

    def abandoning(self) -> bool:
        return self.stop_reason in ('worker_stopped', 'job_ended')

    def _beat(self) -> None:
        """No heartbeat of the job (its coordinator's): see whether the attempt still runs, and cancels."""
        job = self.store.jobs.get(self.job_id)
        if self.stop_reason is None:
            if job is None or job['status'] != 'running' or job['attempt'] != self.job['attempt']:
                self.stop_reason = 'job_ended'
            elif job['cancel_requested']:
                self.stop_reason = 'canceled'

    def _orphaned(self) -> None:
        """Its worker is gone: kill the play and leave; the coordinator takes the lanes back."""
        self._kill_play()
        shutil.rmtree(self.private_dir / PROJECT_COPY, ignore_errors=True)
        os._exit(1)
