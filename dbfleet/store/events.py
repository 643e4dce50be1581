"""Job events: what ansible-runner reported while a job ran, stored in batches as they come.

Thousands of events a second may arrive from one job, so a batch is one INSERT and its
validation is a few isinstance checks per event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.checks import check_limit
from dbfleet.store.jobs import require_job
from dbfleet.store.models import NAME_LENGTH, Job, JobEvent
from dbfleet.store.transactions import Transactions, chunked

EVENT_NAME_LENGTH = 64
EVENT_UUID_LENGTH = 64
PRUNE_BATCH = 2000  # events deleted per transaction: writers of live jobs wait for one batch at most
EVENT_FIELDS = ('seq', 'uuid', 'event', 'host', 'task', 'play', 'changed', 'failed', 'created', 'stdout', 'data')


class Events:
    """store.events: add a job's events, page through them, find where a retry continues numbering."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def add(self, job_id: str, events: Sequence[dict]) -> int:
        """Store a batch of the job's ansible-runner events in one INSERT; returns how many
        were new. Each event: seq (the runner's counter) and event (its name) required; uuid,
        host, task, play, changed, failed, created (datetime or ISO text; default now), stdout,
        data (event_data, already redacted). An event whose uuid the job already has, or that
        comes twice in the batch, is dropped; events without uuid are always stored."""
        now = utcnow()
        rows = [_event_row(job_id, event, index, now) for index, event in enumerate(events)]

        def work(session: Session) -> int:
            require_job(session, job_id)
            seen = set(chunked([row['uuid'] for row in rows if row['uuid'] is not None],
                               lambda chunk: select(JobEvent.uuid).where(JobEvent.job_id == job_id,
                                                                          JobEvent.uuid.in_(chunk)), session))
            fresh = []
            for row in rows:
                if row['uuid'] is not None:
                    if row['uuid'] in seen:
                        continue
                    seen.add(row['uuid'])
                fresh.append(row)
            if fresh:
                # Core executemany: one prepared statement on SQLite, one multi-row INSERT with
                # PyMySQL. A concurrent writer of the same uuid makes it fail with a duplicate
                # key on MySQL, and the transaction runs again (then the uuid is in `seen`).
                session.connection().execute(insert(JobEvent.__table__), fresh)
            return len(fresh)

        return self._transactions.run(work, write=True)

    def prune(self, finished_before: dt.datetime, batch: int = PRUNE_BATCH) -> tuple[int, int]:
        """Delete the events of jobs that ended before `finished_before` (their output and per-task
        results; the jobs themselves, their host results and audit stay): (jobs, events) pruned.
        A batch of events per transaction, so the events of running jobs keep being written
        meanwhile; a job that has not ended keeps everything."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError('batch must be a positive integer, got %r' % (batch,))
        if not isinstance(finished_before, dt.datetime):
            raise ValueError('finished_before must be a datetime, got %r' % (finished_before,))
        ended = select(Job.id).where(Job.finished_at.is_not(None), Job.finished_at < utc(finished_before))
        job_ids = self._transactions.run(lambda session: list(session.scalars(
            select(JobEvent.job_id).where(JobEvent.job_id.in_(ended)).distinct())))

        def delete_batch(session: Session, job_id: str) -> int:
            ids = list(session.scalars(select(JobEvent.id).where(JobEvent.job_id == job_id)
                                       .order_by(JobEvent.id).limit(batch)))
            if ids:
                session.execute(delete(JobEvent).where(JobEvent.id.in_(ids)))
            return len(ids)

        removed = 0
        for job_id in job_ids:
            deleted = batch
            while deleted == batch:
                deleted = self._transactions.run(lambda session: delete_batch(session, job_id), write=True)
                removed += deleted
        return len(job_ids), removed

    def list(self, job_id: str, host: str | None = None, event: str | Iterable[str] | None = None,
             after_seq: int | None = None, limit: int = 100) -> dict:
        """{'events': [...], 'next_cursor': int | None} in seq order. Pass next_cursor back as
        after_seq for the next page; None means there was no more (yet: a running job's
        followers keep asking after the last seq they saw)."""
        check_limit(limit)
        if after_seq is not None and (isinstance(after_seq, bool) or not isinstance(after_seq, int)):
            raise ValueError('after_seq must be an integer (a next_cursor), got %r' % (after_seq,))
        columns = [getattr(JobEvent, name) for name in ('job_id',) + EVENT_FIELDS]
        query = select(*columns).where(JobEvent.job_id == job_id).order_by(JobEvent.seq, JobEvent.id)
        if host is not None:
            query = query.where(JobEvent.host == host)
        if event is not None:
            names = [event] if isinstance(event, str) else list(event)
            query = query.where(JobEvent.event.in_(names))
        if after_seq is not None:
            query = query.where(JobEvent.seq > after_seq)
        query = query.limit(limit + 1)

        def work(session: Session) -> dict:
            require_job(session, job_id)
            rows = session.connection().execute(query).all()
            events = [row._asdict() for row in rows[:limit]]
            return {'events': events, 'next_cursor': events[-1]['seq'] if len(rows) > limit else None}

        return self._transactions.run(work)

    def last_seq(self, job_id: str) -> int:
        """The highest event seq stored for the job (0 when none): a retry numbers its events after it."""
        return self._transactions.run(lambda session: session.scalar(
            select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id)) or 0)


def _event_row(job_id: str, event: Any, index: int, now: dt.datetime) -> dict:
    """A job_events row from one event dict; validation is a few isinstance checks, since
    thousands of events a second go through here."""
    if not isinstance(event, dict):
        raise ValueError('event %d must be a mapping, got %s' % (index, type(event).__name__))
    unknown = event.keys() - EVENT_FIELDS
    if unknown:
        raise ValueError('event %d: unknown field %s; known: %s'
                         % (index, ', '.join(sorted(map(str, unknown))), ', '.join(EVENT_FIELDS)))
    seq, name, created = event.get('seq'), event.get('event'), event.get('created')
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError('event %d: seq must be an integer of at least 0 (the runner counter), got %r' % (index, seq))
    if not isinstance(name, str) or not name or len(name) > EVENT_NAME_LENGTH:
        raise ValueError('event %d: event must be the event name, at most %d characters, got %r'
                         % (index, EVENT_NAME_LENGTH, name))
    if created is None:
        created = now
    elif isinstance(created, str):
        try:
            created = dt.datetime.fromisoformat(created)
        except ValueError:
            raise ValueError('event %d: created must be a datetime or ISO 8601 text, got %r' % (index, created)) \
                from None
    elif not isinstance(created, dt.datetime):
        raise ValueError('event %d: created must be a datetime or ISO 8601 text, got %r' % (index, created))
    row = dict(job_id=job_id, seq=seq, event=name, created=created, uuid=event.get('uuid'), host=event.get('host'),
               task=event.get('task'), play=event.get('play'), changed=event.get('changed'),
               failed=event.get('failed'), stdout=event.get('stdout', ''), data=event.get('data', {}))
    for field, length in (('uuid', EVENT_UUID_LENGTH), ('host', NAME_LENGTH), ('task', None), ('play', None)):
        value = row[field]
        if value is not None and (not isinstance(value, str) or (length and len(value) > length)):
            raise ValueError('event %d: %s must be text%s or null, got %r'
                             % (index, field, ' of at most %d characters' % length if length else '', value))
    for field in ('changed', 'failed'):
        if row[field] is not None and not isinstance(row[field], bool):
            raise ValueError('event %d: %s must be true, false or null, got %r' % (index, field, row[field]))
    if not isinstance(row['stdout'], str):
        raise ValueError('event %d: stdout must be text, got %s' % (index, type(row['stdout']).__name__))
    if not isinstance(row['data'], dict):
        raise ValueError('event %d: data must be a mapping (the event_data), got %s'
                         % (index, type(row['data']).__name__))
    return row
