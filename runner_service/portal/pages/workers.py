"""Workers and queues: the live workers (host, queues, the job each runs now), each queue's
depth and oldest waiting job, and the pools with their leases; refreshed live."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dbfleet.clock import utcnow
from runner_service.jobs import queue_overview
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import PageCaller

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Workers', '/workers')]


def _context(request: Request) -> dict:
    runtime = request.app.state.runtime
    return {**queue_overview.overview(runtime.redis, runtime.store), 'now': utcnow()}


@router.get('/workers')
def workers_page(request: Request, caller: PageCaller) -> Response:
    return render(request, caller, 'workers/page.html', _context(request))


@router.get('/workers/live')
def workers_live(request: Request, caller: PageCaller) -> Response:
    """The page's tables again, for its refresh every few seconds."""
    return render(request, caller, 'workers/live.html', _context(request))
