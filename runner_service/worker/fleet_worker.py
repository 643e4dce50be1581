"""`dbfleet worker`'s RQ worker, made to leave nothing behind and to outlive a Redis flush.

    FleetWorker(queue_names, connection=redis).work(with_scheduler=True)

- Each work horse is a child subreaper (runner_service.worker.process_tree): what a job's play starts
  stays below it whatever it does to leave (setsid, `env -i`, a double fork), so the job's run
  kills all of it at the end. The worker is one too, and after each job kills what a horse that
  was itself killed (RQ's stop-job, a crash) left behind.
- RQ's scheduler child (delayed retries) gets SIGTERM when the worker dies, even by SIGKILL, and
  is started again at the next heartbeat when it died alone.
- Redis forgetting the worker (FLUSHALL, a restart without persistence) is noticed at the next
  heartbeat, which registers it again. Heartbeats come every HEARTBEAT_SECONDS, idle or busy.
- Asked to stop (SIGTERM: RQ's warm shutdown), it takes no new job and gives the running one
  DBFLEET_WORKER_STOP_SECONDS; at the first heartbeat after that it sends the work horse
  STOP_JOB_SIGNAL, and the job's run stops its play and records the job worker_lost itself
  (runner_service.worker.run), so a service manager's stop timeout above that bound never has to
  kill a job that nobody records.
"""

from __future__ import annotations

import logging
import os
import signal

from rq import Worker, worker_registration
from rq.scheduler import RQScheduler
from rq.utils import now

from dbfleet.settings import get_settings
from runner_service.worker import process_tree
from runner_service.worker.run import STOP_JOB_SIGNAL, on_stop_job_signal

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10
# RQ waits on its queues for worker_ttl - 15 seconds between heartbeats.
WORKER_TTL = HEARTBEAT_SECONDS + 15


class FleetScheduler(RQScheduler):
    """RQ's scheduler process, bound to the life of the worker that forked it."""

    def start(self):
        self.parent_pid = os.getpid()
        return super().start()

    def work(self):
        process_tree.die_with_parent(signal.SIGTERM, self.parent_pid)  # RQ's handler: release the locks, stop
        super().work()


class FleetWorker(Worker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault('worker_ttl', WORKER_TTL)
        kwargs.setdefault('job_monitoring_interval', HEARTBEAT_SECONDS)
        super().__init__(*args, **kwargs)
        self.stop_seconds = get_settings().worker_stop_seconds
        self.job_stop_sent = False

    def bootstrap(self, *args, **kwargs):
        process_tree.become_subreaper()
        super().bootstrap(*args, **kwargs)

    def main_work_horse(self, job, queue):
        process_tree.become_subreaper()  # not inherited across fork: each horse asks for itself
        signal.signal(STOP_JOB_SIGNAL, on_stop_job_signal)
        super().main_work_horse(job, queue)

    def execute_job(self, job, queue):
        self.job_stop_sent = False
        try:
            super().execute_job(job, queue)
        finally:
            scheduler = self.scheduler and self.scheduler._process
            process_tree.kill_descendants(spare=frozenset([scheduler.pid] if scheduler and scheduler.pid else []))

    def heartbeat(self, timeout=None, pipeline=None):
        super().heartbeat(timeout, pipeline)
        if pipeline is None and not self._is_horse:
            self._keep_up()

    def maintain_heartbeats(self, job, execution):
        super().maintain_heartbeats(job, execution)
        self._keep_up()
        self._stop_job_when_overdue()

    def _stop_job_when_overdue(self) -> None:
        """After a stop request, once the running job has had its stop_seconds: tell its horse to stop it."""
        if not self._stop_requested or self.job_stop_sent or not self.horse_pid:
            return
        if (now() - self._shutdown_requested_date).total_seconds() < self.stop_seconds:
            return
        log.warning('worker %s: stopping; its job did not end within %g s (DBFLEET_WORKER_STOP_SECONDS): stopping '
                    'it', self.name, self.stop_seconds)
        try:
            os.kill(self.horse_pid, STOP_JOB_SIGNAL)
            self.job_stop_sent = True
        except ProcessLookupError:  # ended meanwhile
            pass

    def _keep_up(self) -> None:
        try:
            self._keep_registered()
            self._keep_scheduler()
        except Exception as exc:  # Redis away: RQ's own loop reports it and retries
            log.warning('worker %s: could not check its registration: %s', self.name, exc)

    def _keep_registered(self) -> None:
        if self.connection.sismember(self.redis_workers_keys, self.key):
            return
        log.warning('worker %s: Redis forgot this worker (flushed or restarted); registering it again', self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping={**self.serialize(), 'state': str(self.get_state())})
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, self.worker_ttl + 60)
            pipeline.execute()

    def _keep_scheduler(self) -> None:
        if self.scheduler is None or self._shutdown_requested_date is not None:
            return  # stopping: RQ stopped the scheduler on purpose, and its teardown joins it
        process = self.scheduler._process
        if process is not None and not process.is_alive():
            log.warning('worker %s: the RQ scheduler process %s exited (%s); starting it again', self.name,
                        process.pid, process.exitcode)
            self.scheduler._process = None
        if self.scheduler._process is None:  # dead, or another worker's scheduler held the lock
            self.scheduler.acquire_locks(auto_start=True)

    def _start_scheduler(self, burst=False, logging_level='INFO', date_format=None, log_format=None):
        """RQ's, with FleetScheduler in place of RQScheduler."""
        options = {key: value for key, value in (('date_format', date_format), ('log_format', log_format)) if value}
        self.scheduler = FleetScheduler(self.queues, connection=self.connection, serializer=self.serializer,
                                        logging_level=logging_level if logging_level is not None else self.log.level,
                                        **options)
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()
