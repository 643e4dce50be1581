"""/api/v1/jobs: launch, list, show, events (paged or live), stdout, cancel, relaunch."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse

from dbfleet.clock import utc
from dbfleet.store import TERMINAL_STATUSES
from runner_service import tokens
from runner_service.api import shutdown
from runner_service.api.deps import Admin, Credentials, Jobs, Operator, RuntimeDep, Templates, Viewer, need_admin
from runner_service.api.errors import error_responses
from runner_service.errors import BadRequest
from runner_service.job_queue import events_channel
from runner_service.jobs.service import JobService, check_caller_key
from runner_service.schemas import (
    ApprovalDecision,
    EventPage,
    HostRun,
    JobApproval,
    JobCreate,
    JobOut,
    JobPage,
    JobStatus,
    QueryInstant,
    Relaunch,
    Stdout,
)
from runner_service.templates.service import check_scope

router = APIRouter(prefix='/api/v1/jobs', tags=['jobs'])
ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422)
JobId = Annotated[str, Path(min_length=1, max_length=32, description='a job id')]
# Event seqs (and so cursors and SSE ids) fit the store's integer column with room to spare.
MAX_SEQ = 2**31
# How long a live follower waits for news before it looks at the store anyway.
FOLLOW_POLL_SECONDS = 1.0
# How often a live follower checks that its token is still live (one indexed read): a revoked
# or expired token's stream ends within this plus a poll.
TOKEN_RECHECK_SECONDS = 2.0


def job_view(job: dict, listening=None) -> JobOut:
    """A store job as the API shows it: secrets and internals left out, links added.
    `listening` (queue -> live workers, from JobService.listening) flags a queued job that no
    worker will take."""
    base = '/api/v1/jobs/%s' % job['id']
    waiting_for_worker = None if listening is None else job['status'] == 'queued' and not listening.get(job['queue'])
    by_file = job['inventory_kind'] == 'file'
    return JobOut(
        id=job['id'], status=job['status'], status_reason=job['status_reason'], playbook=job['playbook'],
        inventory=job['inventory'] if by_file else None, tags=None if by_file else job['inventory'],
        limit=job['limit_pattern'], extra_vars=job['extra_vars'], check=job['check_mode'], diff=job['diff_mode'],
        forks=job['forks'], timeout=job['timeout_seconds'], deadline=job['deadline'], depends_on=job['depends_on'],
        queue=job['queue'], priority=job['priority'], max_retries=job['max_retries'],
        retry_backoff=job['retry_backoff_seconds'], attempt=job['attempt'], created_at=job['created_at'],
        enqueued_at=job['enqueued_at'], started_at=job['started_at'], finished_at=job['finished_at'],
        timings=job['timings'], worker=job['worker'], return_code=job['return_code'], created_by=job['created_by'],
        relaunch_of=job['relaunch_of'], plan=job['plan'], project_revision=job.get('project_revision'),
        cancel_requested=job['cancel_requested'],
        approval=JobApproval(timeout_seconds=job['approval_timeout_seconds'], expires_at=job['approval_expires_at'],
                             decided_by=job['approval_decided_by'], decided_at=job['approval_decided_at'])
        if job.get('approval_timeout_seconds') else None,
        hosts=job['host_results'], template=job.get('template'), credentials=job.get('credentials') or [],
        waiting_for_worker=waiting_for_worker,
        links={'self': base, 'events': base + '/events', 'stdout': base + '/stdout', 'cancel': base + '/cancel',
               'relaunch': base + '/relaunch',
               **({'approve': base + '/approve', 'reject': base + '/reject'}
                  if job['status'] == 'awaiting_approval' else {})},
    )


@router.post('', status_code=201, response_model=JobOut, responses={**ERRORS, 200: {'model': JobOut, 'description':
             'the job an earlier request with the same idempotency key created'}})
def launch(body: JobCreate, jobs: Jobs, caller: Viewer, response: Response,
           idempotency_key: Annotated[str | None, Header(max_length=255)] = None) -> JobOut:
    """Queue a playbook run; answers at once with the job's id, status and links. A bare playbook
    (any playbook, with any extra vars) is for admins; operators launch templates."""
    check_scope(caller, None)
    need_admin(caller, 'a bare playbook (operators launch templates: POST /api/v1/templates/{name}/launch)')
    if idempotency_key and not body.idempotency_key:
        body = body.model_copy(update={'idempotency_key': idempotency_key})
    check_caller_key(body.idempotency_key)
    job, created = jobs.launch(body, caller['name'])
    response.status_code = 201 if created else 200
    response.headers['Location'] = '/api/v1/jobs/%s' % job['id']
    return job_view(job, jobs.listening())


@router.get('', response_model=JobPage, responses=ERRORS)
def list_jobs(jobs: Jobs, caller: Viewer,
              status: Annotated[list[JobStatus] | None, Query(description='one or more statuses')] = None,
              playbook: Annotated[str | None, Query(max_length=512)] = None,
              tag: Annotated[str | None, Query(max_length=255, description='jobs whose tag expression names it')] = None,
              template: Annotated[str | None, Query(max_length=255, description='jobs launched from this template')] = None,
              created_by: Annotated[str | None, Query(max_length=255, description='jobs launched by this token')] = None,
              created_after: Annotated[QueryInstant | None, Query(description='without a zone: UTC')] = None,
              created_before: Annotated[QueryInstant | None, Query(description='without a zone: UTC')] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 50,
              cursor: Annotated[str | None, Query(max_length=100)] = None) -> JobPage:
    """Newest first; pass next_cursor back as cursor for the next page."""
    page = jobs.list(status=status, playbook=playbook, tag=tag, template=template, created_by=created_by,
                     created_after=utc(created_after),
                     created_before=utc(created_before), limit=limit, cursor=cursor)
    listening = jobs.listening() if any(job['status'] == 'queued' for job in page['jobs']) else {}
    return JobPage(jobs=[job_view(job, listening) for job in page['jobs']], next_cursor=page['next_cursor'])


@router.get('/{job_id}', response_model=JobOut, responses=ERRORS)
def show(job_id: JobId, jobs: Jobs, caller: Viewer) -> JobOut:
    job = jobs.get(job_id)
    return job_view(job, jobs.listening() if job['status'] == 'queued' else {})


@router.get('/{job_id}/events', response_model=EventPage, responses={
    **ERRORS, 200: {'content': {'application/json': {}, 'text/event-stream': {}},
                    'description': 'a page of events; with Accept: text/event-stream, the live stream'}})
async def events(request: Request, job_id: JobId, jobs: Jobs, runtime: RuntimeDep, caller: Viewer,
                 credentials: Credentials,
                 host: Annotated[str | None, Query(max_length=255)] = None,
                 event: Annotated[list[str] | None, Query(description='event names, e.g. runner_on_failed')] = None,
                 after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description='a next_cursor')] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 last_event_id: Annotated[str | None, Header(max_length=20, pattern=r'^[0-9]+$', description=
                                                             'resume a stream after this event id (a seq)')] = None):
    """The job's events in order. With `Accept: text/event-stream` the response is a live
    Server-Sent Events stream (each event's id is its seq, so a reconnecting client resumes with
    Last-Event-ID), ending with an `end` event carrying the job's final status."""
    if 'text/event-stream' in request.headers.get('accept', ''):
        await run_in_threadpool(jobs.get, job_id)  # 404 before the stream starts
        start = after
        if last_event_id is not None:
            start = int(last_event_id)
            if start > MAX_SEQ:
                raise BadRequest('Last-Event-ID %s is no event id of this job (they are at most %d)'
                                 % (last_event_id, MAX_SEQ))
        token_hash = tokens.hash_token(credentials.credentials)
        return StreamingResponse(_follow(request, jobs, runtime, job_id, host, event, start, token_hash),
                                 media_type='text/event-stream', headers={'Cache-Control': 'no-cache'})
    return await run_in_threadpool(jobs.events, job_id, host, event, after, limit)


@router.get('/{job_id}/stdout', responses={**ERRORS, 200: {
    'content': {'text/plain': {}, 'application/json': {'schema': Stdout.model_json_schema()}},
    'description': 'the output as ansible printed it (secrets masked)'}})
def stdout(job_id: JobId, jobs: Jobs, caller: Viewer,
           format: Annotated[Literal['text', 'json'], Query(description='text/plain or JSON')] = 'text'):
    job, text = jobs.stdout(job_id)
    if format == 'json':
        return Stdout(job_id=job_id, status=job['status'], complete=job['status'] in TERMINAL_STATUSES, stdout=text)
    return PlainTextResponse(text)


@router.get('/{job_id}/runs', response_model=list[HostRun], responses=ERRORS)
def runs(job_id: JobId, jobs: Jobs, caller: Viewer) -> list[HostRun]:
    """A planned job's timeline: each host's lane or batch, estimate, start, end and status."""
    jobs.get(job_id)
    return [HostRun(**run) for run in jobs.store.jobs.host_runs(job_id)]


@router.post('/{job_id}/cancel', status_code=202, response_model=JobOut, responses=ERRORS)
def cancel(job_id: JobId, jobs: Jobs, caller: Operator) -> JobOut:
    """A queued or waiting job is canceled now; a running one has its processes killed within seconds."""
    return job_view(jobs.cancel(job_id, caller['name']))


@router.post('/{job_id}/approve', response_model=JobOut, responses=ERRORS)
def approve(job_id: JobId, jobs: Jobs, caller: Admin, body: ApprovalDecision | None = None) -> JobOut:
    """Admin: let a job awaiting approval run (it is queued, or waits for its dependencies). The
    admin who launched it may not (403): a second admin must."""
    return job_view(jobs.decide(job_id, True, caller, (body or ApprovalDecision()).reason), jobs.listening())


@router.post('/{job_id}/reject', response_model=JobOut, responses=ERRORS)
def reject(job_id: JobId, body: ApprovalDecision, jobs: Jobs, caller: Admin) -> JobOut:
    """Admin: a job awaiting approval ends `rejected` with the reason given (required)."""
    return job_view(jobs.decide(job_id, False, caller, body.reason))


@router.post('/{job_id}/relaunch', status_code=201, response_model=JobOut, responses=ERRORS)
def relaunch(job_id: JobId, templates: Templates, jobs: Jobs, caller: Operator,
             body: Relaunch | None = None) -> JobOut:
    """Run the job again as a new job: on all hosts, or only on the failed and unreachable ones.
    A job launched from a template may be relaunched by an operator whose token may launch that
    template; a bare playbook's only by an admin."""
    return job_view(templates.relaunch(job_id, (body or Relaunch()).hosts, caller), jobs.listening())


async def _follow(request: Request, jobs: JobService, runtime, job_id: str, host, names, after, token_hash: str):
    """SSE: stored events after `after`, then new ones as the worker announces its batches.
    Ends with an `unauthorized` event ({reason: revoked | expired, detail}) once the caller's
    token (by its hash) is revoked or expired: it is looked at every TOKEN_RECHECK_SECONDS."""
    pubsub = None
    checked = time.monotonic()
    try:
        try:
            pubsub = runtime.async_redis().pubsub()
            await pubsub.subscribe(events_channel(job_id))
        except Exception:  # no Redis: poll the store
            pubsub = None
        while True:
            if time.monotonic() - checked >= TOKEN_RECHECK_SECONDS:
                refused = await run_in_threadpool(_token_refused, runtime.store, token_hash)
                if refused is not None:
                    yield 'event: unauthorized\ndata: %s\n\n' % json.dumps(refused)
                    return
                checked = time.monotonic()
            page = await run_in_threadpool(jobs.events, job_id, host, names, after, 500)
            for item in page['events']:
                after = item['seq']
                yield 'id: %d\nevent: %s\ndata: %s\n\n' % (item['seq'], item['event'],
                                                           json.dumps(item, default=_json_default))
            if page['next_cursor'] is not None:
                continue
            job = await run_in_threadpool(jobs.get, job_id)
            if job['status'] in TERMINAL_STATUSES and not (job['status'] == 'worker_lost'
                                                           and job['attempt'] <= job['max_retries']):
                tail = await run_in_threadpool(jobs.events, job_id, host, names, after, 500)
                if not tail['events']:
                    yield 'event: end\ndata: %s\n\n' % json.dumps({'status': job['status'],
                                                                    'status_reason': job['status_reason']})
                    return
                continue
            if await request.is_disconnected() or shutdown.stopping():
                return
            if pubsub is not None:
                try:
                    await pubsub.get_message(ignore_subscribe_messages=True, timeout=FOLLOW_POLL_SECONDS)
                    continue
                except Exception:
                    pubsub = None
            await asyncio.sleep(FOLLOW_POLL_SECONDS / 4)
    finally:
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:
                pass


def _token_refused(store, token_hash: str) -> dict | None:
    """None while the token with this hash is live; else why not, for the stream's last event."""
    try:
        tokens.check_record(store.tokens.by_hash(token_hash))
    except tokens.Refused as refused:
        # The token was live when the stream began: not found now means revoked.
        return {'reason': 'expired' if refused.reason == 'expired' else 'revoked',
                'detail': refused.detail if refused.reason == 'expired' else 'the bearer token was revoked'}
    return None


def _json_default(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
