"""The fleet's request and response bodies (/api/v1/hosts, tags, rules, backups). The CLI builds its
requests and reads its answers with the same classes, through the API or straight from the store,
so both paths print the same thing.

This module sits with runner_service.schemas, below every service: it imports only pydantic and
the shared request types."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

from runner_service.schemas import CronMode, HostPattern, HostRun, Instant, QueryInstant

# A host as the store names it: the inventory's hostname, no blanks, NUL, slashes or backslashes
# (names Ansible patterns and tag-filtered inventories can carry).
HOST_NAME_PATTERN = r'^[^\s\x00/\\]{1,255}$'
HostName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=HOST_NAME_PATTERN)]
# Tag names as tag filters read them (dbfleet.tags.is_valid_tag_name checks the keywords too).
TagName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r'^[A-Za-z0-9_.:\-]+$')]
# Host attributes (owner, business, rack, purchase_date, warranty_end, ...): names that rules can
# read as `attrs.<name>`, values as text. The CLI's `hosts set key=value` and the API take the same.
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r'^[A-Za-z_][A-Za-z0-9_]*$')]
AttributeValue = Annotated[str, StringConstraints(max_length=1024, pattern=r'^[^\x00]*$')]
MAX_ATTRIBUTES = 100
# A rules file sent for a check: the shipped one is 4 KB. Even written as JSON escapes of astral
# characters (12 bytes each) a text this long stays under the API's 1 MiB body limit, so a longer
# one is refused for its length (422), not for the body's size (413).
MAX_RULES_TEXT = 64 * 1024


class HostOut(BaseModel):
    """A host in a listing: its unexpired tags and a summary of its latest facts."""

    name: str
    address: str | None = None
    port: int | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict, description='server.version.full, replication.role, '
                                  'schemas.totals.total_bytes (those the host has)')


class HostPage(BaseModel):
    hosts: list[HostOut]
    next_cursor: str | None = Field(default=None, description='pass as cursor for the next page (the last name)')


class HostRecord(BaseModel):
    name: str
    address: str | None = None
    port: int | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: dt.datetime
    updated_at: dt.datetime
    tags: list[str] = Field(default_factory=list, description='its unexpired tags')


class HostUpdate(BaseModel):
    """Create the host or change it: attributes are merged (null removes one); address and port
    change only when given."""

    model_config = ConfigDict(extra='forbid')

    address: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r'^[^\s\x00]+$')] | None = None
    port: StrictInt | None = Field(default=None, ge=1, le=65535)
    attributes: dict[AttributeName, AttributeValue | None] = Field(default_factory=dict,
                                                                   max_length=MAX_ATTRIBUTES)


class HostDeleted(BaseModel):
    name: str
    tags: list[str] = Field(description='the tags it had (its tag history keeps them)')


class ProfileTag(BaseModel):
    name: str
    dimension: str | None = None
    kind: str | None = None
    source: str
    since: dt.datetime
    expires_at: dt.datetime | None = None
    evidence: Any = None
    set_by: str | None = None


class TagEventOut(BaseModel):
    id: int
    at: dt.datetime
    host: str
    tag: str
    action: str = Field(description='added, removed, updated, expired')
    old: Any = None
    new: Any = None
    who: str | None = None


class HostJob(BaseModel):
    id: str
    playbook: str
    template: str | None = None
    status: str
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    counts: dict[str, int] | None = Field(default=None, description="the host's recap: ok, changed, failed, ...")


class HostRunOut(HostRun):
    job_id: str


class BackupCopyOut(BaseModel):
    repository: str
    location: str
    status: str
    sha256: str | None = None
    verified_at: dt.datetime | None = None
    error: str | None = None


class BackupOut(BaseModel):
    id: int
    host: str
    method: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    duration_seconds: float | None = None
    bytes: int | None = None
    path: str | None = None
    checksum: str | None = None
    binlog_file: str | None = None
    binlog_position: int | None = None
    gtid: str | None = None
    error: str | None = None
    created_at: dt.datetime
    pinned: bool = Field(default=False, description='retention never removes it (`dbfleet backups keep ID`)')
    removed_at: dt.datetime | None = Field(default=None, description='when retention removed it (the row stays)')
    partial_path: str | None = Field(default=None, description="a failed attempt's partial directory")
    kept_partial: bool = Field(default=False, description='the partial directory was kept (keep_partial)')
    restore_tested_at: dt.datetime | None = None
    restore_test_status: str | None = Field(default=None, description='ok or failed, from restore drills')
    source_replica: str | None = Field(default=None, description='prefer=replica: the replica it was taken from')
    source_gtid: str | None = Field(default=None, description="the GTID position that replica had reached")
    copies: list[BackupCopyOut] = Field(default_factory=list, description='its off-host copies, each verified by '
                                        'SHA-256 (status ok) or failed with why')


class BackupPage(BaseModel):
    backups: list[BackupOut]
    next_cursor: str | None = Field(default=None, description='pass as cursor for the next (older) page')


class ChainGap(BaseModel):
    kind: str = Field(description='purged (a log never fetched), gtid (a GTID discontinuity), server (a new server id)')
    file: str | None = Field(default=None, description='the first binlog after the gap')
    previous: str | None = Field(default=None, description='the last binlog before it')
    at: str | None = Field(default=None, description="the last event before the gap (UTC)")
    detail: str
    missing: list[str] = Field(default_factory=list, description='the purged files')


class RestorableWindow(BaseModel):
    host: str
    start: dt.datetime | None = Field(default=None, description='the earliest instant a restore can reach')
    end: dt.datetime | None = Field(default=None, description='the latest: the newest archived event')
    from_backup: int | None = Field(default=None, description='the backup a restore to start starts from')
    chain: bool = Field(description='archived binlogs reach from start to end without a gap')
    open_gap: bool = Field(description='the archive reported a gap after its newest file')
    newest_backup: BackupOut | None = None
    archived: int = Field(description='archived binlog files')
    newest_archived_event: dt.datetime | None = None
    lag_seconds: float | None = Field(default=None, description="the archive's lag at its last pass")
    gaps: list[ChainGap]


class WindowList(BaseModel):
    windows: list[RestorableWindow]


class HostCronEntry(BaseModel):
    """A crontab entry of the host, bridged onto dbfleet (GET /api/v1/cron/entries/{schedule_id} has it all)."""

    schedule_id: str
    name: str
    mode: CronMode
    line: int
    expression: str
    timezone: str
    paused: bool
    next_fire_at: dt.datetime | None = None


class Profile(BaseModel):
    """Everything dbfleet knows about one database, on one page."""

    host: HostRecord
    facts_collected_at: dt.datetime | None = None
    facts: dict[str, Any] = Field(description='the summary: flavour, version, role, lag, data bytes, uptimes, ...')
    fact_errors: dict[str, Any] = Field(default_factory=dict, description='subsets not gathered, and why')
    tags: dict[str, list[ProfileTag]] = Field(description='by dimension, with evidence')
    tag_history: list[TagEventOut]
    snapshots: int = Field(description='fact snapshots kept')
    jobs: list[HostJob] = Field(description='recent jobs that ran on it, newest first')
    runs: list[HostRunOut] = Field(description='its recent runs in planned jobs (lanes, batches)')
    backups: list[BackupOut] = Field(description='recent backup attempts, newest first')
    cron_entries: list[HostCronEntry] = Field(description='its crontab entries bridged onto dbfleet')
    restore_drills: 'DrillState | None' = Field(default=None, description='when its backups were last '
                                                'restore-tested, and its newest drills (null: no successful backup)')


class TagOut(BaseModel):
    name: str
    dimension: str | None = None
    description: str | None = None
    kind: str = Field(description='rule, derived or manual')
    hosts: int = Field(description='hosts carrying it now')


class ManualTags(BaseModel):
    """Manual tags to set on (POST .../add) or take off (POST .../remove) one host."""

    model_config = ConfigDict(extra='forbid')

    host: HostName
    tags: list[TagName] = Field(min_length=1, max_length=100)
    expires: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description='add only: a duration from now (7d, 12h) or an ISO date or time')
    create: StrictBool = Field(default=False, description='add only: add the host to the store if it is not there')


class TagChange(BaseModel):
    host: str
    added: list[str]
    removed: list[str]
    tags: list[str] = Field(description='its tags after the change')


class RuleOut(BaseModel):
    tag: str
    dimension: str
    description: str
    when: str
    kind: Literal['rule', 'derived']
    depends_on: list[str]


class Rules(BaseModel):
    rules: list[RuleOut] = Field(description='in file order')
    order: list[str] = Field(description='the order they are evaluated in (derived rules after what they read)')
    vars: dict[str, Any] = Field(description='the thresholds in effect')


class RulesCheck(BaseModel):
    """A rules file's YAML text, checked and tried on every host's latest facts; nothing is written."""

    model_config = ConfigDict(extra='forbid')

    text: str = Field(max_length=MAX_RULES_TEXT, description='the YAML text of a rules file')


class RulesCheckHost(BaseModel):
    host: str
    tags: list[str] = Field(description='the rule and derived tags it would have')
    added: list[str] = Field(description='rule tags it would gain')
    removed: list[str] = Field(description='rule tags it would lose')
    errors: dict[str, str] = Field(description='rules that failed on this host, and why')


class RulesChecked(BaseModel):
    valid: bool
    errors: list[str] = Field(description='why the file cannot be used (when not valid)')
    order: list[str] = Field(default_factory=list)
    hosts: list[RulesCheckHost] = Field(default_factory=list)


# A host a restore names: an inventory host name that is a single host, never a pattern (no ',', '!',
# '&', '*', '?', '[', '~' or a leading '@').
RepositoryName = Annotated[str, StringConstraints(pattern=r'^[A-Za-z0-9_.-]{1,64}$')]
RestoreHost = Annotated[str, StringConstraints(min_length=1, max_length=255,
                                               pattern=r'^[A-Za-z0-9_][A-Za-z0-9_.:%\-]{0,254}$')]


class RestoreRequest(BaseModel):
    """POST /api/v1/backups/restore: restore `host`'s backup to an instant (`to`, UTC) or a GTID."""

    model_config = ConfigDict(extra='forbid', populate_by_name=True)

    host: RestoreHost = Field(description='the backed-up host (its name in the catalog and the inventory)')
    to: QueryInstant | None = Field(default=None, description='restore every transaction up to this instant '
                                    '(to the second; naive is UTC)')
    to_gtid: Annotated[str, StringConstraints(pattern=r'^\d{1,10}-\d{1,10}-\d{1,20}$')] | None = Field(
        default=None, description='restore up to and including this MariaDB GTID')
    backup: StrictInt | None = Field(default=None, ge=1, description='the backup id to start from (default: the '
                                     'newest successful one before the target)')
    into: RestoreHost = Field(default='scratch', description="'scratch' (a sandbox) or an inventory host (admin)")
    schema_name: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r'^[A-Za-z0-9_$\-]+$')] | None \
        = Field(default=None, alias='schema', description='one database of a logical backup')
    force: StrictBool = Field(default=False, description='restore over a server that has the databases, a binary '
                              'log or replicas')
    repository: RepositoryName | None = Field(
        default=None, alias='from', description='restore from the copy in this repository (its name in '
        'dbfleet_backup_repositories) instead of the host\'s own disk: the newest backup with a verified copy there, '
        'fetched with the binlogs its replay needs')


class RestoreLaunched(BaseModel):
    job: dict[str, Any]
    backup: BackupOut


def _real_instant(value: str) -> str:
    if value not in ('end', 'inside'):
        dt.datetime.strptime(value, '%Y-%m-%d %H:%M:%S')  # ValueError: not a real date and time
    return value


DRILL_FROM = ('drill the copies in this repository (its name in dbfleet_backup_repositories) instead of the hosts\' '
              'own backups: each host\'s newest backup with a verified copy there, fetched with the binlogs its replay '
              'needs - proof that the off-host copy restores')
DrillPoint = Annotated[str, Field(pattern=r'^(end|inside|\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})$', description=(
    'the instant of each host\'s restorable window a drill restores: end (the newest backup to the newest archived '
    'event, the default), inside (an instant drawn at random inside the window, from the backup before it) or '
    'YYYY-MM-DD HH:MM:SS (UTC)')), AfterValidator(_real_instant)]


class DrillRequest(BaseModel):
    """POST /api/v1/backups/drills: restore drills of the hosts matching `tags` (or `limit`), as one job of the
    `drill` template in lanes balanced by backup size."""

    model_config = ConfigDict(extra='forbid', populate_by_name=True)

    tags: str | None = Field(default=None, min_length=1, max_length=2000, description='a tag expression: drill the '
                             'hosts of the store that match it (default: every host of the drill template)')
    limit: HostPattern | None = Field(default=None, description='narrow the hosts further (an Ansible host pattern)')
    lanes: StrictInt | None = Field(default=None, ge=1, le=200, description='lanes run side by side, balanced by '
                                    'backup size (default: the template\'s, else 1)')
    window_end: Instant | None = Field(default=None, description='no host starts its drill after this time')
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    point: DrillPoint | None = None
    repository: RepositoryName | None = Field(default=None, alias='from', description=DRILL_FROM)


class DrillOut(BaseModel):
    id: int
    host: str
    backup_id: int | None = None
    job_id: str | None = None
    status: str = Field(description='ok: restored and verified; failed: error says why')
    started_at: dt.datetime
    finished_at: dt.datetime
    rto_seconds: float | None = Field(default=None, description='the measured recovery time: restore, replay and '
                                      'verification')
    restored_to: dt.datetime | None = Field(default=None, description='the instant the restored data is at')
    restored_gtid: str | None = None
    rpo_seconds: float | None = Field(default=None, description='how old that data was when the drill started')
    bytes: int | None = Field(default=None, description="the backup's size")
    detail: dict[str, Any] | None = Field(default=None, description='seconds per phase, what was compared')
    error: str | None = None


class DrillState(BaseModel):
    last_ok_at: dt.datetime | None = Field(default=None, description='last restore-tested: the end of its newest '
                                           'successful drill')
    untested_since: dt.datetime | None = Field(default=None, description='that, or its first backup when never '
                                               'drilled: what "untested for N days" counts from')
    first_backup_at: dt.datetime | None = None
    recent: list[DrillOut] = Field(default_factory=list, description='its newest drills')


class DrillList(BaseModel):
    drills: list[DrillOut]


class DrillLaunched(BaseModel):
    job: dict[str, Any]


class DrillSchedule(BaseModel):
    """POST /api/v1/backups/drills/schedule: a schedule that launches the `drill` template every day at `start`;
    no host starts its drill after `end` (those running then finish)."""

    model_config = ConfigDict(extra='forbid', populate_by_name=True)

    name: str = Field(min_length=1, max_length=255, pattern=r'^[A-Za-z0-9][A-Za-z0-9_.:@-]*$')
    start: str = Field(pattern=r'^([01][0-9]|2[0-3]):[0-5][0-9]$', description='HH:MM: when the drills start')
    end: str = Field(pattern=r'^([01][0-9]|2[0-3]):[0-5][0-9]$', description='HH:MM: no host starts after it')
    timezone: str = Field(default='UTC', min_length=1, max_length=64, description='IANA zone of start and end')
    limit: HostPattern | None = Field(default=None, description="narrow the template's hosts: an Ansible host "
                                      'pattern, tag groups included (tag_large:&tag_primary)')
    paused: StrictBool = False
    point: DrillPoint | None = None
    repository: RepositoryName | None = Field(default=None, alias='from', description=DRILL_FROM)


Profile.model_rebuild()
