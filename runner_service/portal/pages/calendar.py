"""Calendar: the coming week's schedule fire times, maintenance windows and the nightly plans'
predicted finish against their window end."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dbfleet.clock import utcnow
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import PageCaller
from runner_service.schedules import calendar

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Calendar', '/calendar')]


@router.get('/calendar')
async def week(request: Request, caller: PageCaller) -> Response:
    context = await run_in_threadpool(calendar.week, request.app.state.runtime, utcnow())
    return render(request, caller, 'calendar/week.html', {**context, 'days_shown': calendar.DAYS,
                                                           'most': calendar.MOST_PER_SCHEDULE})
