"""Noticing events where they are already recorded: a job's end and a schedule's slot in the store.

Each pass reads the jobs that ended and the slots recorded since the watcher's cursors (kept in the
store, so a restart reads on from there; a minute of overlap for late commits and other machines'
clocks) and the events they make:

    failed        the job failed
    timed_out     its timeout or deadline killed it
    recovered     it succeeded and the template's previous job had not
    worker_lost   its worker stopped (also told to the template's `failed` subscribers)
    window_overrun  a planned job still running past its plan's window_end, or ended after it
    window_overrun_predicted  a running job's lanes will end after its window, by their hosts'
                  estimates (each lane: its running host's start + estimate, then its pending hosts')
    slot_missed   a slot of a schedule nobody ran (the scheduler was down past its misfire grace)
    cron_missed   the same, of a bridged crontab entry (whose slots crontab runs)
    cron_failed   a run of a bridged crontab entry, as its wrapper reported it, ended non-zero
    backup_anomaly  a successful backup far from the host's recent ones in size or duration (anomaly.py)
    queue_unattended  a job has waited DBFLEET_LOST_AFTER_SECONDS in a queue no live worker listens
                  to (once per such wait: its key names the queue and that job)
    slot_skipped  a slot skipped: a maintenance window, an overlap policy, a failed launch
    awaiting_approval  a job of a template that requires approval waits for an admin's (once a job)
    backup_untested  a host's backups have had no successful restore drill for DBFLEET_UNTESTED_BACKUP_DAYS
                  (counted from its first backup when never drilled): once until a drill succeeds again

Each event goes to the notifiers the job's template and schedule (a slot's schedule and its
template) name for it (`notify`) and to those that take it for everything (a notifier's `events`). It is stored
once (key `job:ID:EVENT`, `slot:SCHEDULE:TIME:EVENT`), with one delivery per notifier, before
anything is sent; a maintenance window open at that time that covers the job's hosts or the
schedule silences it: stored all the same, marked with the window's name, nothing sent. A slot
skipped by a window is not silenced by it: the skip is the news.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Callable

from dbfleet.clock import utcnow
from dbfleet.store import UnknownSchedule
from runner_service.job_queue import dbfleet_workers, listeners
from runner_service.jobs.service import SCHEDULE_KEY_PREFIX
from runner_service.notify.anomaly import HISTORY, anomalies
from runner_service.runtime import Runtime
from runner_service.schedules.windows import Window, WindowService

CURSOR = 'job-ends'
SLOT_CURSOR = 'slots'
CRON_CURSOR = 'cron-failures'
BACKUP_CURSOR = 'backups'
OVERLAP = dt.timedelta(seconds=60)
FIRST_LOOK_BACK = dt.timedelta(minutes=10)  # the first pass ever: jobs that ended this recently
BATCH = 2000
BATCH_APPROVALS = 200  # jobs awaiting approval read a pass (each told once)
EVENT_OF_STATUS = {'failed': 'failed', 'timed_out': 'timed_out', 'worker_lost': 'worker_lost'}
WORDS = {'failed': 'failed', 'timed_out': 'timed out', 'worker_lost': 'lost its worker',
         'recovered': 'succeeded after a failure'}
SLOT_WORDS = {'slot_missed': 'missed', 'cron_missed': 'missed', 'slot_skipped': 'skipped'}


class Watcher:
    def __init__(self, runtime: Runtime, clock: Callable[[], dt.datetime] = utcnow):
        self.runtime = runtime
        self.store = runtime.store
        self.clock = clock
        self.windows = WindowService(runtime)

    def pass_once(self) -> int:
        """Store the notifications of the jobs that ended and the slots recorded since the last
        pass; how many were new."""
        notifications = self.store.notifications
        first = self.clock() - FIRST_LOOK_BACK
        jobs = notifications.ended_jobs((notifications.cursor(CURSOR) or first) - OVERLAP, limit=BATCH)
        slots = notifications.unfired_slots((notifications.cursor(SLOT_CURSOR) or first) - OVERLAP, limit=BATCH)
        runs = notifications.failed_cron_runs((notifications.cursor(CRON_CURSOR) or first) - OVERLAP, limit=BATCH)
        backups = notifications.recorded_backups((notifications.cursor(BACKUP_CURSOR) or first) - OVERLAP, limit=BATCH)
        notifiers = notifications.notifiers()
        stored = self._notice_queues(notifiers)
        stored += self._notice_approvals(notifiers)
        stored += self._notice_untested(notifiers)
        running = [job for job in notifications.running_planned() if (job.get('plan') or {}).get('window_end')]
        jobs = jobs + running
        if not jobs and not slots and not runs and not backups:
            return stored
        windows = self.windows.windows()
        templates: dict[str, dict] = {}
        stored += sum(self._notice(job, notifiers, windows, templates) for job in jobs)
        stored += sum(self._notice_slot(slot, notifiers, windows, templates) for slot in slots)
        stored += sum(self._notice_cron_failure(run, notifiers, windows) for run in runs)
        if backups and any('backup_anomaly' in notifier['events'] for notifier in notifiers):
            stored += sum(self._notice_backup(backup, notifiers, windows) for backup in backups)
        ended = [job['finished_at'] for job in jobs if job['finished_at'] is not None]
        if ended:
            notifications.move_cursor(CURSOR, max(ended))
        if slots:
            notifications.move_cursor(SLOT_CURSOR, slots[-1]['recorded_at'])
        if runs:
            notifications.move_cursor(CRON_CURSOR, runs[-1]['finished_at'])
        if backups:
            notifications.move_cursor(BACKUP_CURSOR, backups[-1]['created_at'])
        return stored

    def _template(self, name: str | None, templates: dict[str, dict]) -> dict | None:
        """A template's definition, read once a pass ({} when it was deleted since)."""
        if not name:
            return None
        if name not in templates:
            try:
                templates[name] = self.store.templates.get(name)['definition']
            except LookupError:
                templates[name] = {}
        return templates[name]

    def _notice_slot(self, slot: dict, notifiers: list[dict], windows: list[Window],
                     templates: dict[str, dict]) -> int:
        event = 'slot_skipped' if slot['outcome'] == 'skipped' else 'cron_missed' if slot['source_host'] \
            else 'slot_missed'
        template_name = slot['job'].get('template')
        subscribed = (self._template(template_name, templates) or {}).get('notify') or {}
        recipients = [notifier['name'] for notifier in notifiers if event in notifier['events']]
        recipients += (subscribed.get(event) or []) + ((slot['notify'] or {}).get(event) or [])
        if not recipients:
            return 0
        schedule = {'name': slot['name'], 'job': slot['job']}
        silenced_by = None
        if event != 'slot_skipped':
            block = self.windows.blocking(schedule, slot['slot_at'], windows)
            silenced_by = block[0].name if block else None
        what = 'crontab entry' if slot['source_host'] else 'schedule'
        subject = '[dbfleet] %s %s: slot %s %s' % (what, slot['name'], slot['slot_at'].isoformat(), SLOT_WORDS[event])
        text = 'The slot at %s of %s %s was %s%s.' % (slot['slot_at'].isoformat(), what, slot['name'],
                                                       SLOT_WORDS[event],
                                                       ': %s' % slot['reason'] if slot['reason'] else '')
        payload = {'text': text, 'link': '/api/v1/schedules/%s/slots' % slot['schedule_id'],
                   'schedule': slot['name'], 'template': template_name, 'host': slot['source_host'],
                   'slot': {'at': slot['slot_at'].isoformat(), 'outcome': slot['outcome'], 'reason': slot['reason']}}
        recorded = self.store.notifications.record(
            'slot:%s:%s:%s' % (slot['schedule_id'], slot['slot_at'].isoformat(), event), event, subject, payload,
            recipients, template=template_name, schedule=slot['name'], silenced_by=silenced_by, now=self.clock())
        return recorded is not None

    def _notice_queues(self, notifiers: list[dict]) -> int:
        """Queues where a job has waited too long with no worker listening (asked of Redis only
        when a notifier takes queue_unattended)."""
        recipients = [notifier['name'] for notifier in notifiers if 'queue_unattended' in notifier['events']]
        if not recipients:
            return 0
        listening = listeners(dbfleet_workers(self.runtime.redis))
        patience = dt.timedelta(seconds=self.runtime.settings.lost_after_seconds)
        stored = 0
        for queue in sorted(set(self.store.jobs.queued_by_queue()) - {q for q, n in listening.items() if n}):
            oldest = self.store.notifications.oldest_queued(queue)
            if oldest is None or oldest['created_at'] > self.clock() - patience:
                continue
            subject = '[dbfleet] queue %s: jobs wait and no worker listens to it' % queue
            text = ('Job %s has waited in queue %s since %s and no live worker listens to that queue: start one '
                    '(`dbfleet worker --queue %s`).' % (oldest['id'], queue, oldest['created_at'].isoformat(), queue))
            payload = {'text': text, 'queue': queue, 'link': '/api/v1/jobs/%s' % oldest['id'],
                       'job': {'id': oldest['id'], 'status': 'queued', 'created_at': oldest['created_at'].isoformat()}}
            stored += self.store.notifications.record(
                'queue:%s:%s' % (queue, oldest['id']), 'queue_unattended', subject, payload, recipients,
                job_id=oldest['id'], now=self.clock()) is not None
        return stored

    def _notice_approvals(self, notifiers: list[dict]) -> int:
        """Jobs waiting for an admin's approval: told once each, to the notifiers taking
        awaiting_approval and those their template names for it."""
        waiting = self.store.jobs.list(status='awaiting_approval', limit=BATCH_APPROVALS)['jobs']
        stored, templates = 0, {}
        for job in waiting:
            subscribed = (self._template(job['template'], templates) or {}).get('notify') or {}
            recipients = [notifier['name'] for notifier in notifiers if 'awaiting_approval' in notifier['events']]
            recipients += subscribed.get('awaiting_approval') or []
            if not recipients:
                continue
            expires = job['approval_expires_at'].isoformat() if job['approval_expires_at'] else None
            subject = '[dbfleet] job %s awaits approval%s' % (
                job['id'][:8], ' (template %s)' % job['template'] if job['template'] else '')
            text = ('Job %s of %s, launched by %s, awaits the approval of a second admin until %s: `dbfleet jobs '
                    'approve %s` or `dbfleet jobs reject %s --reason ...`.' % (
                        job['id'], 'template %s' % job['template'] if job['template'] else 'playbook %s'
                        % job['playbook'], job['created_by'], expires, job['id'], job['id']))
            payload = {'text': text, 'link': '/api/v1/jobs/%s' % job['id'],
                       'job': {'id': job['id'], 'status': job['status'], 'template': job['template'],
                               'playbook': job['playbook'], 'launched_by': job['created_by'],
                               'approval_expires_at': expires}}
            stored += self.store.notifications.record(
                'job:%s:awaiting_approval' % job['id'], 'awaiting_approval', subject, payload,
                sorted(set(recipients)), template=job['template'], job_id=job['id'], now=self.clock()) is not None
        return stored

    def _notice_untested(self, notifiers: list[dict]) -> int:
        """Hosts whose backups went untested too long (asked of the store only when a notifier takes
        backup_untested). One notification per host and lapse: its key holds the instant counted from."""
        recipients = [notifier['name'] for notifier in notifiers if 'backup_untested' in notifier['events']]
        if not recipients:
            return 0
        days = self.runtime.settings.untested_backup_days
        now = self.clock()
        stored = 0
        for host, state in sorted(self.store.drills.states().items()):
            since = state['untested_since']
            if since is None or now - since <= dt.timedelta(days=days):
                continue
            last = state['last']
            never = state['last_ok_at'] is None
            subject = '[dbfleet] backups of %s not restore-tested for %d days' % (host, (now - since).days)
            text = ('No successful restore drill of %s since %s%s: run one (`dbfleet backups drill --limit %s`).'
                    % (host, since.isoformat(), ' (its first backup; never drilled)' if never else '', host))
            payload = {'text': text, 'host': host, 'link': '/api/v1/backups/drills?host=%s' % host,
                       'untested_since': since.isoformat(), 'never_drilled': never,
                       'last_drill': {'id': last['id'], 'status': last['status'],
                                      'finished_at': last['finished_at'].isoformat()} if last else None}
            stored += self.store.notifications.record(
                'host:%s:backup_untested:%s' % (host_key(host), since.isoformat()), 'backup_untested', subject, payload,
                recipients, now=now) is not None
        return stored

    def _notice_backup(self, backup: dict, notifiers: list[dict], windows: list[Window]) -> int:
        history = self.store.notifications.backups_before(backup['host'], backup['method'], backup['id'], HISTORY)
        reasons = anomalies(backup, history)
        if not reasons:
            return 0
        recipients = [notifier['name'] for notifier in notifiers if 'backup_anomaly' in notifier['events']]
        subject = '[dbfleet] backup of %s looks wrong: %s' % (backup['host'], reasons[0])
        text = 'The %s backup of %s started at %s: %s.' % (backup['method'], backup['host'],
                                                           backup['started_at'].isoformat(), '; '.join(reasons))
        payload = {'text': text, 'host': backup['host'], 'reasons': reasons,
                   'backup': {'id': backup['id'], 'method': backup['method'], 'bytes': backup['bytes'],
                              'duration_seconds': backup['duration_seconds'],
                              'started_at': backup['started_at'].isoformat()},
                   'history': history}
        recorded = self.store.notifications.record(
            'backup:%s:backup_anomaly' % backup['id'], 'backup_anomaly', subject, payload, recipients,
            silenced_by=self._host_window(backup['host'], backup['started_at'], windows), now=self.clock())
        return recorded is not None

    def _host_window(self, host: str, instant: dt.datetime, windows: list[Window]) -> str | None:
        """The name of a maintenance window open at `instant` whose scope covers `host`."""
        open_now = [window for window in windows if window.active_at(instant) is not None]
        if not open_now:
            return None
        tags = next((item['tags'] for item in self.store.hosts.inventory(fact_paths=()) if item['name'] == host), [])
        return next((window.name for window in open_now if window.tags is None or window.tags.matches(tags)), None)

    def _notice_cron_failure(self, run: dict, notifiers: list[dict], windows: list[Window]) -> int:
        """A failed crontab run goes to the notifiers that take cron_failed (the output is left out:
        a command's output may hold anything)."""
        recipients = [notifier['name'] for notifier in notifiers if 'cron_failed' in notifier['events']]
        if not recipients:
            return 0
        block = self.windows.blocking({'name': run['name'], 'job': run['job']}, run['finished_at'], windows)
        subject = '[dbfleet] crontab entry %s failed on %s (exit %s)' % (run['name'], run['host'], run['exit_code'])
        text = 'The run of crontab entry %s on %s started at %s ended with exit code %s after %.1f s.' % (
            run['name'], run['host'], run['started_at'].isoformat(), run['exit_code'], run['duration_seconds'] or 0)
        payload = {'text': text, 'link': '/api/v1/cron/runs?entry=%s' % run['schedule_id'], 'schedule': run['name'],
                   'host': run['host'],
                   'run': {'id': run['id'], 'exit_code': run['exit_code'], 'started_at': run['started_at'].isoformat(),
                           'finished_at': run['finished_at'].isoformat(), 'duration_seconds': run['duration_seconds'],
                           'slot': run['slot_at'].isoformat() if run['slot_at'] else None}}
        recorded = self.store.notifications.record(
            'cron:%s:cron_failed' % run['id'], 'cron_failed', subject, payload, recipients, schedule=run['name'],
            silenced_by=block[0].name if block else None, now=self.clock())
        return recorded is not None

    def _notice(self, job: dict, notifiers: list[dict], windows: list[Window], templates: dict[str, dict]) -> int:
        """The events of a job that ended (its status's; window_overrun when it ended past its
        plan's window), or of a running one past its window (job['finished_at'] None)."""
        template = self._template(job['template'], templates)
        subscribed = (template or {}).get('notify') or {}

        def wanted(event: str) -> bool:  # by someone: else the queries that decide it are not worth making
            return bool(subscribed.get(event)) or any(event in notifier['events'] for notifier in notifiers) \
                or bool(job['idempotency_key'] and job['idempotency_key'].startswith(SCHEDULE_KEY_PREFIX))

        events = []
        if job['finished_at'] is not None:
            event = EVENT_OF_STATUS.get(job['status'])
            if event is not None:
                events.append(event)
            elif wanted('recovered') and job['template'] and not self._follows_success(job):
                events.append('recovered')  # successful: news only after a failure of the same template
        overrun = window_overrun(job, self.clock())
        if overrun is not None:
            events.append('window_overrun')
        elif job['finished_at'] is None and wanted('window_overrun_predicted'):
            predicted = predicted_finish(self.store.jobs.host_runs(job['id']), self.clock())
            overrun = window_end_of(job)
            if predicted is not None and predicted > overrun:
                events.append('window_overrun_predicted')
        return sum(self._tell(job, event, notifiers, windows, template, subscribed, overrun) for event in events)

    def _tell(self, job: dict, event: str, notifiers: list[dict], windows: list[Window], template: dict | None,
              subscribed: dict, overrun: dt.datetime | None) -> int:
        schedule = self._schedule(job)
        recipients = [notifier['name'] for notifier in notifiers if event in notifier['events']]
        for subscriptions in (subscribed, (schedule or {}).get('notify') or {}):
            recipients += subscriptions.get('failed' if event == 'worker_lost' else event) or []
        if not recipients:
            return 0
        at = job['finished_at'] or self.clock()
        silenced_by = self._silencing(job, schedule, template, windows, at)
        if event == 'window_overrun':
            words = 'overran its window (it should have been over by %s)' % overrun.isoformat()
        elif event == 'window_overrun_predicted':
            words = 'will overrun its window by its estimates (it should be over by %s)' % overrun.isoformat()
        else:
            words = WORDS[event]
        subject = '[dbfleet] job %s %s%s' % (job['id'][:8], words,
                                             ' (template %s)' % job['template'] if job['template'] else '')
        text = 'Job %s of %s %s%s%s.' % (job['id'], 'template %s' % job['template'] if job['template'] else
                                         'playbook %s' % job['playbook'], words,
                                         ' at %s' % at.isoformat() if job['finished_at'] else ', and is still running',
                                         ': %s' % job['status_reason'] if job['status_reason'] else '')
        payload = {'text': text, 'link': '/api/v1/jobs/%s' % job['id'],
                   'job': {'id': job['id'], 'status': job['status'], 'template': job['template'],
                           'playbook': job['playbook'], 'reason': job['status_reason'], 'attempt': job['attempt'],
                           'finished_at': job['finished_at'].isoformat() if job['finished_at'] else None,
                           'window_end': overrun.isoformat() if overrun else None},
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

    def _silencing(self, job: dict, schedule: dict | None, template: dict | None, windows: list[Window],
                   at: dt.datetime) -> str | None:
        """The name of a maintenance window open when the job ended that covers its hosts or schedule."""
        if schedule is None:  # the job's own hosts, as a schedule of it would name them
            tags = job['inventory'] if job['inventory_kind'] == 'tags' else (template or {}).get('tags')
            schedule = {'job': {'tags': tags}}
        block = self.windows.blocking(schedule, at, windows)
        return block[0].name if block else None

    def _follows_success(self, job: dict) -> bool:
        """True unless the template's job that ended before this one did not succeed."""
        previous = self.store.notifications.previous_end(job['template'], job['finished_at'], job['id'])
        return previous in (None, 'successful')



def host_key(host: str) -> str:
    """A host's name in a notification key (at most 255 characters): a long one by its digest."""
    return host if len(host) <= 150 else 'sha256-%s' % hashlib.sha256(host.encode()).hexdigest()[:32]


def window_end_of(job: dict) -> dt.datetime | None:
    end = (job.get('plan') or {}).get('window_end')
    if not end:
        return None
    end = end if isinstance(end, dt.datetime) else dt.datetime.fromisoformat(end)
    return end if end.tzinfo is not None else end.replace(tzinfo=dt.timezone.utc)


def window_overrun(job: dict, now: dt.datetime) -> dt.datetime | None:
    """The window end of the job's plan when the job ran past it (ended after it, or still running
    at `now`); None when it has no window or kept within it."""
    end = window_end_of(job)
    return end if end is not None and (job['finished_at'] or now) > end else None


def predicted_finish(runs: list[dict], now: dt.datetime) -> dt.datetime | None:
    """When a running job's lanes end by their hosts' estimates; None without lanes or estimates."""
    lanes: dict[int, dt.datetime] = {}
    for run in sorted(runs, key=lambda run: run['status'] != 'running'):  # running hosts first: they start a lane
        if run['lane'] is None or run['estimate_seconds'] is None or run['status'] not in ('running', 'pending'):
            continue
        estimate = dt.timedelta(seconds=run['estimate_seconds'])
        if run['status'] == 'running' and run['started_at'] is not None:
            lanes[run['lane']] = max(lanes.get(run['lane'], now), run['started_at'] + estimate, now)
        else:
            lanes[run['lane']] = lanes.get(run['lane'], now) + estimate
    return max(lanes.values()) if lanes else None
