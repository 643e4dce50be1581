"""Workers and queues at a glance (what Flower and rq-dashboard show for Celery and RQ): the
live workers with the queues they listen to and the job each runs now, each queue's depth and
oldest waiting job, and the pools with the leases on their slots.

The store says what waits (a queued job is queued there even when Redis lost it); Redis says
who is alive and what runs."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from rq import Queue, Worker

from dbfleet.clock import utc
from dbfleet.store import Store
from runner_service.job_queue import QUEUE_PREFIX, dbfleet_workers, listeners, queue_name

# RQ names a lane helper <job id>-lanes-<attempt>-<n> (job_queue.enqueue_lane_helpers).
LANES_MARK = '-lanes-'


def store_job_id(rq_job_id: str | None) -> str | None:
    """The store job an RQ job works for (a lane helper works for its job)."""
    if not rq_job_id:
        return None
    return rq_job_id.split(LANES_MARK, 1)[0]


def overview(redis, store: Store) -> dict:
    """{'workers': ..., 'queues': ..., 'pools': ...} as of now."""
    live = dbfleet_workers(redis)
    return {'workers': workers(live), 'queues': queues(redis, store, listeners(live)), 'pools': pools(store)}


def workers(live: Iterable[Worker]) -> list[dict]:
    """The live dbfleet workers by name: where they run, what they listen to and run now."""
    found = []
    for worker in live:
        current = worker.get_current_job_id()
        found.append({
            'name': worker.name, 'hostname': worker.hostname, 'pid': worker.pid, 'state': str(worker.get_state()),
            'queues': sorted(name[len(QUEUE_PREFIX):] for name in worker.queue_names() if name.startswith(QUEUE_PREFIX)),
            'current_rq_job': current, 'current_job': store_job_id(current),
            'lane_helper': bool(current and LANES_MARK in current),
            'born_at': utc(worker.birth_date), 'last_heartbeat': utc(worker.last_heartbeat),
            'successful': worker.successful_job_count, 'failed': worker.failed_job_count})
    return sorted(found, key=lambda worker: worker['name'])


def queues(redis, store: Store, listening: Counter) -> list[dict]:
    """Every queue that has waiting jobs or a worker listening: jobs waiting (store), the oldest
    one's enqueue time, what Redis holds in the RQ queue and how many run now, its workers."""
    waiting = store.jobs.waiting_by_queue()
    rows = []
    for name in sorted(set(waiting) | set(listening)):
        queue = Queue(queue_name(name), connection=redis)
        depth = waiting.get(name, {'waiting': 0, 'oldest': None})
        rows.append({'name': name, 'waiting': depth['waiting'], 'oldest': depth['oldest'],
                     'in_redis': queue.count, 'running': queue.started_job_registry.count,
                     'workers': listening.get(name, 0)})
    return rows


def pools(store: Store) -> list[dict]:
    """The pools by name, each with its leases (holder job:host, the job, since when, last renewal)."""
    leases: dict[str, list[dict]] = {}
    for lease in store.pools.leases():
        holder = lease['holder']
        leases.setdefault(lease['pool'], []).append(dict(lease, job=holder.split(':', 1)[0] if ':' in holder else None))
    return [dict(pool, leases=leases.get(pool['name'], [])) for pool in store.pools.list()]

