"""Jobs: what the API accepted to run, their dependencies, and per-host results and runs.

A job's status moves only as job_lifecycle.TRANSITIONS allows, and every move is a
compare-and-set on the job's locked row, so of two processes racing to move the same job
exactly one wins.

After a job ends (a transition to a terminal status, or a request_cancel), the caller calls
ready_dependents(job_id) to queue or fail the jobs waiting for it; ready_dependents()
without an id sweeps every waiting job, for the reconciler (a caller may die in between).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import defaultdict
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.checks import check_datetime, check_int, check_limit, check_text
from dbfleet.store.cursors import page_cursor, parse_page_cursor
from dbfleet.store.errors import StoreError
from dbfleet.store.job_lifecycle import TERMINAL_STATUSES, TRANSITIONS, decide, final_columns, move
from dbfleet.store.models import (
    DEPENDENCY_CONDITIONS,
    HOST_RESULT_COUNTS,
    INVENTORY_KINDS,
    JOB_STATUSES,
    NAME_LENGTH,
    PATH_LENGTH,
    Job,
    JobDependency,
    JobHostResult,
    JobHostRun,
    JobTag,
    ScheduleSlot,
)
from dbfleet.store.transactions import Transactions, chunked, upsert

QUEUE_LENGTH = 64

# What Jobs.create's spec may hold: name -> default (playbook and inventory are required).
SPEC_DEFAULTS: dict[str, Any] = dict(
    inventory_kind='file', limit_pattern=None, extra_vars=None, check_mode=False, diff_mode=False, forks=None,
    timeout_seconds=None, deadline=None, queue='default', priority=0, max_retries=0, retry_backoff_seconds=0,
    relaunch_of=None, secret_vars=None, plan=None, template=None, credentials=None, approval_timeout_seconds=None,
)
SPEC_REQUIRED = ('playbook', 'inventory')
# What transition(**fields) may set alongside the status.
TRANSITION_FIELDS = ('worker', 'return_code', 'status_reason', 'enqueued_at', 'started_at', 'finished_at')
_REVISION = re.compile(r'^[0-9a-f]{40}$')


class UnknownJob(StoreError, LookupError):
    def __init__(self, job_id: str):
        super().__init__('no job %s in the store' % job_id)
        self.job_id = job_id


class Jobs:
    """store.jobs: create jobs, move them through their life, read them, record their host results."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def create(self, spec: dict, depends_on: Iterable[tuple[str, str] | dict] = (),
               idempotency_key: str | None = None, created_by: str | None = None,
               tags: Iterable[str] = ()) -> tuple[dict, bool]:
        """Record a job the API accepted; returns (job, created).

        spec: playbook and inventory (required), inventory_kind ('file' | 'tags'), limit_pattern,
        extra_vars (already redacted), check_mode, diff_mode, forks, timeout_seconds, deadline,
        queue, priority (higher runs first), max_retries, retry_backoff_seconds, relaunch_of,
        secret_vars (sealed text, runner_service.secret_box), template (the job template that launched it),
        credentials (the names of the credentials its run gets), approval_timeout_seconds (it waits
        awaiting_approval, out of any queue, until approved (decide_approval) or this long has passed).
        depends_on: (job_id, on) pairs or {job_id, on} dicts, on = success | failure | always.
        tags: the tag names a tag-expression inventory refers to (jobs.list(tag=...) finds them).

        A job with an idempotency_key already used is not created again: that job is returned
        with created=False, also when processes race with the same key. The new job is
        'queued', or 'waiting' while a dependency has not ended; when every dependency has
        already ended and one not as `on` asks, it is created 'dependency_failed'.
        """
        values = _check_spec(spec)
        dependencies = _check_dependencies(depends_on)
        tag_names = sorted({check_text(tag, 'tag', NAME_LENGTH) for tag in tags})
        if idempotency_key is not None:
            check_text(idempotency_key, 'idempotency_key', NAME_LENGTH)
        if created_by is not None:
            check_text(created_by, 'created_by', NAME_LENGTH)

        def work(session: Session) -> tuple[dict, bool]:
            if idempotency_key is not None:
                existing = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
                if existing is not None:
                    return _job_dicts(session, [existing])[0], False
            if values['relaunch_of'] is not None and session.get(Job, values['relaunch_of']) is None:
                raise ValueError('relaunch_of: no job %s in the store' % values['relaunch_of'])
            # Shared locks: a dependency cannot end between this read and the commit, so either
            # this job sees it ended, or ready_dependents (run after it ended) sees this job.
            upstream = {row.id: row for row in session.execute(
                final_columns().where(Job.id.in_(list(dependencies))).order_by(Job.id).with_for_update(read=True))
            } if dependencies else {}
            missing = sorted(set(dependencies) - set(upstream))
            if missing:
                raise ValueError('depends_on: no job %s in the store' % ', '.join(missing))
            now = utcnow()
            status, reason = decide(dependencies, upstream)
            expires = None
            if values['approval_timeout_seconds'] is not None and status != 'dependency_failed':
                status, reason = 'awaiting_approval', None
                expires = now + dt.timedelta(seconds=values['approval_timeout_seconds'])
            job = Job(id=uuid.uuid4().hex, **values, status=status, created_at=now, status_reason=reason,
                      approval_expires_at=expires,
                      enqueued_at=now if status == 'queued' else None,
                      finished_at=now if status in TERMINAL_STATUSES else None,
                      idempotency_key=idempotency_key, created_by=created_by, attempt=0, cancel_requested=False)
            session.add(job)
            session.flush()  # the job row first: the dependency rows refer to it
            session.add_all(JobDependency(job_id=job.id, depends_on_id=depends_on_id, on=on)
                            for depends_on_id, on in dependencies.items())
            session.add_all(JobTag(job_id=job.id, tag=tag) for tag in tag_names)
            session.flush()  # a duplicate idempotency key fails here, and the transaction runs again
            return _job_dicts(session, [job])[0], True

        return self._transactions.run(work, write=True)

    def get(self, job_id: str) -> dict | None:
        """The job (columns, timings {queued_seconds, run_seconds}, depends_on [{job_id, on}],
        host_results {host: counts}), or None."""
        def work(session: Session) -> dict | None:
            job = session.get(Job, job_id) if isinstance(job_id, str) else None
            return _job_dicts(session, [job])[0] if job else None

        return self._transactions.run(work)

    def by_idempotency_key(self, key: str) -> dict | None:
        def work(session: Session) -> dict | None:
            job = session.scalar(select(Job).where(Job.idempotency_key == key))
            return _job_dicts(session, [job])[0] if job else None

        return self._transactions.run(work)

    def list(self, status: str | Iterable[str] | None = None, playbook: str | None = None,
             created_after: dt.datetime | None = None, created_before: dt.datetime | None = None,
             limit: int = 50, cursor: str | None = None, tag: str | None = None, template: str | None = None,
             created_by: str | None = None) -> dict:
        """{'jobs': [...], 'next_cursor': str | None}, newest first; `template` the template a job was
        launched from, `created_by` the token (or user) that launched it. created_after is inclusive,
        created_before exclusive. The cursor marks the last job of a page by (created_at, id),
        so later pages neither repeat nor skip jobs when new ones arrive meanwhile."""
        check_limit(limit)
        query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
        if status is not None:
            query = query.where(Job.status.in_(_check_statuses(status, 'status')))
        if playbook is not None:
            query = query.where(Job.playbook == playbook)
        if tag is not None:
            query = query.where(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == tag)))
        if template is not None:
            query = query.where(Job.template == template)
        if created_by is not None:
            query = query.where(Job.created_by == created_by)
        if created_after is not None:
            query = query.where(Job.created_at >= check_datetime(created_after, 'created_after'))
        if created_before is not None:
            query = query.where(Job.created_at < check_datetime(created_before, 'created_before'))
        if cursor is not None:
            at, last_id = parse_page_cursor(cursor, 'list_jobs')
            query = query.where(or_(Job.created_at < at, and_(Job.created_at == at, Job.id < last_id)))

        def work(session: Session) -> dict:
            jobs = list(session.scalars(query))
            more = len(jobs) > limit
            jobs = jobs[:limit]
            next_cursor = page_cursor(jobs[-1].created_at, jobs[-1].id) if more else None
            return {'jobs': _job_dicts(session, jobs), 'next_cursor': next_cursor}

        return self._transactions.run(work)

    def transition(self, job_id: str, to_status: str, *, expect: Iterable[str] | str | None = None,
                   **fields: Any) -> dict | None:
        """Move the job to `to_status` if its status is in `expect` (default: every status
        TRANSITIONS allows the move from); returns the job, or None when it was elsewhere
        (the compare-and-set lost). `fields` (worker, return_code, status_reason, enqueued_at,
        started_at, finished_at) are set with it. Set by the move itself: queued sets
        enqueued_at; running sets started_at and counts an attempt; a terminal status sets
        finished_at. worker_lost -> queued (a retry) needs retries left (attempt <= max_retries,
        else ValueError) and loses to a cancel request (None)."""
        if to_status not in TRANSITIONS:
            raise ValueError('unknown job status %r: use one of %s' % (to_status, ', '.join(JOB_STATUSES)))
        legal = TRANSITIONS[to_status]
        if not legal:
            raise ValueError('no job moves to %s: a job is %s only from its creation' % (to_status, to_status))
        expected = legal if expect is None else _check_statuses(expect, 'expect')
        illegal = sorted(expected - legal)
        if illegal or not expected:
            raise ValueError('a job cannot move from %s to %s; it can only from %s'
                             % (', '.join(illegal) or 'nowhere', to_status, ', '.join(sorted(legal))))
        fields = _check_fields(fields)

        def work(session: Session) -> dict | None:
            job = _locked_job(session, job_id)
            if job is None:
                raise UnknownJob(job_id)
            if job.status not in expected:
                return None
            if job.status == 'worker_lost':
                if job.cancel_requested:
                    return None
                if job.attempt > job.max_retries:
                    raise ValueError('job %s has run %d times and may be retried %d times: it stays worker_lost'
                                     % (job_id, job.attempt, job.max_retries))
            move(job, to_status, utcnow(), fields)
            session.flush()
            return _job_dicts(session, [job])[0]

        return self._transactions.run(work, write=True)

    def heartbeat(self, job_id: str, runner_host: str | None = None, runner_pid: int | None = None) -> bool:
        """The running job's worker is alive (and, once known, where its ansible-playbook runs).
        False when the job is no longer running: the worker should stop."""
        values: dict[str, Any] = {'heartbeat_at': utcnow()}
        if runner_host is not None:
            values['runner_host'] = check_text(runner_host, 'runner_host', NAME_LENGTH)
        if runner_pid is not None:
            values['runner_pid'] = check_int(runner_pid, 'runner_pid', minimum=1)

        def work(session: Session) -> bool:
            result = session.execute(update(Job).where(Job.id == job_id, Job.status == 'running').values(**values))
            return result.rowcount > 0

        return self._transactions.run(work, write=True)

    def set_project_revision(self, job_id: str, revision: str | None) -> None:
        """The git commit (40 hex) the job runs from, recorded by its worker once fetched; None
        clears a previous attempt's before a retry fetches again."""
        if revision is not None and not (isinstance(revision, str) and _REVISION.match(revision)):
            raise ValueError('project revision must be a commit id of 40 hex digits, got %r' % (revision,))

        def work(session: Session) -> None:
            require_job(session, job_id)
            session.execute(update(Job).where(Job.id == job_id).values(project_revision=revision))

        self._transactions.run(work, write=True)

    def stale_running(self, silent_seconds: float) -> list[dict]:
        """Running jobs whose worker has not written a heartbeat for `silent_seconds`."""
        cutoff = utcnow() - dt.timedelta(seconds=silent_seconds)
        query = select(Job).where(Job.status == 'running', or_(
            Job.heartbeat_at < cutoff, and_(Job.heartbeat_at.is_(None), Job.started_at < cutoff))).order_by(Job.id)
        return self._transactions.run(lambda session: _job_dicts(session, list(session.scalars(query))))

    def overdue(self, now: dt.datetime | None = None) -> list[dict]:
        """Waiting or queued jobs whose deadline has passed before they could start."""
        now = utc(now) or utcnow()
        query = select(Job).where(Job.status.in_(('waiting', 'queued', 'awaiting_approval')),
                                  Job.deadline <= now).order_by(Job.id)
        return self._transactions.run(lambda session: _job_dicts(session, list(session.scalars(query))))

    def request_cancel(self, job_id: str) -> dict | None:
        """Ask for the job to stop: a queued or waiting job is canceled at once; a running one
        is flagged (cancel_requested) for its worker to kill and then mark canceled; a lost one
        is flagged so it is not retried. A job that has ended is left as it is. Returns the
        job, None when there is no such job."""
        def work(session: Session) -> dict | None:
            job = _locked_job(session, job_id)
            if job is None:
                return None
            if job.status in ('queued', 'waiting', 'awaiting_approval'):
                move(job, 'canceled', utcnow(), {'status_reason': 'canceled before it started'})
            elif job.status in ('running', 'worker_lost'):
                job.cancel_requested = True
            session.flush()
            return _job_dicts(session, [job])[0]

        return self._transactions.run(work, write=True)

    def decide_approval(self, job_id: str, approve: bool, by: str, reason: str | None = None) -> dict | None:
        """An admin's decision on a job awaiting approval: approved, it moves on as a new job would
        (queued, waiting for its dependencies, or dependency_failed); rejected, it ends `rejected`
        with `reason`. Returns the job, None when it was not awaiting approval (any more)."""
        check_text(by, 'by', NAME_LENGTH)
        if reason is not None:
            check_text(reason, 'reason')

        def work(session: Session) -> dict | None:
            job = _locked_job(session, job_id)
            if job is None:
                raise UnknownJob(job_id)
            if job.status != 'awaiting_approval':
                return None
            now = utcnow()
            if approve:
                dependencies = {row.depends_on_id: row.on for row in session.scalars(
                    select(JobDependency).where(JobDependency.job_id == job.id))}
                upstream = {row.id: row for row in session.execute(
                    final_columns().where(Job.id.in_(list(dependencies))).order_by(Job.id)
                    .with_for_update(read=True))} if dependencies else {}
                status, why = decide(dependencies, upstream)
                move(job, status, now, {'status_reason': why or 'approved by %s' % by})
            else:
                move(job, 'rejected', now, {'status_reason': 'rejected by %s: %s' % (by, reason or 'no reason given')})
            job.approval_decided_by, job.approval_decided_at = by, now
            session.flush()
            return _job_dicts(session, [job])[0]

        return self._transactions.run(work, write=True)

    def expire_approvals(self, now: dt.datetime | None = None) -> list[dict]:
        """Jobs whose approval did not come in time end `expired`; returns them."""
        now = utc(now) or utcnow()

        def work(session: Session) -> list[dict]:
            jobs = list(session.scalars(select(Job).where(Job.status == 'awaiting_approval',
                                                          Job.approval_expires_at <= now)
                                        .order_by(Job.id).with_for_update()))
            for job in jobs:
                move(job, 'expired', now, {'status_reason': 'no admin approved it within %d s (by %s)' % (
                    job.approval_timeout_seconds or 0,
                    utc(job.approval_expires_at).isoformat(timespec='seconds').replace('+00:00', 'Z'))})
            session.flush()
            return _job_dicts(session, jobs)

        return self._transactions.run(work, write=True)

    def pending(self, limit: int | None = None,
                enqueued_since: dt.datetime | None = None) -> list[tuple[str, str, dt.datetime | None]]:
        """(id, queue, enqueued_at) of the queued jobs (those queued at or after `enqueued_since`
        only, when given), for the reconciler that re-enqueues them after Redis lost its queues:
        higher priority first, then oldest first. Only these columns: the reconciler reads them
        every few seconds, with thousands queued."""
        query = select(Job.id, Job.queue, Job.enqueued_at).where(Job.status == 'queued')
        if enqueued_since is not None:
            query = query.where(Job.enqueued_at >= check_datetime(enqueued_since, 'enqueued_since'))
        query = query.order_by(Job.priority.desc(), Job.created_at, Job.id)
        if limit is not None:
            check_limit(limit)
            query = query.limit(limit)
        return self._transactions.run(lambda session: [(job_id, queue, utc(enqueued_at))
                                                       for job_id, queue, enqueued_at in session.execute(query)])

    def queued_by_queue(self) -> dict[str, int]:
        """{queue: how many jobs wait in it}, for /healthz."""
        query = select(Job.queue, func.count()).where(Job.status == 'queued').group_by(Job.queue)
        return self._transactions.run(lambda session: {queue: count for queue, count in session.execute(query)})

    def waiting_by_queue(self) -> dict[str, dict]:
        """{queue: {'waiting': how many jobs are queued in it, 'oldest': the earliest enqueued_at}}."""
        query = (select(Job.queue, func.count(), func.min(Job.enqueued_at)).where(Job.status == 'queued')
                 .group_by(Job.queue))
        return self._transactions.run(lambda session: {
            queue: {'waiting': count, 'oldest': utc(oldest) if oldest is not None else None}
            for queue, count, oldest in session.execute(query)})

    # -- dependencies ----------------------------------------------------------------------

    def ready_dependents(self, job_id: str | None = None) -> list[dict]:
        """Resolve the waiting jobs that depend on `job_id` (every waiting job when None) and
        whose dependencies are now all final: each moves to queued when every dependency
        ended as its `on` asks, else to dependency_failed with a reason naming the dependency
        and how it ended. A job failed this way is final, so its own dependents are resolved
        in the same pass (chains). Returns the jobs moved, in the order they moved."""
        def work(session: Session) -> list[dict]:
            if job_id is not None and session.get(Job, job_id) is None:
                raise UnknownJob(job_id)
            now = utcnow()
            moved: list[Job] = []
            ended = None if job_id is None else [job_id]
            while True:
                candidates = select(Job).where(Job.status == 'waiting').order_by(Job.id).with_for_update()
                if ended is not None:
                    dependents = chunked(ended, lambda chunk: select(JobDependency.job_id).distinct()
                                          .where(JobDependency.depends_on_id.in_(chunk)), session)
                    if not dependents:
                        break
                    candidates = candidates.where(Job.id.in_(sorted(set(dependents))))
                waiting = list(session.scalars(candidates))
                if not waiting:
                    break
                edges: dict[str, dict[str, str]] = defaultdict(dict)
                for dependency in chunked([job.id for job in waiting], lambda chunk: select(JobDependency)
                                           .where(JobDependency.job_id.in_(chunk)), session):
                    edges[dependency.job_id][dependency.depends_on_id] = dependency.on
                upstream_ids = sorted({upstream for deps in edges.values() for upstream in deps})
                upstream = {row.id: row for row in chunked(
                    upstream_ids, lambda chunk: final_columns().where(Job.id.in_(chunk)), session, rows=True)}
                ended = []
                for job in waiting:
                    status, reason = decide(edges[job.id], upstream)
                    if status == 'waiting':
                        continue
                    move(job, status, now, {'status_reason': reason})
                    moved.append(job)
                    if status == 'dependency_failed':
                        ended.append(job.id)
                session.flush()
                if not ended:
                    break
            return _job_dicts(session, moved)

        return self._transactions.run(work, write=True)

    # -- results ---------------------------------------------------------------------------

    def set_host_results(self, job_id: str, results: dict[str, dict]) -> None:
        """Create or replace the job's recap counts per host: {host: {ok, changed, failed,
        unreachable, skipped, rescued, ignored}}; a count left out is 0."""
        if not isinstance(results, dict):
            raise ValueError('host results must be a mapping of host to counts, got %s' % type(results).__name__)
        rows = [_host_result_row(job_id, host, counts) for host, counts in results.items()]

        def work(session: Session) -> None:
            require_job(session, job_id)
            if rows:
                upsert(session, JobHostResult.__table__, rows, HOST_RESULT_COUNTS)

        self._transactions.run(work, write=True)

    # -- planned jobs: per-host runs --------------------------------------------------------

    def set_host_runs(self, job_id: str, runs: Sequence[dict]) -> None:
        """Create or replace the job's host runs: {host, lane, batch, status, estimate_seconds,
        started_at, finished_at, detail, worker} (status: pending, running, ok, failed, not_run, worker_lost,
        skipped (not started: the plan's window had ended);
        worker: host/pid of the worker that ran it)."""
        rows = [dict(job_id=job_id, host=check_text(run['host'], 'host', NAME_LENGTH), lane=run.get('lane'),
                     batch=run.get('batch'), status=check_text(run['status'], 'status', 12),
                     estimate_seconds=run.get('estimate_seconds'), started_at=run.get('started_at'),
                     finished_at=run.get('finished_at'), detail=run.get('detail'),
                     worker=None if run.get('worker') is None else check_text(run['worker'], 'worker', NAME_LENGTH))
                for run in runs]

        def work(session: Session) -> None:
            require_job(session, job_id)
            if rows:
                upsert(session, JobHostRun.__table__, rows,
                        ('lane', 'batch', 'status', 'estimate_seconds', 'started_at', 'finished_at', 'detail',
                         'worker'))

        self._transactions.run(work, write=True)

    def host_runs(self, job_id: str) -> list[dict]:
        """The job's host runs by lane (or batch), then start time."""
        columns = [column for column in JobHostRun.__table__.columns if column.key != 'job_id']
        query = (select(*columns).where(JobHostRun.job_id == job_id)
                 .order_by(JobHostRun.lane, JobHostRun.batch, JobHostRun.started_at, JobHostRun.host))

        def work(session: Session) -> list[dict]:
            require_job(session, job_id)
            return [row._asdict() for row in session.execute(query)]

        return self._transactions.run(work)


    def planned_history(self, template: str | None = None, schedule_id: str | None = None,
                        playbook: str | None = None, inventory: str | None = None, limit: int = 10) -> list[dict]:
        """The `limit` most recent jobs that ended and ran in lanes, of one template, of one
        schedule's slots, or of one playbook and inventory (either may be left out), newest
        first: [{id, status, started_at, finished_at, runs: [host runs as host_runs gives them]}].
        These are what a plan preview compares its past estimates with."""
        check_limit(limit)
        query = (select(Job.id, Job.status, Job.started_at, Job.finished_at)
                 .where(Job.status.in_(('successful', 'failed')), Job.started_at.is_not(None),
                        Job.finished_at.is_not(None),
                        Job.id.in_(select(JobHostRun.job_id).where(JobHostRun.lane.is_not(None))))
                 .order_by(Job.created_at.desc(), Job.id.desc()).limit(limit))
        if template is not None:
            query = query.where(Job.template == check_text(template, 'template', NAME_LENGTH))
        if schedule_id is not None:
            query = query.where(Job.id.in_(select(ScheduleSlot.job_id).where(
                ScheduleSlot.schedule_id == check_text(schedule_id, 'schedule'))))
        if playbook is not None:
            query = query.where(Job.playbook == check_text(playbook, 'playbook', PATH_LENGTH))
        if inventory is not None:
            query = query.where(Job.inventory == check_text(inventory, 'inventory'))
        columns = [column for column in JobHostRun.__table__.columns]

        def work(session: Session) -> list[dict]:
            jobs = [row._asdict() for row in session.execute(query)]
            runs: dict[str, list[dict]] = defaultdict(list)
            for row in chunked([job['id'] for job in jobs], lambda chunk: select(*columns).where(
                    JobHostRun.job_id.in_(chunk)).order_by(JobHostRun.lane, JobHostRun.started_at), session, rows=True):
                item = row._asdict()
                runs[item.pop('job_id')].append(item)
            return [dict(job, runs=runs.get(job['id'], [])) for job in jobs]

        return self._transactions.run(work)

    # -- one host's history ----------------------------------------------------------------

    def of_host(self, host: str, limit: int = 10) -> list[dict]:
        """The most recent jobs that ran on `host` (it has recap counts in them, or a host run),
        newest first: [{id, playbook, template, status, created_at, started_at, finished_at,
        counts}] (counts: the host's recap, None before the job recorded one)."""
        check_text(host, 'host', NAME_LENGTH)
        check_limit(limit)
        ran_there = select(JobHostResult.job_id).where(JobHostResult.host == host).union(
            select(JobHostRun.job_id).where(JobHostRun.host == host)).subquery()
        query = (select(Job.id, Job.playbook, Job.template, Job.status, Job.created_at, Job.started_at, Job.finished_at)
                 .where(Job.id.in_(select(ran_there.c.job_id)))
                 .order_by(Job.created_at.desc(), Job.id.desc()).limit(limit))

        def work(session: Session) -> list[dict]:
            jobs = session.execute(query).all()
            counts = {row.job_id: {name: getattr(row, name) for name in HOST_RESULT_COUNTS}
                      for row in session.scalars(select(JobHostResult).where(
                          JobHostResult.host == host, JobHostResult.job_id.in_([job.id for job in jobs])))}
            return [dict(id=job.id, playbook=job.playbook, template=job.template,
                         status=job.status, created_at=job.created_at, started_at=job.started_at,
                         finished_at=job.finished_at, counts=counts.get(job.id)) for job in jobs]

        return self._transactions.run(work)

    def runs_of_host(self, host: str, limit: int = 10) -> list[dict]:
        """`host`'s most recent runs in planned jobs, newest first: [{job_id, host, lane, batch, status,
        estimate_seconds, started_at, finished_at, detail, worker}] (not started ones last)."""
        check_text(host, 'host', NAME_LENGTH)
        check_limit(limit)
        query = (select(*JobHostRun.__table__.columns).join(Job, Job.id == JobHostRun.job_id).where(JobHostRun.host == host)
                 .order_by(Job.created_at.desc(), JobHostRun.job_id.desc()).limit(limit))
        return self._transactions.run(lambda session: [row._asdict() for row in session.execute(query)])


# -- helpers: rows and dicts ---------------------------------------------------------------

def _locked_job(session: Session, job_id: str) -> Job | None:
    if not isinstance(job_id, str):
        return None
    return session.scalar(select(Job).where(Job.id == job_id).with_for_update())


def require_job(session: Session, job_id: str) -> None:
    if not isinstance(job_id, str) or session.scalar(select(Job.id).where(Job.id == job_id)) is None:
        raise UnknownJob(job_id)


_JOB_COLUMNS = tuple(column.key for column in Job.__table__.columns)


def _job_dicts(session: Session, jobs: list[Job]) -> list[dict]:
    """Jobs as plain dicts, with their dependencies and host results in two queries for all of them."""
    ids = [job.id for job in jobs]
    depends_on: dict[str, list[dict]] = defaultdict(list)
    for dependency in chunked(ids, lambda chunk: select(JobDependency).where(JobDependency.job_id.in_(chunk))
                               .order_by(JobDependency.job_id, JobDependency.depends_on_id), session):
        depends_on[dependency.job_id].append({'job_id': dependency.depends_on_id, 'on': dependency.on})
    host_results: dict[str, dict[str, dict]] = defaultdict(dict)
    for result in chunked(ids, lambda chunk: select(JobHostResult).where(JobHostResult.job_id.in_(chunk))
                           .order_by(JobHostResult.job_id, JobHostResult.host), session):
        host_results[result.job_id][result.host] = {name: getattr(result, name) for name in HOST_RESULT_COUNTS}
    now = utcnow()
    result = []
    for job in jobs:
        item = {name: getattr(job, name) for name in _JOB_COLUMNS}
        item['timings'] = _timings(job, now)
        item['depends_on'] = depends_on.get(job.id, [])
        item['host_results'] = host_results.get(job.id, {})
        result.append(item)
    return result


def _timings(job: Job, now: dt.datetime) -> dict[str, float | None]:
    """Seconds spent in the queue (until it started, or ended without starting) and running
    (so far, while it runs)."""
    queued = run = None
    if job.enqueued_at is not None:
        queued = ((job.started_at or job.finished_at or now) - job.enqueued_at).total_seconds()
    if job.started_at is not None:
        run = ((job.finished_at or now) - job.started_at).total_seconds()
    return {'queued_seconds': queued, 'run_seconds': run}


# -- helpers: validation -------------------------------------------------------------------

def _check_statuses(statuses: str | Iterable[str], what: str) -> frozenset[str]:
    values = frozenset([statuses] if isinstance(statuses, str) else statuses)
    unknown = sorted(values - set(JOB_STATUSES), key=str)
    if unknown:
        raise ValueError('%s: unknown job status %s; use %s' % (what, ', '.join(map(repr, unknown)),
                                                               ', '.join(JOB_STATUSES)))
    return values


def _check_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ValueError('a job spec must be a mapping, got %s' % type(spec).__name__)
    unknown = sorted(set(spec) - set(SPEC_REQUIRED) - set(SPEC_DEFAULTS), key=str)
    if unknown:
        raise ValueError('job spec: unknown field %s; known: %s'
                         % (', '.join(map(str, unknown)), ', '.join(SPEC_REQUIRED + tuple(SPEC_DEFAULTS))))
    values = dict(SPEC_DEFAULTS, **spec)
    check_text(values.get('playbook'), 'job spec: playbook', PATH_LENGTH)
    check_text(values.get('inventory'), 'job spec: inventory')
    if values['inventory_kind'] not in INVENTORY_KINDS:
        raise ValueError("job spec: inventory_kind must be 'file' or 'tags', got %r" % (values['inventory_kind'],))
    if values['limit_pattern'] is not None:
        check_text(values['limit_pattern'], 'job spec: limit_pattern')
    if values['extra_vars'] is None:
        values['extra_vars'] = {}
    if not isinstance(values['extra_vars'], dict):
        raise ValueError('job spec: extra_vars must be a mapping, got %s' % type(values['extra_vars']).__name__)
    for name in ('check_mode', 'diff_mode'):
        if not isinstance(values[name], bool):
            raise ValueError('job spec: %s must be true or false, got %r' % (name, values[name]))
    for name in ('forks', 'timeout_seconds', 'approval_timeout_seconds'):
        if values[name] is not None:
            check_int(values[name], 'job spec: ' + name, minimum=1)
    if values['deadline'] is not None:
        values['deadline'] = check_datetime(values['deadline'], 'job spec: deadline')
    check_text(values['queue'], 'job spec: queue', QUEUE_LENGTH)
    check_int(values['priority'], 'job spec: priority')
    check_int(values['max_retries'], 'job spec: max_retries', minimum=0)
    check_int(values['retry_backoff_seconds'], 'job spec: retry_backoff_seconds', minimum=0)
    if values['relaunch_of'] is not None:
        check_text(values['relaunch_of'], 'job spec: relaunch_of')
    if values['template'] is not None:
        check_text(values['template'], 'job spec: template', NAME_LENGTH)
    if values['secret_vars'] is not None:
        check_text(values['secret_vars'], 'job spec: secret_vars')
    if values['credentials'] is not None:
        if not isinstance(values['credentials'], list):
            raise ValueError('job spec: credentials must be a list of names, got %s'
                             % type(values['credentials']).__name__)
        for name in values['credentials']:
            check_text(name, 'job spec: credentials', NAME_LENGTH)
    if values['plan'] is not None and not isinstance(values['plan'], dict):
        raise ValueError('job spec: plan must be a mapping, got %s' % type(values['plan']).__name__)
    return values


def _check_dependencies(depends_on: Any) -> dict[str, str]:
    """{job_id: on} from (job_id, on) pairs or {job_id, on} dicts."""
    if isinstance(depends_on, (str, dict)):
        raise ValueError('depends_on must be a list of (job_id, on) pairs, got %r' % (depends_on,))
    dependencies: dict[str, str] = {}
    for item in depends_on:
        if isinstance(item, dict) and set(item) == {'job_id', 'on'}:
            job_id, on = item['job_id'], item['on']
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            job_id, on = item
        else:
            raise ValueError('depends_on: each item must be (job_id, on) or {job_id, on}, got %r' % (item,))
        check_text(job_id, 'depends_on: job id')
        if on not in DEPENDENCY_CONDITIONS:
            raise ValueError('depends_on %s: on must be one of %s, got %r'
                             % (job_id, ', '.join(DEPENDENCY_CONDITIONS), on))
        if dependencies.get(job_id, on) != on:
            raise ValueError('depends_on: job %s is listed twice, with on %s and %s'
                             % (job_id, dependencies[job_id], on))
        dependencies[job_id] = on
    return dependencies


def _check_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(TRANSITION_FIELDS))
    if unknown:
        raise ValueError('transition: cannot set %s; it sets %s' % (', '.join(unknown), ', '.join(TRANSITION_FIELDS)))
    checked = dict(fields)
    for name, value in fields.items():
        if value is None:
            continue
        if name == 'worker':
            check_text(value, 'worker', NAME_LENGTH)
        elif name == 'return_code':
            check_int(value, 'return_code')
        elif name == 'status_reason':
            check_text(value, 'status_reason')
        else:
            checked[name] = check_datetime(value, name)
    return checked


def _host_result_row(job_id: str, host: Any, counts: Any) -> dict:
    check_text(host, 'host name', NAME_LENGTH)
    if not isinstance(counts, dict):
        raise ValueError('host results of %s must be a mapping of counts, got %s' % (host, type(counts).__name__))
    unknown = sorted(set(counts) - set(HOST_RESULT_COUNTS), key=str)
    if unknown:
        raise ValueError('host results of %s: unknown count %s; known: %s'
                         % (host, ', '.join(map(str, unknown)), ', '.join(HOST_RESULT_COUNTS)))
    row = dict(job_id=job_id, host=host)
    for name in HOST_RESULT_COUNTS:
        row[name] = check_int(counts.get(name, 0), 'host results of %s: %s' % (host, name), minimum=0)
    return row
