"""Workers and queues (as Flower and rq-dashboard show them): the workers online with their
queues, state and current job; each queue's waiting jobs (the store's count and Redis's depth)
and how many workers listen to it; the pools and who holds their slots. Refreshes itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from runner_service.job_queue import QUEUE_PREFIX, dbfleet_workers, listeners
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import PageCaller

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Workers', '/workers')]
JOB_ID_LENGTH = 32  # an RQ job id starts with the store job's id (lane helpers add a suffix)


def _board(request: Request) -> dict:
    runtime = request.app.state.runtime
    waiting = runtime.store.jobs.queued_by_queue()
    board = {'waiting': waiting, 'pools': runtime.store.pools.list(), 'workers': [], 'queues': [],
             'redis_error': None}
    try:
        found = dbfleet_workers(runtime.redis)
        per_queue = listeners(found)
        for worker in sorted(found, key=lambda worker: worker.name):
            current = worker.get_current_job_id()
            board['workers'].append({
                'name': worker.name, 'hostname': worker.hostname, 'pid': worker.pid, 'state': worker.get_state(),
                'queues': [name[len(QUEUE_PREFIX):] for name in worker.queue_names() if name.startswith(QUEUE_PREFIX)],
                'current': current, 'job_id': current[:JOB_ID_LENGTH] if current else None,
                'heartbeat': worker.last_heartbeat, 'done': worker.successful_job_count,
                'failed': worker.failed_job_count})
        for name in sorted(set(waiting) | set(per_queue)):
            board['queues'].append({'name': name, 'waiting': waiting.get(name, 0),
                                    'depth': runtime.queue.queue(name).count, 'workers': per_queue.get(name, 0)})
    except Exception as exc:  # Redis away: the store's side still shows
        board['redis_error'] = type(exc).__name__
        board['queues'] = [{'name': name, 'waiting': count, 'depth': None, 'workers': None}
                           for name, count in sorted(waiting.items())]
    return board


@router.get('/workers')
def workers_page(request: Request, caller: PageCaller) -> Response:
    return render(request, caller, 'workers/page.html', _board(request))


@router.get('/workers/board')
def workers_board(request: Request, caller: PageCaller) -> Response:
    """The board again, for the page's refresh."""
    return render(request, caller, 'workers/board.html', _board(request))
