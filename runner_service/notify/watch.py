"""Noticing events where they are already recorded: a job's end in the store.

Each pass reads the jobs that ended since the watcher's cursor (kept in the store, so a restart
reads on from there; a minute of overlap for late commits and other machines' clocks) and, for
each, the events it makes:

    failed      the job failed
    timed_out   its timeout or deadline killed it
    recovered   it succeeded and the template's previous job had not
    worker_lost its worker stopped (also told to the template's `failed` subscribers)

Each event goes to the notifiers its template names for it (`notify`) and to those that take it
for every job (a notifier's `events`). It is stored once per job and event (key `job:ID:EVENT`),
with one delivery per notifier, before anything is sent; a maintenance window open when the job
ended that covers its hosts or its schedule silences it: stored all the same, marked with the
window's name, nothing sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from dbfleet.clock import utcnow
from dbfleet.store import UnknownSchedule
from runner_service.jobs.service import SCHEDULE_KEY_PREFIX
from runner_service.runtime import Runtime
from runner_service.schedules.windows import Window, WindowService

CURSOR = 'job-ends'
OVERLAP = dt.timedelta(seconds=60)
FIRST_LOOK_BACK = dt.timedelta(minutes=10)  # the first pass ever: jobs that ended this recently
BATCH = 2000
EVENT_OF_STATUS = {'failed': 'failed', 'timed_out': 'timed_out', 'worker_lost': 'worker_lost'}
WORDS = {'failed': 'failed', 'timed_out': 'timed out', 'worker_lost': 'lost its worker',
         'recovered': 'succeeded after a failure'}


class JobWatcher:
    def __init__(self, runtime: Runtime, clock: Callable[[], dt.datetime] = utcnow):
        self.runtime = runtime
        self.store = runtime.store
        self.clock = clock
        self.windows = WindowService(runtime)

    def pass_once(self) -> int:
        """Store the notifications of the jobs that ended since the last pass; how many were new."""
        notifications = self.store.notifications
        cursor = notifications.cursor(CURSOR) or self.clock() - FIRST_LOOK_BACK
        jobs = notifications.ended_jobs(cursor - OVERLAP, limit=BATCH)
        if not jobs:
            return 0
        notifiers = notifications.notifiers()
        windows = self.windows.windows()
        templates: dict[str, dict] = {}
        stored = 0
        for job in jobs:
            stored += self._notice(job, notifiers, windows, templates)
        notifications.move_cursor(CURSOR, jobs[-1]['finished_at'])
        return stored

    def _notice(self, job: dict, notifiers: list[dict], windows: list[Window], templates: dict[str, dict]) -> int:
        template = None
        if job['template']:
            if job['template'] not in templates:
                try:
                    templates[job['template']] = self.store.templates.get(job['template'])['definition']
                except LookupError:
                    templates[job['template']] = {}
            template = templates[job['template']]
        subscribed = (template or {}).get('notify') or {}
        event = EVENT_OF_STATUS.get(job['status'])
        if event is None:  # successful: news only after a failure of the same template
            event = 'recovered'
            wanted = subscribed.get(event) or any(event in notifier['events'] for notifier in notifiers)
            if not wanted or not job['template'] or self._follows_success(job):
                return 0
        recipients = [notifier['name'] for notifier in notifiers if event in notifier['events']]
        recipients += subscribed.get('failed' if event == 'worker_lost' else event) or []
        if not recipients:
            return 0
        schedule = self._schedule(job)
        silenced_by = self._silencing(job, schedule, template, windows)
        subject = '[dbfleet] job %s %s%s' % (job['id'][:8], WORDS[event],
                                             ' (template %s)' % job['template'] if job['template'] else '')
        text = 'Job %s of %s %s at %s%s.' % (job['id'], 'template %s' % job['template'] if job['template'] else
                                             'playbook %s' % job['playbook'], WORDS[event],
                                             job['finished_at'].isoformat(),
                                             ': %s' % job['status_reason'] if job['status_reason'] else '')
        payload = {'text': text, 'link': '/api/v1/jobs/%s' % job['id'],
                   'job': {'id': job['id'], 'status': job['status'], 'template': job['template'],
                           'playbook': job['playbook'], 'reason': job['status_reason'], 'attempt': job['attempt'],
                           'finished_at': job['finished_at'].isoformat()},
                   'schedule': schedule['name'] if schedule else None}
        recorded = self.store.notifications.record(
            'job:%s:%s' % (job['id'], event), event, subject, payload, recipients, template=job['template'],
            schedule=schedule['name'] if schedule else None, job_id=job['id'], silenced_by=silenced_by,
            now=self.clock())
        return recorded is not None

    def _schedule(self, job: dict) -> dict | None:
        key = job['idempotency_key'] or ''
        if not key.startswith(SCHEDULE_KEY_PREFIX):
            return None
        try:
            return self.store.schedules.get(key[len(SCHEDULE_KEY_PREFIX):].split(':', 1)[0])
        except UnknownSchedule:
            return None

    def _silencing(self, job: dict, schedule: dict | None, template: dict | None, windows: list[Window]) -> str | None:
        """The name of a maintenance window open when the job ended that covers its hosts or schedule."""
        if schedule is None:  # the job's own hosts, as a schedule of it would name them
            tags = job['inventory'] if job['inventory_kind'] == 'tags' else (template or {}).get('tags')
            schedule = {'job': {'tags': tags}}
        block = self.windows.blocking(schedule, job['finished_at'], windows)
        return block[0].name if block else None

    def _follows_success(self, job: dict) -> bool:
        """True unless the template's job that ended before this one did not succeed."""
        previous = self.store.notifications.previous_end(job['template'], job['finished_at'], job['id'])
        return previous in (None, 'successful')
