"""/healthz: can this API reach the store and Redis, and are workers listening?"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from rq import Worker

from runner_service.api.deps import RuntimeDep
from runner_service.api.schemas import Health
from runner_service.queue import QUEUE_PREFIX

router = APIRouter(tags=['health'])


def check(runtime) -> Health:
    store: dict = {'ok': True}
    try:
        runtime.store.list_jobs(limit=1)
    except Exception as exc:
        store = {'ok': False, 'error': str(exc)}
    redis: dict = {'ok': True}
    workers: dict = {'ok': False, 'count': 0, 'busy': 0, 'queues': []}
    try:
        runtime.redis.ping()
        found = [worker for worker in Worker.all(connection=runtime.redis)
                 if any(name.startswith(QUEUE_PREFIX) for name in worker.queue_names())]
        workers = {'ok': bool(found), 'count': len(found),
                   'busy': sum(1 for worker in found if worker.get_state() == 'busy'),
                   'queues': sorted({name for worker in found for name in worker.queue_names()})}
    except Exception as exc:
        redis = {'ok': False, 'error': str(exc)}
    status = 'ok' if store['ok'] and redis['ok'] and workers['ok'] else 'failing' if not store['ok'] else 'degraded'
    return Health(status=status, store=store, redis=redis, workers=workers)


@router.get('/healthz', response_model=Health, responses={503: {'model': Health}})
def healthz(runtime: RuntimeDep):
    """ok: store, Redis and at least one worker; degraded: jobs are accepted but will wait
    (no worker, or Redis down: the reconciler queues them when it is back); failing: no store."""
    health = check(runtime)
    return JSONResponse(health.model_dump(), status_code=503 if health.status == 'failing' else 200)
