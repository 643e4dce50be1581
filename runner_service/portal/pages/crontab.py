"""Crontab: the entries bridged from each host's crontab, their mode (observe: crontab runs it,
wrapped; takeover: the platform runs it; reverted), how many of their recent slots were missed or
failed, and each entry's slot history; operators change the mode as in the API."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from runner_service.bridge.platform import CronBridge
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import FormCaller, PageCaller
from runner_service.schedules.triggers import zone

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Crontab', '/crontab')]
Ref = Annotated[str, Path(min_length=1, max_length=255)]
RECENT = 20  # the slots counted on the list
HISTORY = 50
BAD_STATES = ('missed', 'failed')


def _bridge(request: Request) -> CronBridge:
    return CronBridge(request.app.state.runtime)


@router.get('/crontab')
def entry_list(request: Request, caller: PageCaller,
               host: Annotated[str, Query(max_length=255)] = '') -> Response:
    bridge = _bridge(request)
    entries = []
    for schedule in bridge.bridged(host or None):
        recent = [item['state'] for item in bridge.history(schedule['id'], RECENT)]
        entries.append({'schedule': schedule, 'source': schedule['source'],
                        'bad': {state: recent.count(state) for state in BAD_STATES}})
    return render(request, caller, 'crontab/list.html', {'entries': entries, 'host': host, 'recent': RECENT,
                                                         'zone': zone})


@router.get('/crontab/{ref}')
def entry_page(request: Request, caller: PageCaller, ref: Ref) -> Response:
    bridge = _bridge(request)
    schedule = bridge.get(ref)
    return render(request, caller, 'crontab/detail.html', {
        'schedule': schedule, 'source': schedule['source'], 'history': bridge.history(schedule['id'], HISTORY),
        'zone': zone})


@router.post('/crontab/{ref}/mode')
def set_mode(request: Request, caller: FormCaller, ref: Ref,
             mode: Annotated[Literal['observe', 'takeover', 'reverted'], Form()]) -> Response:
    caller.need('operator')
    schedule = _bridge(request).set_mode(ref, mode, caller.name)
    return RedirectResponse('/crontab/%s' % schedule['id'], status_code=303)
