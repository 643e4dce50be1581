"""The API's request and response bodies. The CLI client builds its requests from the same
classes, so both sides agree on names, defaults and limits."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

HostName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r'^\S+$')]
JobStatus = Literal['queued', 'waiting', 'running', 'successful', 'failed', 'canceled', 'timed_out',
                    'dependency_failed', 'worker_lost']
Role = Literal['viewer', 'operator', 'admin']


class Dependency(BaseModel):
    model_config = ConfigDict(extra='forbid', populate_by_name=True)

    job_id: str = Field(min_length=1, max_length=32, description='a job id the API returned')
    on: Literal['success', 'failure', 'always'] = Field(
        default='success', description='run when that job succeeded, failed (or timed out, was lost, or its own '
                                       'dependencies failed), or ended in any way')


class BatchPlan(BaseModel):
    """How the job's hosts are split (runner_service.planner). Without a plan, one ansible-playbook
    run over all hosts, as Ansible itself would."""

    model_config = ConfigDict(extra='forbid')

    lanes: int | None = Field(default=None, ge=1, le=200, description='split the hosts into this many lanes, '
                              'balanced by estimated duration; each lane runs its hosts one after another')
    rolling: list[int | str] | None = Field(default=None, min_length=1, max_length=50, description='batches in '
                                            'order, e.g. [1, 5, "20%"], the last size repeating (Ansible serial)')
    max_fail_percentage: int | None = Field(default=None, ge=0, le=100, description='rolling: stop when a batch '
                                            'fails more than this (default: only when all of it failed)')
    pool: str | None = Field(default=None, pattern=r'^[a-z0-9][a-z0-9_-]{0,63}$', description='each host run '
                             'holds a slot of this pool, shared with every other job')
    window_end: AwareDatetime | None = Field(default=None, description='when the run should be over: the '
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
    limit: str | None = Field(default=None, min_length=1, max_length=10000, description="ansible's --limit")
    extra_vars: dict[str, Any] = Field(default_factory=dict, description='variables for the play; values of '
                                       'names that look secret (password, token, key...) are masked in the store')
    check: bool = Field(default=False, description='--check: report what would change')
    diff: bool = Field(default=False, description='--diff')
    forks: int | None = Field(default=None, ge=1, le=500)
    timeout: int | None = Field(default=None, ge=1, le=7 * 86400, description='seconds the run may take')
    queue: str = Field(default='default', pattern=r'^[a-z0-9][a-z0-9_-]{0,31}$',
                       description='the RQ queue (workers listen to the queues they are told)')
    priority: int = Field(default=0, ge=-100, le=100, description='above 0 goes to the front of its queue')
    max_retries: int = Field(default=0, ge=0, le=10, description='retries after the worker was lost')
    retry_backoff: int = Field(default=10, ge=0, le=3600, description='seconds before such a retry')
    plan: BatchPlan | None = Field(default=None, description='lanes, rolling batches, a pool')

    @model_validator(mode='after')
    def _one_inventory(self):
        if (self.inventory is None) == (self.tags is None):
            raise ValueError('give inventory (a file under the project) or tags (a tag expression), exactly one')
        return self


class JobCreate(JobTemplate):
    deadline: AwareDatetime | None = Field(default=None, description='the run is killed at this time '
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
    plan: BatchPlan | None = None
    cancel_requested: bool
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
    role: Role


class TokenOut(BaseModel):
    name: str
    role: Role
    created_at: dt.datetime
    created_by: str | None = None
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None


class TokenCreated(TokenOut):
    token: str = Field(description='shown once: keep it, dbfleet stores only its hash')


class Problem(BaseModel):
    """Every 4xx and 5xx body."""

    detail: str = Field(description='what was wrong, and what to do')
    errors: list[dict[str, Any]] | None = Field(default=None, description='each invalid field, for 422')


class Health(BaseModel):
    status: Literal['ok', 'degraded', 'failing']
    store: dict[str, Any]
    redis: dict[str, Any]
    workers: dict[str, Any]


ScheduleKind = Literal['cron', 'interval', 'once']


class ScheduleDependency(BaseModel):
    model_config = ConfigDict(extra='forbid')

    schedule: str = Field(min_length=1, max_length=255, description='another schedule, by id or name')
    on: Literal['success', 'failure', 'always'] = Field(default='success', description='run when that schedule\'s '
                                                        'latest run succeeded, failed, or ended in any way')


class SchedulePolicies(BaseModel):
    model_config = ConfigDict(extra='forbid')

    overlap: Literal['allow', 'forbid', 'replace'] = Field(
        default='forbid', description='a slot while the last run is still going: run anyway, skip the slot, or '
                                      'cancel the last run and start')
    misfire_grace_seconds: int = Field(default=60, ge=0, le=7 * 86400, description='a slot later than this (the '
                                       'scheduler was down) is missed')
    catch_up: Literal['skip', 'once'] = Field(default='once', description='after missed slots: run once for the '
                                              'latest of them, or wait for the next slot')
    jitter_seconds: int = Field(default=0, ge=0, le=86400, description='delay each slot by up to this, the same '
                                'for every scheduler (spreads load)')
    deadline_after: int | None = Field(default=None, ge=1, le=7 * 86400, description='each run is killed this many '
                                       'seconds after its slot')
    window_policy: Literal['skip', 'defer'] = Field(
        default='skip', description='a slot inside a maintenance window: skip it, or run once when the window ends '
                                    '(however many slots it covered)')
    after: list[ScheduleDependency] = Field(default_factory=list, max_length=20, description='each run waits for '
                                            'the latest run of these schedules (as a job\'s depends_on does)')


class ScheduleCreate(SchedulePolicies):
    name: str = Field(min_length=1, max_length=255, pattern=r'^[A-Za-z0-9][A-Za-z0-9_.:@-]*$')
    kind: ScheduleKind = Field(description='cron: 5 fields, or 6 with seconds first, or @daily...; interval: '
                                           '90s / 15m / 2h / 1d; once: an ISO time')
    expression: str = Field(min_length=1, max_length=255)
    timezone: str = Field(default='UTC', min_length=1, max_length=64, description='IANA time zone of the expression')
    start_at: AwareDatetime | None = Field(default=None, description='interval: the first fire (default now)')
    paused: bool = False
    job: JobTemplate


class ScheduleUpdate(BaseModel):
    """Only the fields given change; a new trigger recomputes the next fire from now."""

    model_config = ConfigDict(extra='forbid')

    name: str | None = Field(default=None, min_length=1, max_length=255, pattern=r'^[A-Za-z0-9][A-Za-z0-9_.:@-]*$')
    kind: ScheduleKind | None = None
    expression: str | None = Field(default=None, min_length=1, max_length=255)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    start_at: AwareDatetime | None = None
    overlap: Literal['allow', 'forbid', 'replace'] | None = None
    misfire_grace_seconds: int | None = Field(default=None, ge=0, le=7 * 86400)
    catch_up: Literal['skip', 'once'] | None = None
    jitter_seconds: int | None = Field(default=None, ge=0, le=86400)
    deadline_after: int | None = Field(default=None, ge=1, le=7 * 86400)
    window_policy: Literal['skip', 'defer'] | None = None
    after: list[ScheduleDependency] | None = Field(default=None, max_length=20)
    job: JobTemplate | None = None


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
    duration_seconds: int = Field(ge=1, le=31 * 86400, description='how long each occurrence lasts (real time)')
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
    """The hosts: a list, a tag expression over the store, or a playbook with its inventory (and limit)."""

    model_config = ConfigDict(extra='forbid')

    hosts: list[HostName] | None = Field(default=None, min_length=1, max_length=100000)
    tags: str | None = Field(default=None, min_length=1, max_length=2000)
    playbook: str | None = Field(default=None, min_length=1, max_length=512)
    inventory: str | None = Field(default=None, min_length=1, max_length=512)
    limit: str | None = Field(default=None, min_length=1, max_length=10000)
    lanes: int = Field(ge=1, le=200)
    start: AwareDatetime | None = Field(default=None, description='default: now')
    window_end: AwareDatetime | None = None

    @model_validator(mode='after')
    def _one_source(self):
        given = [name for name in ('hosts', 'tags', 'playbook') if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError('give hosts, tags, or playbook with inventory: exactly one')
        if self.playbook is not None and self.inventory is None:
            raise ValueError('a playbook needs its inventory')
        if self.playbook is None and (self.inventory is not None or self.limit is not None):
            raise ValueError('inventory and limit go with a playbook')
        return self


class PlannedHost(BaseModel):
    host: str
    estimate_seconds: float
    source: Literal['history', 'size', 'default']
    start: dt.datetime
    end: dt.datetime


class PlannedLane(BaseModel):
    lane: int
    seconds: float
    hosts: list[PlannedHost]


class PlanPreview(BaseModel):
    start: dt.datetime
    finish: dt.datetime
    lower_bound_seconds: float = Field(description='no plan can be shorter: max(longest host, total / lanes)')
    lanes: list[PlannedLane]
    window_end: dt.datetime | None = None
    fits: bool | None = Field(default=None, description='whether the predicted finish is before window_end')
    warning: str | None = None


class PoolSet(BaseModel):
    model_config = ConfigDict(extra='forbid')

    slots: int = Field(ge=1, le=10000, description='how many host runs may hold the pool at once, fleet-wide')
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
    status: Literal['pending', 'running', 'ok', 'failed', 'not_run']
    estimate_seconds: float | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    detail: str | None = None


# -- the crontab bridge ---------------------------------------------------------------------

CronMode = Literal['observe', 'takeover', 'reverted']


class CronFile(BaseModel):
    model_config = ConfigDict(extra='forbid')

    kind: Literal['user', 'system', 'crond', 'path'] = Field(description="a user's crontab, /etc/crontab, a file "
                                                                         "in /etc/cron.d, or a file by path")
    name: str = Field(min_length=1, max_length=1024, description='the user name, or the file path')
    system: bool = Field(description='its lines carry a user field (/etc/crontab, /etc/cron.d)')


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
    grace_seconds: int = Field(default=60, ge=0, le=86400, description='a run not reported this long after its '
                               'slot is flagged missed')
    cron_tz: bool = Field(default=True, description='the host\'s cron reads times in CRON_TZ when the file sets '
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
    fallback: bool = Field(default=False, description='crontab ran a taken-over entry (platform unreachable)')
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    exit_code: int | None = Field(default=None, ge=-255, le=255)
    duration_seconds: float | None = Field(default=None, ge=0)
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
