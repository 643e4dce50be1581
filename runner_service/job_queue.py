"""dbfleet's side of Redis: the RQ queues jobs wait in, and the few keys the service shares.

Redis holds only what may be lost: a job waiting in an RQ queue is also 'queued' in the store,
and the reconciler puts it back when Redis forgot it. Every Redis key dbfleet uses is built here.
The RQ job id is the store's job id, so enqueuing a job twice leaves one entry to run, and the
worker's compare-and-set (queued -> running) makes a stray duplicate a no-op.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from functools import lru_cache
from typing import Iterable

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob

from dbfleet.clock import utc
from runner_service import redis_urls

QUEUE_PREFIX = 'dbfleet-'
# RQ's own timeout stays out of the way: dbfleet enforces timeouts and deadlines itself.
NO_RQ_TIMEOUT = -1
# RQ job hashes of finished runs: the store has the history, keep these only briefly.
RESULT_TTL = 600
WAITING_STATUSES = ('queued', 'scheduled', 'deferred')
PRESENCE_BATCH = 500  # RQ jobs read per Redis round trip when checking which queued jobs Redis holds
# A cron loop that has not finished a pass for this long is taken for dead (it passes every second).
SCHEDULER_SILENT_SECONDS = 20


def connect(url: str) -> Redis:
    """redis://host:port/db, rediss://..., unix:///path/to/socket?db=N, or a master found through
    Sentinel: redis+sentinel://host:26379,host2:26379/MASTER_NAME (runner_service/redis_urls.py)."""
    return redis_urls.connect(url, socket_connect_timeout=5, health_check_interval=30, **_client_info())


@lru_cache(maxsize=1)
def _client_info() -> dict:
    """What each connection tells Redis about its client (CLIENT SETINFO), looked up once: left to
    redis-py (7.1 and later), every new client looks its version up in the installed packages'
    metadata, milliseconds of CPU per client in every work horse."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # older redis-py looks it up once by itself
        return {}
    return {'driver_info': DriverInfo()}


def queue_name(queue: str) -> str:
    return QUEUE_PREFIX + queue


def cancel_key(job_id: str) -> str:
    return 'dbfleet:cancel:%s' % job_id


def events_channel(job_id: str) -> str:
    """Published to after each batch of the job's events is in the store (and when it ends)."""
    return 'dbfleet:events:%s' % job_id


def lanes_key(job_id: str, attempt: int) -> str:
    """The prefix of one job attempt's lane board (runner_service.worker.lane_board)."""
    return 'dbfleet:lanes:%s:%d' % (job_id, attempt)


def epoch_key() -> str:
    """A random value that lives as long as Redis keeps its data: a new one means it lost them."""
    return 'dbfleet:epoch'


def scheduler_key(name: str) -> str:
    """The last pass of one cron loop (`dbfleet scheduler`), expiring when it falls silent."""
    return 'dbfleet:scheduler:%s' % name


class JobQueue:
    """Puts store jobs into RQ queues for `runner_service.worker.run.run_job`."""

    def __init__(self, redis: Redis):
        self.redis = redis

    def queue(self, name: str) -> Queue:
        return Queue(queue_name(name), connection=self.redis)

    def enqueue(self, job: dict, delay_seconds: float = 0) -> None:
        queue = self.queue(job['queue'])
        self._forget_stale(job)
        options = dict(job_id=job['id'], job_timeout=NO_RQ_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL,
                       description='dbfleet job %s: %s' % (job['id'], job['playbook']))
        if delay_seconds > 0:
            queue.enqueue_in(dt.timedelta(seconds=delay_seconds), 'runner_service.worker.run.run_job', job['id'],
                             **options)
        else:
            # RQ has no priorities inside a queue: a job above the default goes to the front.
            queue.enqueue('runner_service.worker.run.run_job', job['id'], at_front=job.get('priority', 0) > 0,
                          **options)

    def enqueue_lane_helpers(self, job: dict, count: int, share: int) -> None:
        """Ask `count` more workers of the job's queue to run some of its lanes, up to `share` at once
        each (runner_service.worker.lane_share): ahead of waiting jobs, since the job already runs.
        A helper that starts when no lane is left ends at once."""
        queue = self.queue(job['queue'])
        for number in range(1, count + 1):
            queue.enqueue('runner_service.worker.lane_share.run_lane_share', job['id'], job['attempt'], share,
                          job_id='%s-lanes-%d-%d' % (job['id'], job['attempt'], number), at_front=True,
                          job_timeout=NO_RQ_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL,
                          description='dbfleet job %s: lanes, helper %d' % (job['id'], number))

    def epoch(self) -> tuple[str, str]:
        """(Redis's run id, the epoch value): either changes when Redis may have lost queued jobs
        (a restart without persistence, a failover to a replica that lagged, a FLUSHALL)."""
        run_id = str(self.redis.info('server').get('run_id', ''))
        self.redis.set(epoch_key(), uuid.uuid4().hex, nx=True)
        value = self.redis.get(epoch_key())
        return run_id, value.decode() if value else ''

    def present(self, queued: list[tuple[str, str, dt.datetime | None]]) -> set[str]:
        """Which of the queued store jobs, (id, queue, enqueued_at), RQ holds: waiting in its
        queue, scheduled or deferred, with its job hash; or started for this attempt (an RQ job
        started before the store queued the job again is a dead run's). The reconciler asks this
        of every queued job every few seconds: it reads each queue's ids and registries whole
        (a few round trips, ids only) and fetches only the started jobs, PRESENCE_BATCH a trip."""
        waiting: set[str] = set()
        started: set[str] = set()
        for name in sorted({queue for _, queue, _ in queued}):
            queue = self.queue(name)
            waiting.update(queue.get_job_ids())
            waiting.update(queue.scheduled_job_registry.get_job_ids())
            waiting.update(queue.deferred_job_registry.get_job_ids())
            started.update(queue.started_job_registry.get_job_ids())
        candidates = [job_id for job_id, _, _ in queued if job_id in waiting]
        found = set()
        for start in range(0, len(candidates), PRESENCE_BATCH):  # an id whose job hash is gone holds nothing
            batch = candidates[start:start + PRESENCE_BATCH]
            with self.redis.pipeline(transaction=False) as pipeline:
                for job_id in batch:
                    pipeline.exists(RQJob.key_for(job_id))
                found.update(job_id for job_id, exists in zip(batch, pipeline.execute()) if exists)
        running = [(job_id, enqueued_at) for job_id, _, enqueued_at in queued
                   if job_id not in found and job_id in started]
        for start in range(0, len(running), PRESENCE_BATCH):
            batch = running[start:start + PRESENCE_BATCH]
            held = RQJob.fetch_many([job_id for job_id, _ in batch], connection=self.redis)
            found.update(job_id for (job_id, enqueued_at), job in zip(batch, held)
                         if job is not None and _holds(job, enqueued_at))
        return found

    def _forget_stale(self, job: dict) -> None:
        """Drop an RQ job of the same id left by an earlier attempt, registries and all."""
        try:
            found = RQJob.fetch(job['id'], connection=self.redis)
        except NoSuchJobError:
            return
        if _status(found) not in WAITING_STATUSES:
            found.delete()

    def remove(self, job: dict) -> None:
        """Take a canceled job out of its queue (it would be skipped anyway: the store says canceled)."""
        self.queue(job['queue']).remove(job['id'])
        try:
            RQJob.fetch(job['id'], connection=self.redis).delete()
        except NoSuchJobError:
            pass

    def request_cancel(self, job_id: str) -> None:
        """Tell the worker running the job, at once (it also reads the store's flag, more slowly)."""
        self.redis.set(cancel_key(job_id), 1, ex=86400)

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.exists(cancel_key(job_id)))

    def publish_events(self, job_id: str, last_seq: int) -> None:
        self.redis.publish(events_channel(job_id), str(last_seq))

    def scheduler_passed(self, name: str, at: dt.datetime) -> None:
        self.redis.set(scheduler_key(name), at.isoformat(), ex=SCHEDULER_SILENT_SECONDS)

    def scheduler_stopped(self, name: str) -> None:
        self.redis.delete(scheduler_key(name))

    def scheduler_passes(self) -> list[dt.datetime]:
        """The last pass of each cron loop alive now."""
        keys = list(self.redis.scan_iter(match=scheduler_key('*'), count=100))
        return [dt.datetime.fromisoformat(value.decode()) for value in self.redis.mget(keys) if value] if keys else []

    def queue_names(self, queues: Iterable[str]) -> list[str]:
        return [queue_name(name) for name in queues]

    def listening(self) -> Counter:
        """dbfleet queue -> how many live workers listen to it (RQ drops a worker whose heartbeat
        has expired from its registry, so a killed worker host stops counting)."""
        return listeners(dbfleet_workers(self.redis))


def listeners(workers: Iterable[Worker]) -> Counter:
    """dbfleet queue -> how many of these workers listen to it."""
    return Counter(name[len(QUEUE_PREFIX):] for worker in workers for name in worker.queue_names()
                   if name.startswith(QUEUE_PREFIX))


def dbfleet_workers(redis: Redis) -> list[Worker]:
    """The live RQ workers that listen to at least one dbfleet queue."""
    return [worker for worker in Worker.all(connection=redis)
            if any(name.startswith(QUEUE_PREFIX) for name in worker.queue_names())]


def _holds(job: RQJob, enqueued_at: dt.datetime | None) -> bool:
    status = _status(job)
    if status == 'started':
        return job.started_at is not None and enqueued_at is not None and utc(job.started_at) >= enqueued_at
    return status in WAITING_STATUSES


def _status(job: RQJob) -> str | None:
    status = job.get_status(refresh=False)
    return None if status is None else str(getattr(status, 'value', status))
