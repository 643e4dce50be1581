"""A small client of the dbfleet REST API, for the CLI. It sends the API's own request models
(runner_service.schemas) and reads the answers with its response models, so both sides agree
on names, defaults and limits; it knows nothing of the store or the queues."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from runner_service.fleet.schemas import (
    BackupOut,
    BackupPage,
    DrillLaunched,
    DrillList,
    DrillRequest,
    DrillSchedule,
    HostDeleted,
    HostPage,
    HostRecord,
    HostUpdate,
    ManualTags,
    RestoreLaunched,
    RestoreRequest,
    Profile,
    Rules,
    RulesChecked,
    TagChange,
    TagOut,
    WindowList,
)
from runner_service.notify_schemas import NotificationOut, NotifierCreate, NotifierOut
from runner_service.schemas import (
    ApprovalDecision,
    AuditPage,
    CredentialCreate,
    CredentialOut,
    CronEntryOut,
    CronHistoryItem,
    CronImport,
    CronImported,
    CronReportAnswer,
    CronRunOut,
    Event,
    EventPage,
    HostRun,
    JobCreate,
    JobOut,
    JobPage,
    PlanPreview,
    PlanPreviewRequest,
    PoolOut,
    PoolSet,
    Preview,
    Relaunch,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
    Slot,
    Stdout,
    TemplateCreate,
    TemplateLaunch,
    TemplateOut,
    TemplateUpdate,
    WindowCreate,
    WindowOut,
)

JOBS = '/api/v1/jobs'
SCHEDULES = '/api/v1/schedules'
POOLS = '/api/v1/pools'
PLANS = '/api/v1/plans'
WINDOWS = '/api/v1/windows'
CRON = '/api/v1/cron'
TEMPLATES = '/api/v1/templates'
CREDENTIALS = '/api/v1/credentials'
NOTIFIERS = '/api/v1/notifiers'
AUDIT = '/api/v1/audit'
HOSTS = '/api/v1/hosts'
TAGS = '/api/v1/tags'
RULES = '/api/v1/rules'
BACKUPS = '/api/v1/backups'
# A live stream is quiet while a task runs; after this long without a byte it is reopened.
STREAM_READ_SECONDS = 60.0
# Reopening a dropped stream: tries in a row without news, and the pause before each.
RECONNECT_TRIES = 5
RECONNECT_PAUSE_SECONDS = 1.0


class ApiError(Exception):
    """The API said no (`status` is its HTTP status) or could not be reached (`status` None);
    `detail` is one line for people."""

    def __init__(self, status: int | None, detail: str, errors: list | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


class ApiClient:
    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = 30.0):
        if base_url is None or token is None:
            from dbfleet.settings import get_settings
            settings = get_settings()
            base_url = base_url if base_url is not None else settings.api_url
            token = token if token is not None else settings.token
        self.base_url = base_url.rstrip('/')
        self.token = token or None
        headers = {'Authorization': 'Bearer %s' % self.token} if self.token else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> 'ApiClient':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- jobs ------------------------------------------------------------------------------

    def launch(self, job: JobCreate) -> dict:
        return self._call(JobOut, 'POST', JOBS, json=job.model_dump(mode='json', exclude_none=True))

    def get(self, job_id: str) -> dict:
        return self._call(JobOut, 'GET', '%s/%s' % (JOBS, job_id))

    def list(self, **filters) -> dict:
        """Filters as the API names them: status (a list), playbook, tag, template, created_by, created_after,
        created_before, limit, cursor; None ones are left out."""
        return self._call(JobPage, 'GET', JOBS, params=_params(filters))

    def events(self, job_id: str, after: int | None = None, host: str | None = None,
               event: str | list[str] | None = None, limit: int = 100) -> dict:
        params = _params({'after': after, 'host': host, 'event': event, 'limit': limit})
        return self._call(EventPage, 'GET', '%s/%s/events' % (JOBS, job_id), params=params)

    def follow(self, job_id: str, after: int | None = None, host: str | None = None) -> Iterator[tuple[str, dict]]:
        """The job's live events as (name, event) pairs, each event as the API's Event; last
        ('end', {status, status_reason}) once the job has ended. A dropped stream is reopened
        where it stopped (Last-Event-ID); one the API ended because the token was revoked or
        expired meanwhile raises ApiError 401."""
        last = after
        failures = 0
        while True:
            headers = {'Accept': 'text/event-stream'}
            if last is not None:
                headers['Last-Event-ID'] = str(last)
            opened = False
            try:
                with self.http.stream('GET', '%s/%s/events' % (JOBS, job_id), params=_params({'host': host}),
                                      headers=headers, timeout=httpx.Timeout(30.0, read=STREAM_READ_SECONDS)) as answer:
                    if answer.status_code >= 400:
                        answer.read()
                        raise self._error(answer)
                    opened = True
                    for name, data in _server_sent_events(answer.iter_lines()):
                        failures = 0
                        if name == 'end':
                            yield name, _parse(dict, data, answer.status_code)
                            return
                        if name == 'unauthorized':
                            why = _parse(dict, data, answer.status_code)
                            raise ApiError(401, str(why.get('detail') or 'the bearer token was refused')[:300])
                        event = _parse(Event, data, answer.status_code)
                        last = event['seq']
                        yield name, event
            except httpx.TransportError as exc:
                if opened and isinstance(exc, httpx.ReadTimeout):  # a long quiet task: reopen at once
                    continue
                failures += 1
                if failures > RECONNECT_TRIES:
                    raise self._unreachable(exc) from None
            else:  # the stream closed without its end event
                failures += 1
                if failures > RECONNECT_TRIES:
                    raise ApiError(None, 'the API at %s keeps closing the event stream of job %s'
                                   % (self.base_url, job_id))
            time.sleep(RECONNECT_PAUSE_SECONDS * failures)

    def stdout(self, job_id: str) -> dict:
        """{job_id, status, complete, stdout}: the output as ansible printed it so far."""
        return self._call(Stdout, 'GET', '%s/%s/stdout' % (JOBS, job_id), params={'format': 'json'})

    def cancel(self, job_id: str) -> dict:
        return self._call(JobOut, 'POST', '%s/%s/cancel' % (JOBS, job_id))

    def relaunch(self, job_id: str, hosts: str = 'all') -> dict:
        body = Relaunch(hosts=hosts).model_dump(mode='json')
        return self._call(JobOut, 'POST', '%s/%s/relaunch' % (JOBS, job_id), json=body)

    def decide(self, job_id: str, approve: bool, reason: str | None = None) -> dict:
        """Approve or reject (with a reason) a job awaiting approval (admin, not its launcher)."""
        body = ApprovalDecision(reason=reason).model_dump(mode='json', exclude_none=True)
        return self._call(JobOut, 'POST', '%s/%s/%s' % (JOBS, job_id, 'approve' if approve else 'reject'), json=body)

    def runs(self, job_id: str) -> list[dict]:
        """A planned job's timeline: each host's lane or batch, status, estimate, start and end."""
        return self._call(list[HostRun], 'GET', '%s/%s/runs' % (JOBS, job_id))

    # -- schedules -------------------------------------------------------------------------

    def create_schedule(self, schedule: ScheduleCreate) -> dict:
        return self._call(ScheduleOut, 'POST', SCHEDULES, json=schedule.model_dump(mode='json', exclude_none=True))

    def schedules(self) -> list[dict]:
        return self._call(list[ScheduleOut], 'GET', SCHEDULES)

    def schedule(self, ref: str) -> dict:
        """`ref`: a schedule's id or name."""
        return self._call(ScheduleOut, 'GET', _path(SCHEDULES, ref))

    def update_schedule(self, ref: str, changes: ScheduleUpdate) -> dict:
        """Only the fields set in `changes` change."""
        body = changes.model_dump(mode='json', exclude_unset=True)
        return self._call(ScheduleOut, 'PATCH', _path(SCHEDULES, ref), json=body)

    def delete_schedule(self, ref: str) -> dict:
        return self._call(ScheduleOut, 'DELETE', _path(SCHEDULES, ref))

    def pause_schedule(self, ref: str) -> dict:
        return self._call(ScheduleOut, 'POST', _path(SCHEDULES, ref, 'pause'))

    def resume_schedule(self, ref: str) -> dict:
        return self._call(ScheduleOut, 'POST', _path(SCHEDULES, ref, 'resume'))

    def preview_schedule(self, ref: str, n: int = 10) -> dict:
        """The next `n` fire times in the schedule's zone (and those a maintenance window blocks)."""
        return self._call(Preview, 'GET', _path(SCHEDULES, ref, 'preview'), params={'n': n})

    def schedule_slots(self, ref: str, limit: int | None = None) -> list[dict]:
        """What each recent slot did, newest first."""
        return self._call(list[Slot], 'GET', _path(SCHEDULES, ref, 'slots'), params=_params({'limit': limit}))

    # -- pools and plans -------------------------------------------------------------------

    def pools(self) -> list[dict]:
        return self._call(list[PoolOut], 'GET', POOLS)

    def pool(self, name: str) -> dict:
        return self._call(PoolOut, 'GET', _path(POOLS, name))

    def set_pool(self, name: str, slots: int, description: str | None = None) -> dict:
        """Create the pool or resize it."""
        body = PoolSet(slots=slots, description=description).model_dump(mode='json', exclude_none=True)
        return self._call(PoolOut, 'PUT', _path(POOLS, name), json=body)

    def delete_pool(self, name: str) -> dict:
        return self._call(PoolOut, 'DELETE', _path(POOLS, name))

    def preview_plan(self, request: PlanPreviewRequest) -> dict:
        """Which host in which lane, estimated start and end, and whether it fits the window."""
        body = request.model_dump(mode='json', exclude_none=True)
        return self._call(PlanPreview, 'POST', '%s/preview' % PLANS, json=body)

    # -- maintenance windows ---------------------------------------------------------------

    def create_window(self, window: WindowCreate) -> dict:
        return self._call(WindowOut, 'POST', WINDOWS, json=window.model_dump(mode='json', exclude_none=True))

    def windows(self) -> list[dict]:
        """Windows with their current and next occurrences."""
        return self._call(list[WindowOut], 'GET', WINDOWS)

    def window(self, ref: str) -> dict:
        """`ref`: a window's id or name."""
        return self._call(WindowOut, 'GET', _path(WINDOWS, ref))

    def delete_window(self, ref: str) -> dict:
        return self._call(WindowOut, 'DELETE', _path(WINDOWS, ref))

    # -- the crontab bridge ------------------------------------------------------------------

    def cron_import(self, request: CronImport) -> dict:
        return self._call(CronImported, 'POST', CRON + '/import', json=request.model_dump(mode='json'))

    def cron_entries(self, host: str | None = None) -> list[dict]:
        return self._call(list[CronEntryOut], 'GET', CRON + '/entries', params=_params({'host': host}))

    def cron_mode(self, ref: str, mode: str) -> dict:
        return self._call(CronEntryOut, 'POST', _path(CRON + '/entries', ref, 'mode'), json={'mode': mode})

    def cron_history(self, ref: str, limit: int = 50) -> list[dict]:
        return self._call(list[CronHistoryItem], 'GET', _path(CRON + '/entries', ref, 'history'),
                          params={'limit': limit})

    def cron_report(self, report: dict) -> dict:
        """`report`: a CronReport as JSON (the wrapper spools reports in that form)."""
        return self._call(CronReportAnswer, 'POST', CRON + '/runs', json=report)

    def cron_runs(self, entry: str | None = None, host: str | None = None, limit: int = 50) -> list[dict]:
        return self._call(list[CronRunOut], 'GET', CRON + '/runs',
                          params=_params({'entry': entry, 'host': host, 'limit': limit}))

    # -- job templates -----------------------------------------------------------------------

    def create_credential(self, credential: CredentialCreate) -> dict:
        return self._call(CredentialOut, 'POST', CREDENTIALS, json=credential.model_dump(mode='json',
                                                                                          exclude_none=True))

    def credentials(self) -> list[dict]:
        return self._call(list[CredentialOut], 'GET', CREDENTIALS)

    def credential(self, name: str) -> dict:
        return self._call(CredentialOut, 'GET', _path(CREDENTIALS, name))

    def delete_credential(self, name: str) -> dict:
        return self._call(CredentialOut, 'DELETE', _path(CREDENTIALS, name))

    def create_notifier(self, notifier: NotifierCreate) -> dict:
        return self._call(NotifierOut, 'POST', NOTIFIERS, json=notifier.model_dump(mode='json', exclude_none=True))

    def notifiers(self) -> list[dict]:
        return self._call(list[NotifierOut], 'GET', NOTIFIERS)

    def notifier(self, name: str) -> dict:
        return self._call(NotifierOut, 'GET', _path(NOTIFIERS, name))

    def delete_notifier(self, name: str) -> dict:
        return self._call(NotifierOut, 'DELETE', _path(NOTIFIERS, name))

    def test_notifier(self, name: str) -> dict:
        return self._call(NotificationOut, 'POST', _path(NOTIFIERS, name, 'test'))

    def deliveries(self, name: str, limit: int = 100) -> list[dict]:
        return self._call(list[NotificationOut], 'GET', _path(NOTIFIERS, name, 'deliveries'), params={'limit': limit})

    def create_template(self, template: TemplateCreate) -> dict:
        return self._call(TemplateOut, 'POST', TEMPLATES, json=template.model_dump(mode='json', exclude_none=True))

    def templates(self) -> list[dict]:
        return self._call(list[TemplateOut], 'GET', TEMPLATES)

    def template(self, name: str) -> dict:
        return self._call(TemplateOut, 'GET', _path(TEMPLATES, name))

    def update_template(self, name: str, changes: TemplateUpdate) -> dict:
        """Only the fields set in `changes` change (set to None: the default is cleared)."""
        return self._call(TemplateOut, 'PATCH', _path(TEMPLATES, name),
                          json=changes.model_dump(mode='json', exclude_unset=True))

    def delete_template(self, name: str) -> dict:
        return self._call(TemplateOut, 'DELETE', _path(TEMPLATES, name))

    def launch_template(self, name: str, launch: TemplateLaunch) -> dict:
        """The job, as `launch` answers it."""
        return self._call(JobOut, 'POST', _path(TEMPLATES, name, 'launch'),
                          json=launch.model_dump(mode='json', exclude_none=True))
    # -- the audit log -----------------------------------------------------------------------

    def audit(self, **filters) -> dict:
        """{entries, next_cursor}, newest first. Filters as the API names them: actor, action,
        target, since, until, limit, cursor; None ones are left out."""
        return self._call(AuditPage, 'GET', AUDIT, params=_params(filters))

    # -- the fleet: hosts, tags, rules, backups ------------------------------------------------

    def hosts(self, **filters) -> dict:
        """{hosts, next_cursor}, by name. Filters: tags (an expression), q, limit, cursor."""
        return self._call(HostPage, 'GET', HOSTS, params=_params(filters))

    def host(self, name: str) -> dict:
        return self._call(HostRecord, 'GET', _path(HOSTS, name))

    def host_profile(self, name: str) -> dict:
        return self._call(Profile, 'GET', _path(HOSTS, name, 'profile'))

    def put_host(self, name: str, change: HostUpdate) -> dict:
        """Add the host or change it (attributes merged, None removes one)."""
        return self._call(HostRecord, 'PUT', _path(HOSTS, name), json=change.model_dump(mode='json'))

    def delete_host(self, name: str) -> dict:
        return self._call(HostDeleted, 'DELETE', _path(HOSTS, name))

    def tags(self) -> list[dict]:
        return self._call(list[TagOut], 'GET', TAGS)

    def change_tags(self, request: ManualTags, state: str) -> dict:
        """Manual tags: state 'present' adds them, 'absent' takes them off."""
        return self._call(TagChange, 'POST', '%s/%s' % (TAGS, 'add' if state == 'present' else 'remove'),
                          json=request.model_dump(mode='json', exclude_none=True))

    def rules(self) -> dict:
        return self._call(Rules, 'GET', RULES)

    def check_rules(self, text: str) -> dict:
        return self._call(RulesChecked, 'POST', RULES + '/check', json={'text': text})

    def backups(self, **filters) -> dict:
        """{backups, next_cursor}, newest first. Filters: host, method, status, since, until, limit, cursor,
        pinned, include_removed."""
        return self._call(BackupPage, 'GET', BACKUPS, params=_params(filters))

    def backup_windows(self, host: str | None = None) -> dict:
        """{windows}: each host's restorable window (of `host` alone when given)."""
        return self._call(WindowList, 'GET', BACKUPS + '/windows', params=_params(dict(host=host)))

    def backup(self, backup_id: int) -> dict:
        return self._call(BackupOut, 'GET', _path(BACKUPS, str(backup_id)))

    def keep_backup(self, backup_id: int, pinned: bool) -> dict:
        """Pin (POST) or unpin (DELETE) a backup."""
        return self._call(BackupOut, 'POST' if pinned else 'DELETE', _path(BACKUPS, str(backup_id), 'keep'))

    def drill_backups(self, request: DrillRequest) -> dict:
        """{job}: the restore drill job launched (or the one of the same idempotency key)."""
        return self._call(DrillLaunched, 'POST', BACKUPS + '/drills',
                          json=request.model_dump(mode='json', by_alias=True, exclude_none=True))

    def schedule_drills(self, request: DrillSchedule) -> dict:
        """The schedule made: the `drill` template every day in a window."""
        return self._call(ScheduleOut, 'POST', BACKUPS + '/drills/schedule',
                          json=request.model_dump(mode='json', by_alias=True, exclude_none=True))

    def drills(self, host: str | None = None, status: str | None = None, limit: int = 50) -> list[dict]:
        """Restore drills, newest first."""
        return self._call(DrillList, 'GET', BACKUPS + '/drills',
                          params=_params(dict(host=host, status=status, limit=limit)))['drills']

    def restore_backup(self, request: RestoreRequest) -> dict:
        """{job, backup}: the restore job launched and the backup it starts from."""
        return self._call(RestoreLaunched, 'POST', BACKUPS + '/restore',
                          json=request.model_dump(mode='json', by_alias=True, exclude_none=True))

    # -- plumbing --------------------------------------------------------------------------

    def _call(self, model, method: str, path: str, **kwargs):
        try:
            answer = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if answer.status_code >= 400:
            raise self._error(answer)
        try:
            body = answer.json()
        except ValueError:
            raise ApiError(answer.status_code, 'the API at %s answered %s %s with something that is not JSON'
                           % (self.base_url, method, path)) from None
        return _parse(model, body, answer.status_code)

    def _unreachable(self, exc: httpx.TransportError) -> ApiError:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ApiError(None, 'the API at %s is unreachable (%s): start it with `dbfleet up`, or set '
                                  'DBFLEET_API_URL to where it runs' % (self.base_url, _first_line(exc)))
        return ApiError(None, 'the API at %s did not answer (%s): %s' % (self.base_url, type(exc).__name__,
                                                                          _first_line(exc)))

    def _error(self, answer: httpx.Response) -> ApiError:
        try:
            body = answer.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get('detail'):
            detail, errors = str(body['detail']), body.get('errors')
        else:
            detail, errors = '%s %s' % (answer.status_code, answer.reason_phrase or 'error'), None
        if answer.status_code == 401 and not self.token:
            detail = ('no API token: set DBFLEET_TOKEN (create one with `dbfleet tokens create NAME --role '
                      'viewer|operator|admin`)')
        elif answer.status_code == 401:
            detail = '%s: check DBFLEET_TOKEN' % detail
        return ApiError(answer.status_code, _first_line(detail), errors)


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None and value != []}


def _path(base: str, ref: str, *rest: str) -> str:
    return '/'.join((base, quote(ref, safe=''), *rest))


def _parse(model, body, status: int):
    """The body, checked against the API's response model or type (list[Model]); dict: any JSON object."""
    try:
        if isinstance(body, (str, bytes)):
            body = json.loads(body)
        if model is dict:
            if not isinstance(body, dict):
                raise ValueError('not a JSON object')
            return body
        adapter = TypeAdapter(model)
        return adapter.dump_python(adapter.validate_python(body), mode='json')
    except (ValueError, ValidationError) as exc:
        raise ApiError(status, 'unexpected answer from the API (is DBFLEET_API_URL a dbfleet of this version?): '
                               '%s' % _first_line(exc)) from None


def _server_sent_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) for each block of a text/event-stream."""
    name, data = 'message', []
    for line in lines:
        if not line:
            if data:
                yield name, '\n'.join(data)
            name, data = 'message', []
            continue
        if line.startswith(':'):
            continue
        field, _, value = line.partition(':')
        value = value[1:] if value.startswith(' ') else value
        if field == 'event':
            name = value
        elif field == 'data':
            data.append(value)


def _first_line(value) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
