"""The API's request and response bodies. The CLI client builds its requests from the same
classes, so both sides agree on names, defaults and limits."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from dbfleet.durations import TimeSpecError, parse_duration
from runner_service.extra_vars import check_extra_vars
from runner_service.host_patterns import check_host_pattern

# Times a request may give: far enough from the ends of datetime's range that converting to UTC
# and adding a schedule's intervals, graces or deadlines never overflows (0001-01-01T00:00:00+14:00
# has no UTC equivalent at all).
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.timezone.utc)


def _in_range(value: dt.datetime) -> dt.datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    try:
        in_range = EARLIEST <= aware.astimezone(dt.timezone.utc) <= LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError('a time between %s and %s (UTC), not %s' % (EARLIEST.date(), LATEST.date(),
                                                                        value.isoformat()[:40]))
    return value


def _written_as_time(value):
    """pydantic would read a number (or a string of digits) as seconds since 1970: the schema says
    an ISO 8601 time, so that is what is accepted."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip('+-').replace(
            '.', '', 1).isdigit()):
        raise ValueError('an ISO 8601 time such as 2026-11-27T03:00:00Z, not a number')
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_written_as_time), AfterValidator(_in_range)]
# In query strings a time without a zone is taken as UTC.
QueryInstant = Annotated[dt.datetime, BeforeValidator(_written_as_time), AfterValidator(_in_range)]
# Ansible's --limit: host names, groups, wildcards, `a:!b`, never `@file` (runner_service.host_patterns).
HostPattern = Annotated[str, StringConstraints(min_length=1, max_length=10000), AfterValidator(check_host_pattern)]
# A host name also serves as a limit (the crontab bridge's takeover jobs).
HostName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r'^\S+$'),
                     AfterValidator(check_host_pattern)]
JobStatus = Literal['queued', 'waiting', 'running', 'successful', 'failed', 'canceled', 'timed_out',
                    'dependency_failed', 'worker_lost', 'awaiting_approval', 'rejected', 'expired']
Role = Literal['viewer', 'operator', 'admin', 'agent']
TemplateName = Annotated[str, StringConstraints(min_length=1, max_length=255,
                                                pattern=r'^[A-Za-z0-9][A-Za-z0-9_.:@-]*$')]
# What a template subscribes notifiers to (runner_service.notify): for each event of its jobs, their names.
TemplateEvent = Literal['failed', 'recovered', 'timed_out', 'window_overrun', 'window_overrun_predicted',
                        'slot_missed', 'slot_skipped', 'awaiting_approval']
TemplateSubscriptions = dict[TemplateEvent, Annotated[list[TemplateName], Field(max_length=20)]]


class Dependency(BaseModel):
    model_config = ConfigDict(extra='forbid', populate_by_name=True)

    job_id: str = Field(min_length=1, max_length=32, description='a job id the API returned')
    on: Literal['success', 'failure', 'always'] = Field(
        default='success', description='run when that job succeeded, failed (or timed out, was lost, or its own '
                                       'dependencies failed), or ended in any way')


class BatchPlan(BaseModel):
    """How the job's hosts are split (runner_service.jobs.planner). Without a plan, one ansible-playbook
    run over all hosts, as Ansible itself would."""

    model_config = ConfigDict(extra='forbid')

    lanes: StrictInt | None = Field(default=None, ge=1, le=200, description='split the hosts into this many lanes, '
                              'balanced by estimated duration; each lane runs its hosts one after another')
    rolling: list[StrictInt | str] | None = Field(default=None, min_length=1, max_length=50, description='batches in '
                                            'order, e.g. [1, 5, "20%"], the last size repeating (Ansible serial)')
    max_fail_percentage: StrictInt | None = Field(default=None, ge=0, le=100, description='rolling: stop when a batch '
                                            'fails more than this (default: only when all of it failed)')
    pool: str | None = Field(default=None, pattern=r'^[a-z0-9][a-z0-9_-]{0,63}$', description='each host run '
                             'holds a slot of this pool, shared with every other job')
    window_end: Instant | None = Field(default=None, description='when the run should be over: the '
                                             'preview and the job warn when the estimate overruns it')

    @model_validator(mode='after')
    def _one_split(self):
        if self.lanes is not None and self.rolling is not None:
            raise ValueError('a plan has lanes or rolling batches, not both')
        if self.max_fail_percentage is not None and self.rolling is None:
            raise ValueError('max_fail_percentage goes with rolling batches')
        for size in self.rolling or ():
            if isinstance(size, str):
                text = size.strip()
                if not (text.endswith('%') and text[:-1].replace('.', '', 1).isdigit()
                        and 0 < float(text[:-1]) <= 100):
                    raise ValueError('rolling: %r is neither a number of hosts nor a percentage like "20%%"' % size)
            elif size < 1:
                raise ValueError('rolling: batch sizes are at least 1, got %r' % size)
        return self


class JobTemplate(BaseModel):
    """What to run. Give `inventory` (a file under the project) or `tags` (a tag expression over
    the store, such as `large and not maintenance`), not both."""

    model_config = ConfigDict(extra='forbid')

    playbook: str = Field(min_length=1, max_length=512, description='a playbook under DBFLEET_PROJECT_DIR, '
                                                                     'e.g. playbooks/inspect.yml')
    inventory: str | None = Field(default=None, min_length=1, max_length=512,
                                  description='an inventory file or directory under the project')
    tags: str | None = Field(default=None, min_length=1, max_length=2000,
                             description='a tag expression: the hosts of the store that match it')
    limit: HostPattern | None = Field(default=None, description="ansible's --limit: a host pattern (@file is "
                                    'refused)')
    extra_vars: dict[str, Any] = Field(default_factory=dict, description='variables for the play; values of '
                                       'names that look secret (password, token, key...) are masked in the store')
    check: StrictBool = Field(default=False, description='--check: report what would change')
    diff: StrictBool = Field(default=False, description='--diff')
    forks: StrictInt | None = Field(default=None, ge=1, le=500)
    timeout: StrictInt | None = Field(default=None, ge=1, le=7 * 86400, description='seconds the run may take')
    queue: str = Field(default='default', pattern=r'^[a-z0-9][a-z0-9_-]{0,31}$',
                       description='the RQ queue (workers listen to the queues they are told)')
    priority: StrictInt = Field(default=0, ge=-100, le=100, description='above 0 goes to the front of its queue')
    max_retries: StrictInt = Field(default=0, ge=0, le=10, description='retries after the worker was lost')
    retry_backoff: StrictInt = Field(default=10, ge=0, le=3600, description='seconds before such a retry')
    plan: BatchPlan | None = Field(default=None, description='lanes, rolling batches, a pool')

    @field_validator('extra_vars')
    @classmethod
    def _plain_data(cls, value: dict) -> dict:
        # Bare jobs are admins' (they may set ansible_* connection variables); template launches
        # check again with allow_connection_vars=False.
        return check_extra_vars(value, allow_connection_vars=True)

    @model_validator(mode='after')
    def _one_inventory(self):
        if (self.inventory is None) == (self.tags is None):
            raise ValueError('give inventory (a file under the project) or tags (a tag expression), exactly one')
        return self


class JobCreate(JobTemplate):
    deadline: Instant | None = Field(default=None, description='the run is killed at this time '
                                           '(with a time zone, e.g. 2026-11-27T03:00:00Z)')
    depends_on: list[Dependency] = Field(default_factory=list, max_length=100)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255,
                                        description='the same key gives back the same job instead of a new one')


class HostCounts(BaseModel):
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


class Timings(BaseModel):
    queued_seconds: float | None = None
    run_seconds: float | None = None


class JobApproval(BaseModel):
    timeout_seconds: int
    expires_at: dt.datetime | None = Field(default=None, description='it ends expired unless approved by then')
    decided_by: str | None = Field(default=None, description='the admin who approved or rejected it')
    decided_at: dt.datetime | None = None


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra='forbid')

    reason: str | None = Field(default=None, min_length=1, max_length=2000, description='why (required to reject)')


class JobOut(BaseModel):
    id: str
    status: JobStatus
    status_reason: str | None = None
    playbook: str
    inventory: str | None = None
    tags: str | None = None
    limit: str | None = None
    extra_vars: dict[str, Any]
    check: bool
    diff: bool
    forks: int | None = None
    timeout: int | None = None
    deadline: dt.datetime | None = None
    depends_on: list[Dependency]
    queue: str
    priority: int
    max_retries: int
    retry_backoff: int
    attempt: int
    created_at: dt.datetime
    enqueued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    timings: Timings
    worker: str | None = None
    return_code: int | None = None
    created_by: str | None = None
    relaunch_of: str | None = None
    template: str | None = Field(default=None, description='the job template that launched it; none: a bare '
                                                            'playbook')
    credentials: list[str] = Field(default_factory=list, description="the names of the credentials its run gets "
                                   "(its template's at launch)")
    plan: BatchPlan | None = None
    project_revision: str | None = Field(default=None, description='the git commit the job (its latest attempt) '
                                         'ran from, with DBFLEET_PROJECT_URL; null: not fetched (yet), or a local '
                                         'project directory')
    cancel_requested: bool
    approval: JobApproval | None = Field(default=None, description='a job of a template that requires approval: '
                                         'until when it waits, who approved or rejected it')
    waiting_for_worker: bool | None = Field(
        default=None, description='queued on a queue no live worker listens to: it will not start until one does '
                                  '(/healthz names such queues); null when Redis cannot say')
    hosts: dict[str, HostCounts] = Field(description='per-host recap once the play has ended')
    links: dict[str, str]


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(description='pass as cursor for the next page; null on the last')


class Event(BaseModel):
    seq: int
    uuid: str | None = None
    event: str
    host: str | None = None
    task: str | None = None
    play: str | None = None
    changed: bool | None = None
    failed: bool | None = None
    created: dt.datetime
    stdout: str
    data: dict[str, Any]


class EventPage(BaseModel):
    events: list[Event]
    next_cursor: int | None = Field(description='pass as `after` for the next page; null when there is no more '
                                                '(yet, while the job runs)')


class Stdout(BaseModel):
    job_id: str
    status: JobStatus
    complete: bool = Field(description='the job has ended: no more output will come')
    stdout: str


class Relaunch(BaseModel):
    model_config = ConfigDict(extra='forbid')

    hosts: Literal['all', 'failed'] = Field(default='all', description='failed: only the hosts that failed or '
                                                                       'were unreachable')


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    name: str = Field(min_length=1, max_length=255, pattern=r'^\S+$')
    role: Role = Field(description='viewer < operator < admin; agent: one bridged host\'s token, which may only '
                                   'report that host\'s cron runs and read its crontab entries')
    templates: list[TemplateName] | None = Field(default=None, min_length=1, max_length=100, description='the only '
                                                 'job templates this token may launch (no bare playbooks); none: '
                                                 'any its role allows')
    host: HostName | None = Field(default=None, description='an agent token\'s host (required for agent, refused '
                                                           'for the other roles)')
    expires_at: Instant | None = Field(default=None, description='when the token stops working (future)')
    expires_in: str | None = Field(default=None, max_length=32, pattern=r'^\s*\d{1,9}\s*[smhdw]\s*$',
                                   description='or: how long from now it works, e.g. 90d, 12h, 2w')

    @model_validator(mode='after')
    def _consistent(self):
        if self.role == 'agent' and self.host is None:
            raise ValueError('an agent token needs host: the bridged host it reports for')
        if self.role != 'agent' and self.host is not None:
            raise ValueError('only an agent token names a host (role %s does not)' % self.role)
        if self.expires_at is not None and self.expires_in is not None:
            raise ValueError('give expires_at or expires_in, not both')
        return self


class TokenOut(BaseModel):
    name: str
    role: Role
    templates: list[str] | None = None
    created_at: dt.datetime
    created_by: str | None = None
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    host: str | None = Field(default=None, description='an agent token\'s host')
    expires_at: dt.datetime | None = Field(default=None, description='when it stops working; null: never')
    expired: bool = False


class TokenCreated(TokenOut):
    token: str = Field(description='shown once: keep it, dbfleet stores only its hash')


class AuditEntryOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str = Field(description='the token name (or cli:USER) that did it')
    action: str = Field(description='e.g. launch, relaunch, cancel, schedule.update, token.create, cron.takeover')
    target: str = Field(description='a job id, or the name of a schedule, window, pool, token or crontab entry')
    detail: Any = None


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: int | None = Field(default=None, description='pass as cursor for the next (older) page')


class Problem(BaseModel):
    """Every 4xx and 5xx body."""

    detail: str = Field(description='what was wrong, and what to do')
    errors: list[dict[str, Any]] | None = Field(default=None, description='each invalid field, for 422')


class Health(BaseModel):
    status: Literal['ok', 'degraded', 'failing']
    reasons: list[str] = Field(default_factory=list, description='why the status is not ok, one line per cause')
    store: dict[str, Any]
    redis: dict[str, Any]
    workers: dict[str, Any] = Field(description='ok, count, busy, queues, per_queue: {queue: workers}')
    scheduler: dict[str, Any] = Field(description='ok, alive (cron loops passing), last_tick (the latest pass)')
    queues: dict[str, Any] = Field(description='waiting: {queue: queued jobs}; unattended: queues with waiting '
                                               'jobs and no worker')


ScheduleKind = Literal['cron', 'interval', 'once']


class ScheduleDependency(BaseModel):
    model_config = ConfigDict(extra='forbid')

    schedule: str = Field(min_length=1, max_length=255, description='another schedule, by id or name')
    on: Literal['success', 'failure', 'always'] = Field(default='success', description='run when that schedule\'s '
                                                        'latest run succeeded, failed, or ended in any way')


HH_MM = r'^([01][0-9]|2[0-3]):[0-5][0-9]$'
WINDOW_END_AFTER = ('no host of a run starts later than this many seconds after its slot (those running then '
                    'finish; a deadline kills them instead); the run needs a plan (lanes or rolling)')
WINDOW_END_AT = ('no host of a run starts after this time of day (HH:MM in the schedule\'s time zone, the next one '
                 'after its slot); the run needs a plan (lanes or rolling)')


class SchedulePolicies(BaseModel):
    model_config = ConfigDict(extra='forbid')

    overlap: Literal['allow', 'forbid', 'replace'] = Field(
        default='forbid', description='a slot while the last run is still going: run anyway, skip the slot, or '
                                      'cancel the last run and start')
    misfire_grace_seconds: StrictInt = Field(default=60, ge=0, le=7 * 86400, description='a slot later than this (the '
                                       'scheduler was down) is missed')
    catch_up: Literal['skip', 'once'] = Field(default='once', description='after missed slots: run once for the '
                                              'latest of them, or wait for the next slot')
    jitter_seconds: StrictInt = Field(default=0, ge=0, le=86400, description='delay each slot by up to this, the same '
                                'for every scheduler (spreads load)')
    deadline_after: StrictInt | None = Field(default=None, ge=1, le=7 * 86400, description='each run is killed '
                                             'this many seconds after its slot')
    window_policy: Literal['skip', 'defer'] = Field(
        default='skip', description='a slot inside a maintenance window: skip it, or run once when the window ends '
                                    '(however many slots it covered)')
    after: list[ScheduleDependency] = Field(default_factory=list, max_length=20, description='each run waits for '
                                            'the latest run of these schedules (as a job\'s depends_on does)')
    notify: TemplateSubscriptions | None = Field(default=None, description='notifiers told of its slots\' and its '
                                                 'jobs\' events: {"slot_missed": [NAME...], "failed": [...], ...}')
    window_end_after: StrictInt | None = Field(default=None, ge=1, le=7 * 86400, description=WINDOW_END_AFTER)
    window_end_at: str | None = Field(default=None, pattern=HH_MM, description=WINDOW_END_AT)

    @model_validator(mode='after')
    def _one_window_end(self):
        if self.window_end_after is not None and self.window_end_at is not None:
            raise ValueError('give window_end_after or window_end_at, not both')
        return self


class ScheduleCreate(SchedulePolicies):
    name: str = Field(min_length=1, max_length=255, pattern=r'^[A-Za-z0-9][A-Za-z0-9_.:@-]*$')
    kind: ScheduleKind = Field(description='cron: 5 fields, or 6 with seconds first, or @daily...; interval: '
                                           '90s / 15m / 2h / 1d; once: an ISO time')
    expression: str = Field(min_length=1, max_length=255)
    timezone: str = Field(default='UTC', min_length=1, max_length=64, description='IANA time zone of the expression')
    start_at: Instant | None = Field(default=None, description='interval: the first fire (default now)')
    paused: StrictBool = False
    job: JobTemplate | None = Field(default=None, description='a bare playbook run (admins only); or give template')
    template: TemplateName | None = Field(default=None, description='a job template to launch at each slot, with '
                                          'extra_vars for its survey and a limit within its hosts')
    extra_vars: dict[str, Any] | None = Field(default=None, description='with template: values for its survey')
    limit: HostPattern | None = Field(default=None, description='with template: narrows its hosts, where it allows '
                                      'a limit')

    @model_validator(mode='after')
    def _job_or_template(self):
        _one_target(self.job, self.template, self.extra_vars, self.limit)
        return self


def _one_target(job, template, extra_vars, limit) -> None:
    if (job is None) == (template is None):
        raise ValueError('give job (a playbook run) or template (a job template), exactly one')
    if template is None and (extra_vars is not None or limit is not None):
        raise ValueError('extra_vars and limit go with template; a job carries its own')


def _omittable(schema: dict) -> None:
    """A field one leaves out to keep what is there: no default (null) shown, null not accepted."""
    schema.pop('default', None)


def optional_not_null(**constraints):
    """A ScheduleUpdate field without a null: leaving it out keeps the value, null would erase a
    value the schedule cannot do without (422 instead)."""
    return Field(default=None, json_schema_extra=_omittable, **constraints)


class ScheduleUpdate(BaseModel):
    """Only the fields given change; a new trigger recomputes the next fire from now. Only
    deadline_after and start_at may be null (no deadline, start now)."""

    model_config = ConfigDict(extra='forbid')

    name: str = optional_not_null(min_length=1, max_length=255, pattern=r'^[A-Za-z0-9][A-Za-z0-9_.:@-]*$')
    kind: ScheduleKind = optional_not_null()
    expression: str = optional_not_null(min_length=1, max_length=255)
    timezone: str = optional_not_null(min_length=1, max_length=64)
    start_at: Instant | None = None
    overlap: Literal['allow', 'forbid', 'replace'] = optional_not_null()
    misfire_grace_seconds: StrictInt = optional_not_null(ge=0, le=7 * 86400)
    catch_up: Literal['skip', 'once'] = optional_not_null()
    jitter_seconds: StrictInt = optional_not_null(ge=0, le=86400)
    deadline_after: StrictInt | None = Field(default=None, ge=1, le=7 * 86400)
    window_policy: Literal['skip', 'defer'] = optional_not_null()
    after: list[ScheduleDependency] = optional_not_null(max_length=20)
    job: JobTemplate = optional_not_null(description='run this playbook instead (admins only)')
    template: TemplateName = optional_not_null(description='launch this job template instead')
    extra_vars: dict[str, Any] | None = Field(default=None, description='values for the template\'s survey '
                                              '(replace the current ones)')
    limit: HostPattern | None = Field(default=None, description='narrows the template\'s hosts')
    notify: TemplateSubscriptions | None = Field(default=None, description='replaces who hears of its events (null: '
                                                 'nobody)')
    window_end_after: StrictInt | None = Field(default=None, ge=1, le=7 * 86400, description=WINDOW_END_AFTER +
                                               ' (null: none)')
    window_end_at: str | None = Field(default=None, pattern=HH_MM, description=WINDOW_END_AT + ' (null: none)')

    @model_validator(mode='after')
    def _not_both(self):
        if self.job is not None and self.template is not None:
            raise ValueError('give job or template, not both')
        if self.job is not None and (self.extra_vars is not None or self.limit is not None):
            raise ValueError('extra_vars and limit go with template; a job carries its own')
        return self


class ScheduleOut(BaseModel):
    id: str
    name: str
    kind: ScheduleKind
    expression: str
    timezone: str
    job: dict[str, Any]
    overlap: str
    misfire_grace_seconds: int
    catch_up: str
    jitter_seconds: int
    deadline_after: int | None = None
    start_at: dt.datetime | None = Field(default=None, description='interval: its first fire, from which every '
                                                                     'later one is a whole number of intervals')
    after: list[ScheduleDependency] = Field(default_factory=list)
    window_policy: str
    window_end_after: int | None = Field(default=None, description='no host starts this long after the slot')
    window_end_at: str | None = Field(default=None, description='no host starts after this time of day')
    notify: dict[str, list[str]] | None = None
    paused: bool
    next_fire_at: dt.datetime | None = None
    last_fire_at: dt.datetime | None = None
    last_job_id: str | None = None
    source: dict[str, Any] | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    created_by: str | None = None
    links: dict[str, str]


class BlockedTime(BaseModel):
    time: dt.datetime = Field(description='a fire time of `times` inside a maintenance window')
    window: str
    action: Literal['skip', 'defer'] = Field(description="the schedule's window_policy")
    until: dt.datetime = Field(description='the window ends: with defer, the one run for its slots starts then')


class Preview(BaseModel):
    schedule: str
    timezone: str
    times: list[dt.datetime] = Field(description='next fire times, in the schedule\'s time zone')
    blocked: list[BlockedTime] = Field(default_factory=list, description='those of `times` inside a maintenance '
                                       'window, and what the schedule does about it')


class WindowCreate(BaseModel):
    """A maintenance window: a blackout period for the schedules in its scope."""

    model_config = ConfigDict(extra='forbid')

    name: str = Field(min_length=1, max_length=255, pattern=r'^[A-Za-z0-9][A-Za-z0-9_.:@-]*$')
    kind: Literal['recurring', 'absolute'] = Field(description='recurring: starts at each fire of a cron '
                                                               'expression; absolute: once')
    start: str = Field(min_length=1, max_length=255, description='recurring: a cron expression (5 fields, 6 with '
                       'seconds first, @weekly...); absolute: an ISO time (naive means in `timezone`)')
    duration_seconds: StrictInt = Field(ge=1, le=31 * 86400, description='how long each occurrence lasts (real time)')
    timezone: str = Field(default='UTC', min_length=1, max_length=64, description='IANA time zone of `start`')
    tags: str | None = Field(default=None, min_length=1, max_length=2000, description='a tag expression: only '
                             'schedules whose job targets tags with a host matching it too; none: every schedule')
    description: str | None = Field(default=None, max_length=2000)


class Occurrence(BaseModel):
    start: dt.datetime
    end: dt.datetime


class WindowOut(BaseModel):
    id: str
    name: str
    kind: Literal['recurring', 'absolute']
    start: str
    duration_seconds: int
    timezone: str
    tags: str | None = None
    description: str | None = None
    created_at: dt.datetime
    created_by: str | None = None
    occurrences: list[Occurrence] = Field(description='the one going on and the next ones, in the window\'s time '
                                                      'zone')
    links: dict[str, str]


class Slot(BaseModel):
    slot_at: dt.datetime
    outcome: Literal['fired', 'skipped', 'missed']
    claimed_by: Literal['platform', 'crontab'] | None = Field(
        default=None, description='who took the slot: platform (the scheduler fired or skipped it), crontab '
                                  '(crontab ran it); none when it was missed')
    job_id: str | None = None
    reason: str | None = None
    recorded_at: dt.datetime


class PlanPreviewRequest(BaseModel):
    """The hosts: a list, a tag expression over the store, a playbook with its inventory (and
    limit), a template, or a schedule (its template's or its job's hosts, lanes and window end)."""

    model_config = ConfigDict(extra='forbid')

    hosts: list[HostName] | None = Field(default=None, min_length=1, max_length=100000)
    tags: str | None = Field(default=None, min_length=1, max_length=2000)
    playbook: str | None = Field(default=None, min_length=1, max_length=512)
    inventory: str | None = Field(default=None, min_length=1, max_length=512)
    limit: HostPattern | None = None
    template: TemplateName | None = Field(default=None, description='a job template: its hosts and plan')
    schedule: str | None = Field(default=None, min_length=1, max_length=255, description='a schedule, by id or '
                                 'name: its job\'s (or template\'s) hosts and plan, starting at its next fire')
    lanes: StrictInt | None = Field(default=None, ge=1, le=200, description='required unless the template or '
                                    'schedule has lanes')
    start: Instant | None = Field(default=None, description='default: now (a schedule: its next fire)')
    window_end: Instant | None = None

    @model_validator(mode='after')
    def _one_source(self):
        given = [name for name in ('hosts', 'tags', 'playbook', 'template', 'schedule')
                 if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError('give hosts, tags, playbook with inventory, template or schedule: exactly one')
        if self.playbook is not None and self.inventory is None:
            raise ValueError('a playbook needs its inventory')
        if self.playbook is None and (self.inventory is not None or self.limit is not None):
            raise ValueError('inventory and limit go with a playbook')
        return self


class PlannedHost(BaseModel):
    host: str
    estimate_seconds: float = Field(description='overhead_seconds + the work (its backups\' durations, or size)')
    source: Literal['history', 'size', 'default'] = Field(description='where the work estimate came from')
    overhead_seconds: float = Field(default=0.0, description='start-up cost of its run: its recent runs\' wall '
                                    'time minus their backups\' duration')
    overhead_source: Literal['host', 'fleet', 'default', 'none'] = 'none'
    start: dt.datetime
    end: dt.datetime


class PlannedLane(BaseModel):
    lane: int
    seconds: float
    hosts: list[PlannedHost]


class LaneAccuracy(BaseModel):
    lane: int
    hosts: int
    estimated_seconds: float
    actual_seconds: float
    ratio: float | None = Field(default=None, description='actual / estimated')


class RunAccuracy(BaseModel):
    job_id: str
    started_at: dt.datetime
    estimated_seconds: float = Field(description='the longest lane by the estimates made when it ran')
    actual_seconds: float = Field(description='the job\'s run time, started to finished')
    ratio: float | None = Field(default=None, description='actual / estimated: above 1 is slower than estimated')
    lanes: list[LaneAccuracy]


class PlanAccuracy(BaseModel):
    of: str = Field(description='which past runs: the template, schedule, or playbook and inventory')
    runs: list[RunAccuracy] = Field(description='the last 10 that ran in lanes, newest first')
    median_ratio: float | None = None
    lane_ratio_median: float | None = None
    lane_ratio_min: float | None = None
    lane_ratio_max: float | None = None


class PlanPreview(BaseModel):
    start: dt.datetime
    finish: dt.datetime
    lower_bound_seconds: float = Field(description='no plan can be shorter: max(longest host, total / lanes)')
    lanes: list[PlannedLane]
    window_end: dt.datetime | None = None
    fits: bool | None = Field(default=None, description='whether the predicted finish is before window_end')
    warning: str | None = None
    accuracy: PlanAccuracy | None = Field(default=None, description='how the estimates of the same template, '
                                          'schedule, or playbook and inventory held in their last 10 runs')


class PoolSet(BaseModel):
    model_config = ConfigDict(extra='forbid')

    slots: StrictInt = Field(ge=1, le=10000, description='how many host runs may hold the pool at once, fleet-wide')
    description: str | None = Field(default=None, max_length=2000)


class PoolOut(BaseModel):
    name: str
    slots: int
    description: str | None = None
    created_at: dt.datetime
    in_use: int
    holders: list[str] = Field(description='job:host of each slot taken')


class HostRun(BaseModel):
    host: str
    lane: int | None = None
    batch: int | None = None
    status: Literal['pending', 'running', 'ok', 'failed', 'not_run', 'worker_lost', 'skipped'] = Field(
        description='skipped: not started, the plan\'s window had ended')
    estimate_seconds: float | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    detail: str | None = None
    worker: str | None = Field(default=None, description='host/pid of the worker that ran it (a job\'s lanes are '
                                                         'spread over the workers of its queue)')


# -- the crontab bridge ---------------------------------------------------------------------

CronMode = Literal['observe', 'takeover', 'reverted']


class CronFile(BaseModel):
    model_config = ConfigDict(extra='forbid')

    kind: Literal['user', 'system', 'crond', 'path'] = Field(description="a user's crontab, /etc/crontab, a file "
                                                                         "in /etc/cron.d, or a file by path")
    name: str = Field(min_length=1, max_length=1024, description='the user name, or the file path')
    system: StrictBool = Field(description='its lines carry a user field (/etc/crontab, /etc/cron.d)')


class CronImport(BaseModel):
    """A crontab file as read on its host; each entry becomes a schedule in mode observe."""

    model_config = ConfigDict(extra='forbid')

    host: HostName = Field(description='the host the crontab lives on')
    file: CronFile
    text: str = Field(max_length=1_000_000, description='the file, exactly as read')
    inventory: str = Field(default='inventories/localhost.yml', min_length=1, max_length=512,
                           description='an inventory under the project that reaches the host (for takeover jobs)')
    inventory_host: HostName | None = Field(default=None, description='the host\'s name in that inventory '
                                            '(default: host)')
    timezone: str = Field(default='UTC', min_length=1, max_length=64, description="the host's time zone (cron "
                          'reads times in it unless CRON_TZ says otherwise)')
    grace_seconds: StrictInt = Field(default=60, ge=0, le=86400, description='a run not reported this long after its '
                               'slot is flagged missed')
    cron_tz: StrictBool = Field(default=True, description='the host\'s cron reads times in CRON_TZ when the file sets '
                          'it (cronie does; Debian\'s cron does not)')


class CronEntryOut(BaseModel):
    schedule_id: str
    name: str
    mode: CronMode
    host: str
    file: CronFile
    line: int
    original: str = Field(description='the crontab line, exactly as the host should have it when not wrapped')
    expression: str
    timezone: str
    paused: bool
    next_fire_at: dt.datetime | None = None
    updated_at: dt.datetime


class CronImportedEntry(BaseModel):
    line: int
    created: bool = Field(description='false: imported before, found again')
    entry: CronEntryOut


class CronLineNote(BaseModel):
    line: int
    text: str
    reason: str | None = None


class CronImported(BaseModel):
    host: str
    file: CronFile
    entries: list[CronImportedEntry]
    reboot: list[CronLineNote] = Field(description='@reboot entries: recorded here and in the audit log, '
                                                   'not scheduled')
    errors: list[CronLineNote] = Field(description='lines that did not parse, left alone')
    warnings: list[CronLineNote] = Field(default_factory=list, description='entries not imported (they never '
                                         'fire, or cron\'s day rule cannot be matched) and what cron makes of the '
                                         'file (line 0: the whole file)')


class CronModeChange(BaseModel):
    model_config = ConfigDict(extra='forbid')

    mode: CronMode


class CronReport(BaseModel):
    """What `dbfleet cron exec` reports when a run starts and when it ends."""

    model_config = ConfigDict(extra='forbid')

    id: str = Field(pattern=r'^[0-9a-f]{32}$', description='the run id the wrapper made (the same in both reports)')
    schedule_id: str = Field(min_length=1, max_length=32)
    host: HostName
    phase: Literal['start', 'end']
    fallback: StrictBool = Field(default=False, description='crontab ran a taken-over entry (platform unreachable)')
    started_at: Instant
    finished_at: Instant | None = None
    exit_code: StrictInt | None = Field(default=None, ge=-255, le=255)
    duration_seconds: StrictFloat | None = Field(default=None, ge=0, allow_inf_nan=False)
    output_tail: str | None = Field(default=None, max_length=65536)

    @model_validator(mode='after')
    def _end_has_result(self):
        if self.phase == 'end' and (self.finished_at is None or self.exit_code is None):
            raise ValueError('an end report needs finished_at and exit_code')
        return self


class CronRunOut(BaseModel):
    id: str
    schedule_id: str
    host: str
    via: Literal['observe', 'fallback']
    status: Literal['running', 'ok', 'failed', 'skipped']
    slot_at: dt.datetime | None = None
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    exit_code: int | None = None
    duration_seconds: float | None = None
    output_tail: str | None = None


class CronReportAnswer(BaseModel):
    action: Literal['run', 'skip'] = Field(description='skip: the platform runs this slot itself')
    run: CronRunOut


class CronHistoryItem(BaseModel):
    slot_at: dt.datetime
    state: Literal['ok', 'failed', 'running', 'missed', 'job', 'fired', 'skipped'] = Field(
        description='ok/failed/running: crontab ran it; missed: no report by the slot plus the grace; job: the '
                    'platform ran it (job_id)')
    claimed_by: Literal['platform', 'crontab'] | None = None
    reason: str | None = None
    job_id: str | None = None
    run: CronRunOut | None = None


# -- job templates (runner_service.templates.service, runner_service.templates.survey) --------------------------

SurveyType = Literal['string', 'password', 'integer', 'number', 'boolean', 'choice', 'multi-choice']
Choice = bool | int | float | str


class SurveyVariable(BaseModel):
    """An extra var a launch may set, and its rules (runner_service.templates.survey checks both)."""

    model_config = ConfigDict(extra='forbid')

    name: str = Field(min_length=1, max_length=100, pattern=r'^[A-Za-z_][A-Za-z0-9_]*$',
                      description='an identifier, not starting with ansible_')
    type: SurveyType
    description: str | None = Field(default=None, max_length=2000)
    required: bool = False
    default: Any = Field(default=None, description='used when a launch leaves it out (passwords have none)')
    min: int | float | None = Field(default=None, description='integer, number: the smallest value')
    max: int | float | None = Field(default=None, description='integer, number: the largest value')
    min_length: int | None = Field(default=None, ge=0, le=65536, description='string, password')
    max_length: int | None = Field(default=None, ge=0, le=65536, description='string, password (default 65536)')
    choices: list[Choice] | None = Field(default=None, min_length=1, max_length=1000,
                                         description='choice, multi-choice')
    pattern: str | None = Field(default=None, min_length=1, max_length=500, description='string, password: a '
                                'regular expression the whole value must match')


class TemplateApproval(BaseModel):
    """Its jobs wait (awaiting_approval, in no queue) until an admin other than the launcher approves."""

    model_config = ConfigDict(extra='forbid')

    required: StrictBool = False
    timeout: StrictInt | str = Field(default='4h', description='how long a job waits for approval before it ends '
                                     'expired: seconds, or 30m, 4h, 2d')

    @model_validator(mode='after')
    def _timeout(self):
        approval_seconds(self.timeout)
        return self


def approval_seconds(timeout: int | str) -> int:
    """A template's approval timeout in seconds (60 s to 30 days)."""
    if isinstance(timeout, str):
        try:
            timeout = int(parse_duration(timeout).total_seconds())
        except TimeSpecError as exc:
            raise ValueError('approval.timeout: %s' % exc) from None
    if not 60 <= timeout <= 30 * 86400:
        raise ValueError('approval.timeout must be from 60 s to 30 days, got %d s' % timeout)
    return timeout


class TemplatePlan(BatchPlan):
    """A template's batch plan: as a job's, but its window end is relative to each launch."""

    window_end_after: int | None = Field(default=None, ge=1, le=7 * 86400, description='the run should be over '
                                         'this many seconds after its launch')
    window_end_at: str | None = Field(default=None, pattern=r'^([01][0-9]|2[0-3]):[0-5][0-9]$', description='the '
                                      'run should be over by this time of day (HH:MM, in window_timezone): the '
                                      'next one after its launch')
    window_timezone: str = Field(default='UTC', min_length=1, max_length=64, description='IANA zone of '
                                 'window_end_at')

    @model_validator(mode='after')
    def _relative_window(self):
        if self.window_end is not None:
            raise ValueError('a template\'s plan cannot hold an absolute window_end: give window_end_after '
                             '(seconds after launch) or window_end_at (HH:MM in window_timezone)')
        if self.window_end_after is not None and self.window_end_at is not None:
            raise ValueError('give window_end_after or window_end_at, not both')
        return self


CredentialKind = Literal['ssh', 'mysql', 'vault', 'become', 'age_identity']
# A credential's secret text: a key or certificate is a few KiB, a password a line.
SecretText = Annotated[str, StringConstraints(min_length=1, max_length=65536)]


class CredentialCreate(BaseModel):
    """A credential: which fields a kind takes is checked by runner_service.credentials.kinds."""

    model_config = ConfigDict(extra='forbid')

    name: TemplateName
    kind: CredentialKind
    username: str | None = Field(default=None, min_length=1, max_length=128, description='ssh: the login user; '
                                 'mysql: the MySQL user')
    ssh_key: SecretText | None = Field(default=None, description='ssh: the private key (OpenSSH or PEM)')
    passphrase: SecretText | None = Field(default=None, description="ssh: the key's passphrase")
    password: SecretText | None = Field(default=None, description='mysql, vault, become: the password')
    identity: SecretText | None = Field(default=None, description='age_identity: the age private key '
                                        '(AGE-SECRET-KEY-1...) that opens encrypted backups')
    client_cert: SecretText | None = Field(default=None, description='mysql: a TLS client certificate (PEM)')
    client_key: SecretText | None = Field(default=None, description='mysql: its private key (PEM)')
    ca_cert: SecretText | None = Field(default=None, description="mysql: the CA of the server's certificate (PEM)")
    vault_id: str | None = Field(default=None, min_length=1, max_length=64, description='vault: the vault id it '
                                 'opens (--vault-id ID@...)')
    become_method: str | None = Field(default=None, min_length=1, max_length=32, description='become: sudo, su, ...')
    become_user: str | None = Field(default=None, min_length=1, max_length=128, description='become: the user to '
                                    'become')


class CredentialOut(BaseModel):
    """What the API shows of a credential: never a secret."""

    name: str
    kind: CredentialKind
    username: str | None = None
    vault_id: str | None = None
    become_method: str | None = None
    become_user: str | None = None
    fingerprint: str = Field(description="ssh: the key's SHA256 fingerprint as ssh-keygen -l prints it; age_identity: "
                             'its public key (age1..., the recipient to encrypt backups to); others: a keyed hash '
                             'that changes when the secret does')
    created_at: dt.datetime
    created_by: str | None = None
    links: dict[str, str]


class TemplateFields(BaseModel):
    """What a template runs and the defaults of its launches. Every field may be changed by PATCH."""

    model_config = ConfigDict(extra='forbid')

    description: str | None = Field(default=None, max_length=2000)
    playbook: str | None = Field(default=None, min_length=1, max_length=512, description='a playbook under '
                                 'DBFLEET_PROJECT_DIR, or dbfleet.mysql.NAME')
    inventory: str | None = Field(default=None, min_length=1, max_length=512,
                                  description='an inventory file or directory under the project')
    tags: str | None = Field(default=None, min_length=1, max_length=2000,
                             description='a tag expression: the hosts of the store that match it')
    limit: str | None = Field(default=None, min_length=1, max_length=10000, description="ansible's --limit: every "
                              "launch runs within these hosts")
    allow_limit: bool | None = Field(default=None, description='a launch may narrow the hosts with its own limit '
                                     '(default false)')
    check: bool | None = None
    diff: bool | None = None
    forks: int | None = Field(default=None, ge=1, le=500)
    timeout: int | None = Field(default=None, ge=1, le=7 * 86400, description='seconds the run may take')
    deadline_after: int | None = Field(default=None, ge=1, le=7 * 86400, description='the run is killed this many '
                                       'seconds after its launch')
    queue: str | None = Field(default=None, pattern=r'^[a-z0-9][a-z0-9_-]{0,31}$')
    priority: int | None = Field(default=None, ge=-100, le=100)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    retry_backoff: int | None = Field(default=None, ge=0, le=3600)
    plan: TemplatePlan | None = None
    survey: list[SurveyVariable] | None = Field(default=None, max_length=200, description='the extra vars a '
                                                'launch may set; nothing else can be set')
    credentials: list[TemplateName] | None = Field(default=None, max_length=4, description='the credentials its '
                                                   'runs get, by name: at most one of each kind')
    notify: TemplateSubscriptions | None = Field(default=None, description='notifiers told of its jobs\' events: '
                                                 '{"failed": [NAME...], "recovered": [...], "timed_out": [...]}')
    approval: TemplateApproval | None = Field(default=None, description='{"required": true, "timeout": "4h"}: each '
                                              'job waits awaiting_approval until a second admin approves it')


class TemplateCreate(TemplateFields):
    name: TemplateName
    playbook: str = Field(min_length=1, max_length=512, description='a playbook under DBFLEET_PROJECT_DIR, '
                          'or dbfleet.mysql.NAME')

    @model_validator(mode='after')
    def _one_inventory(self):
        if (self.inventory is None) == (self.tags is None):
            raise ValueError('give inventory (a file under the project) or tags (a tag expression), exactly one')
        return self


class TemplateUpdate(TemplateFields):
    """Only the fields given change; `inventory` replaces `tags` and the other way round; null
    clears a default."""


class TemplateOut(TemplateFields):
    name: str
    playbook: str
    allow_limit: bool
    survey: list[SurveyVariable]
    created_at: dt.datetime
    created_by: str | None = None
    updated_at: dt.datetime
    updated_by: str | None = None
    links: dict[str, str]


class TemplateLaunch(BaseModel):
    model_config = ConfigDict(extra='forbid')

    extra_vars: dict[str, Any] = Field(default_factory=dict, description="values for the template's survey; "
                                       'nothing else is accepted')
    limit: str | None = Field(default=None, min_length=1, max_length=10000, description='narrows the template\'s '
                              'hosts, where it allows a limit (a host pattern, never @file)')
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255,
                                        description='the same key gives back the same job instead of a new one')
