"""Jobs: the live list (filters, newest first) and a job's page: its status, per-host results,
the lane timeline, the output's tail with follow and search, cancel and relaunch."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from dbfleet.clock import utcnow
from dbfleet.store import TERMINAL_STATUSES
from runner_service.jobs.service import JobService
from runner_service.portal import gantt, job_log
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import FormCaller, PageCaller
from runner_service.schemas import JobStatus
from runner_service.templates.service import TemplateService

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Jobs', '/jobs')]
JobId = Annotated[str, Path(min_length=1, max_length=32, pattern=r'^[A-Za-z0-9_-]+$')]
STATUSES = JobStatus.__args__
PAGE = 50


def _services(request: Request) -> JobService:
    return JobService(request.app.state.runtime)


StatusFilter = Annotated[list[JobStatus] | None, Query()]
PlaybookFilter = Annotated[str | None, Query(max_length=512)]
NameFilter = Annotated[str | None, Query(max_length=255)]
Cursor = Annotated[str | None, Query(max_length=100)]


class Filters:
    """The list's filters, from the query string: status (several), playbook, template, who."""

    def __init__(self, status: StatusFilter = None, playbook: PlaybookFilter = None, template: NameFilter = None,
                 created_by: NameFilter = None):
        self.values = {'status': status or [], 'playbook': playbook or '', 'template': template or '',
                       'created_by': created_by or ''}


JobFilters = Annotated[Filters, Depends()]


def _page(request: Request, filters: Filters, cursor) -> dict:
    given = filters.values
    page = _services(request).list(status=given['status'], playbook=given['playbook'] or None,
                                   template=given['template'] or None, created_by=given['created_by'] or None,
                                   limit=PAGE, cursor=cursor)
    filters = given
    return {'jobs': page['jobs'], 'next_cursor': page['next_cursor'], 'filters': filters, 'statuses': STATUSES,
            'query': urlencode({key: value for key, value in filters.items() if value}, doseq=True),
            'live': cursor is None, 'now': utcnow()}


@router.get('/jobs')
def job_list(request: Request, caller: PageCaller, filters: JobFilters, cursor: Cursor = None) -> Response:
    return render(request, caller, 'jobs/list.html', _page(request, filters, cursor))


@router.get('/jobs/rows')
def job_rows(request: Request, caller: PageCaller, filters: JobFilters) -> Response:
    """The list's rows again, for its live refresh."""
    return render(request, caller, 'jobs/rows.html', _page(request, filters, None))


def _summary(request: Request, job_id: str) -> dict:
    jobs = _services(request)
    job = jobs.get(job_id)
    now = utcnow()
    runs = jobs.store.jobs.host_runs(job_id)
    return {'job': job, 'runs': runs, 'chart': gantt.chart(runs, job['plan'], now), 'now': now,
            'ended': job['status'] in TERMINAL_STATUSES,
            'cancelable': job['status'] not in TERMINAL_STATUSES or job['status'] == 'worker_lost',
            'failed_hosts': sorted(host for host, counts in job['host_results'].items()
                                   if counts['failed'] or counts['unreachable'])}


@router.get('/jobs/{job_id}')
def job_page(request: Request, caller: PageCaller, job_id: JobId) -> Response:
    context = _summary(request, job_id)
    context.update(log=job_log.tail(_services(request), job_id), max_lines=job_log.MAX_LINES,
                   search_length=job_log.SEARCH_TEXT)
    return render(request, caller, 'jobs/detail.html', context)


@router.get('/jobs/{job_id}/summary')
def job_summary(request: Request, caller: PageCaller, job_id: JobId) -> Response:
    return render(request, caller, 'jobs/summary.html', _summary(request, job_id))


@router.get('/jobs/{job_id}/log')
def job_log_after(request: Request, caller: PageCaller, job_id: JobId,
                  after: Annotated[int, Query(ge=0, le=2**31)] = 0) -> Response:
    """The output after event `after`, and the follow poller for what comes next (none once the
    job has ended and everything was sent)."""
    jobs = _services(request)
    job = jobs.get(job_id)
    log = job_log.after(jobs, job_id, after)
    following = log.more or job['status'] not in TERMINAL_STATUSES
    return render(request, caller, 'jobs/log_follow.html', {'job': job, 'log': log, 'following': following})


@router.get('/jobs/{job_id}/search')
def job_search(request: Request, caller: PageCaller, job_id: JobId,
               q: Annotated[str, Query(min_length=1, max_length=job_log.SEARCH_TEXT)]) -> Response:
    matches, truncated = job_log.search(_services(request), job_id, q)
    return render(request, caller, 'jobs/search.html', {'matches': matches, 'truncated': truncated, 'q': q,
                                                        'most': job_log.SEARCH_MATCHES})


@router.post('/jobs/{job_id}/cancel')
def cancel(request: Request, caller: FormCaller, job_id: JobId) -> Response:
    caller.need('operator')
    _services(request).cancel(job_id, caller.name)
    return RedirectResponse('/jobs/%s' % job_id, status_code=303)


@router.post('/jobs/{job_id}/approve')
def approve(request: Request, caller: FormCaller, job_id: JobId) -> Response:
    caller.need('admin')
    _services(request).decide(job_id, True, caller.record)
    return RedirectResponse('/jobs/%s' % job_id, status_code=303)


@router.post('/jobs/{job_id}/reject')
def reject(request: Request, caller: FormCaller, job_id: JobId,
           reason: Annotated[str, Form(min_length=1, max_length=2000)]) -> Response:
    caller.need('admin')
    _services(request).decide(job_id, False, caller.record, reason)
    return RedirectResponse('/jobs/%s' % job_id, status_code=303)


@router.post('/jobs/{job_id}/relaunch')
def relaunch(request: Request, caller: FormCaller, job_id: JobId,
             hosts: Annotated[Literal['all', 'failed'], Form()] = 'failed') -> Response:
    caller.need('operator')
    job = TemplateService(request.app.state.runtime).relaunch(job_id, hosts, caller.record)
    return RedirectResponse('/jobs/%s' % job['id'], status_code=303)
