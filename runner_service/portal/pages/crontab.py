"""Crontab: the bridged crontab entries per host with their mode and their missed and failed
runs; an entry's page with each recent slot and run, and (operators) its mode."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from runner_service.bridge import overview
from runner_service.bridge.platform import MODES, CronBridge
from runner_service.fleet.schemas import HOST_NAME_PATTERN
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import FormCaller, PageCaller

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Crontab', '/crontab')]
# A host as crontab entries name it; anything else is refused before the store is asked.
# Every name a crontab import takes (no space, no slash, no NUL), as the fleet API's hosts.
HostFilter = Annotated[str | None, Query(max_length=255, pattern=HOST_NAME_PATTERN)]
Ref = Annotated[str, Path(min_length=1, max_length=255)]


def _bridge(request: Request) -> CronBridge:
    return CronBridge(request.app.state.runtime)


@router.get('/crontab')
def entry_list(request: Request, caller: PageCaller, host: HostFilter = None) -> Response:
    hosts, left_out = overview.by_host(_bridge(request), host)
    return render(request, caller, 'crontab/list.html', {'hosts': hosts, 'host': host or '', 'left_out': left_out})


@router.get('/crontab/{ref}')
def entry_page(request: Request, caller: PageCaller, ref: Ref) -> Response:
    bridge = _bridge(request)
    entry = overview.entry_summary(bridge, bridge.get(ref))
    return render(request, caller, 'crontab/entry.html', {'entry': entry, 'modes': MODES})


@router.post('/crontab/{ref}/mode')
def set_mode(request: Request, caller: FormCaller, ref: Ref,
             mode: Annotated[Literal['observe', 'takeover', 'reverted'], Form()]) -> Response:
    """As POST /api/v1/cron/entries/{ref}/mode: an operator's."""
    caller.need('operator')
    schedule = _bridge(request).set_mode(ref, mode, caller.name)
    return RedirectResponse('/crontab/%s' % schedule['id'], status_code=303)
