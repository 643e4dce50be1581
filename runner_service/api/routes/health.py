"""/healthz: can this API reach the store and Redis, is a cron loop passing, does every queue
with waiting jobs have a worker? Unauthenticated: it names components and queues, counts and
times, never an address, a path or an error text (which may carry either)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from runner_service.api.deps import RuntimeDep
from runner_service.job_queue import QUEUE_PREFIX, SCHEDULER_SILENT_SECONDS, dbfleet_workers, listeners
from runner_service.schemas import Health

router = APIRouter(tags=['health'])


def check(runtime) -> Health:
    reasons: list[str] = []
    store: dict = {'ok': True}
    waiting: dict[str, int] = {}
    try:
        waiting = runtime.store.jobs.queued_by_queue()
    except Exception as exc:
        store = {'ok': False, 'error': type(exc).__name__}
        reasons.append('store: unreachable (%s)' % type(exc).__name__)
    redis: dict = {'ok': True}
    workers: dict = {'ok': False, 'count': 0, 'busy': 0, 'queues': [], 'per_queue': {}}
    scheduler: dict = {'ok': False, 'alive': 0, 'last_tick': None}
    found: list = []
    try:
        runtime.redis.ping()
        found = dbfleet_workers(runtime.redis)
        per_queue = listeners(found)
        workers = {'ok': bool(found), 'count': len(found),
                   'busy': sum(1 for worker in found if worker.get_state() == 'busy'),
                   'queues': sorted(QUEUE_PREFIX + name for name in per_queue),
                   'per_queue': dict(sorted(per_queue.items()))}
        if not found:
            reasons.append('workers: none is running')
        passes = runtime.queue.scheduler_passes()
        scheduler = {'ok': bool(passes), 'alive': len(passes),
                     'last_tick': max(passes).isoformat() if passes else None}
        if not passes:
            reasons.append('scheduler: no `dbfleet scheduler` has passed in the last %d s: schedules do not fire'
                           % SCHEDULER_SILENT_SECONDS)
    except Exception as exc:
        redis = {'ok': False, 'error': type(exc).__name__}
        reasons.append('redis: unreachable (%s): jobs wait in the store' % type(exc).__name__)
    unattended = {queue: count for queue, count in sorted(waiting.items()) if not workers['per_queue'].get(queue)}
    if redis['ok'] and found:
        reasons.extend('queue %s: %d job(s) waiting and no worker listens to it' % (queue, count)
                       for queue, count in unattended.items())
    status = 'failing' if not store['ok'] else 'degraded' if reasons else 'ok'
    return Health(status=status, reasons=reasons, store=store, redis=redis, workers=workers, scheduler=scheduler,
                  queues={'waiting': dict(sorted(waiting.items())), 'unattended': sorted(unattended)})


@router.get('/healthz', response_model=Health, responses={503: {'model': Health}})
def healthz(runtime: RuntimeDep):
    """ok: store, Redis, a cron loop passing, and a worker for every queue with waiting jobs;
    degraded: jobs are accepted but something will not happen, said in `reasons` (no worker at all,
    or none for a queue with waiting jobs; no scheduler, so schedules do not fire; Redis down: the
    reconciler queues the jobs when it is back); failing: no store."""
    health = check(runtime)
    return JSONResponse(health.model_dump(mode='json'), status_code=503 if health.status == 'failing' else 200)
