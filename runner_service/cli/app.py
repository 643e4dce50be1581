"""The `dbfleet` command line. Commands are thin: they call the same service functions as the
Ansible plugins (dbfleet.inspection, dbfleet.profiles, the store) and print."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import sys
from contextlib import contextmanager
from typing import Optional

import typer
from rich.text import Text
from typer.models import ArgumentInfo

from runner_service import __version__
from runner_service.cli.cron import cron_app
from runner_service.cli.output import JSON_OPTION, api_answer, api_client, console, fail, print_json, print_wide, table
from runner_service.cli.templates import templates_app

app = typer.Typer(help='Operate a MySQL/MariaDB fleet with Ansible: facts, tags, jobs, schedules.',
                  no_args_is_help=True, add_completion=False)
hosts_app = typer.Typer(help='Database hosts and their profiles.', no_args_is_help=True)
tags_app = typer.Typer(help='Tags: list, add, remove, explain; rules files.', no_args_is_help=True)
rules_app = typer.Typer(help='Tag rules files.', no_args_is_help=True)
store_app = typer.Typer(help='The store: migrations.', no_args_is_help=True)
tokens_app = typer.Typer(help='API bearer tokens: create, list, revoke.', no_args_is_help=True)
jobs_app = typer.Typer(help='Jobs, through the API (DBFLEET_API_URL, DBFLEET_TOKEN): launch, list, show, logs, '
                            'cancel, relaunch.', no_args_is_help=True)
schedules_app = typer.Typer(help='Schedules, through the API: list, show, create, update, pause, resume, delete, '
                                 'preview, slots.', no_args_is_help=True)
pools_app = typer.Typer(help='Pools (fleet-wide concurrency limits for planned jobs), through the API: list, set, '
                             'delete.', no_args_is_help=True)
plans_app = typer.Typer(help='Batch plans, through the API: preview lanes and the finish before anything runs.',
                        no_args_is_help=True)
windows_app = typer.Typer(help='Maintenance windows (blackouts for schedules), through the API: list, create, '
                               'delete.', no_args_is_help=True)
app.add_typer(hosts_app, name='hosts')
app.add_typer(tags_app, name='tags')
tags_app.add_typer(rules_app, name='rules')
app.add_typer(store_app, name='store')
app.add_typer(tokens_app, name='tokens')
app.add_typer(jobs_app, name='jobs')
app.add_typer(schedules_app, name='schedules')
app.add_typer(pools_app, name='pools')
app.add_typer(plans_app, name='plans')
app.add_typer(windows_app, name='windows')
app.add_typer(cron_app, name='cron')
app.add_typer(templates_app, name='templates')

STORE_OPTION = typer.Option(None, '--store', envvar='DBFLEET_STORE_URL', help='Store URL (default: DBFLEET_STORE_URL).',
                            show_envvar=False)


@contextmanager
def opened_store(url: str | None):
    from dbfleet.store import StoreError, open_store
    try:
        store = open_store(url)
    except StoreError as exc:
        fail(str(exc))
    try:
        yield store
    except StoreError as exc:
        fail(str(exc))
    finally:
        store.close()


def shared_options(*groups: dict):
    """Give a command options that several commands share, each declared once: a group maps a
    parameter name to (its type, its typer.Option). They come after the command's arguments, and
    the command takes them as **options."""
    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        own = [parameter for parameter in signature.parameters.values()
               if parameter.kind is not parameter.VAR_KEYWORD]
        arguments = [parameter for parameter in own if isinstance(parameter.default, ArgumentInfo)]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
                 for group in groups for name, (kind, option) in group.items()]
        rest = [parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY) for parameter in own
                if parameter not in arguments]
        command.__signature__ = signature.replace(parameters=[*arguments, *added, *rest])
        return command
    return decorate


def optional(kind, *names: str, help: str):
    """An option for shared_options, None when not given."""
    return Optional[kind], typer.Option(None, *names, help=help)


def human_bytes(value) -> str:
    if value is None:
        return '-'
    value = float(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024


@app.callback()
def _root() -> None:
    """Operate a MySQL/MariaDB fleet with Ansible: facts, tags, jobs, schedules."""


@app.command()
def version() -> None:
    """Print the versions of dbfleet and of the Ansible it drives."""
    from importlib.metadata import version as installed_version

    from dbfleet.settings import get_settings

    settings = get_settings()
    rows = table('component', 'version')
    rows.add_row('dbfleet', __version__)
    rows.add_row('ansible-core', installed_version('ansible-core'))
    rows.add_row('ansible-runner', installed_version('ansible-runner'))
    rows.add_row('project dir', str(settings.project_dir))
    rows.add_row('tag rules', str(settings.tag_rules))
    console.print(rows)


# --- store -------------------------------------------------------------------------------------

@store_app.command('upgrade')
def store_upgrade(store: Optional[str] = STORE_OPTION) -> None:
    """Create or migrate the store to this dbfleet's schema."""
    from dbfleet.settings import get_settings
    from dbfleet.store import StoreError, migrate
    url = store or get_settings().store_url
    try:
        before = migrate.current(url)
        migrate.upgrade(url)
        after = migrate.current(url)
    except StoreError as exc:
        fail(str(exc))
    typer.echo('store at revision %s (was %s)' % (after, before or 'empty'))


@store_app.command('current')
def store_current(store: Optional[str] = STORE_OPTION) -> None:
    """Show the store's schema revision and the one this dbfleet needs."""
    from dbfleet.settings import get_settings
    from dbfleet.store import StoreError, migrate
    url = store or get_settings().store_url
    try:
        current = migrate.current(url)
    except StoreError as exc:
        fail(str(exc))
    head = migrate.head()
    typer.echo('store revision %s, dbfleet needs %s%s' % (
        current or 'none (empty)', head, '' if current == head else ": run 'dbfleet store upgrade'"))


# --- hosts -------------------------------------------------------------------------------------

@hosts_app.command('list')
def hosts_list(tags: Optional[str] = typer.Option(None, '--tags', help="Tag filter, e.g. 'large and not maintenance'."),
               as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """List hosts with their tags and a fact summary."""
    from dbfleet.tags import TagExpressionError, parse_tag_expression
    try:
        matches = parse_tag_expression(tags) if tags else None
    except TagExpressionError as exc:
        fail('bad --tags filter: %s' % str(exc).replace('\n', ' '))
    with opened_store(store) as opened:
        records = [record for record in opened.hosts.inventory(fact_paths=['server.version.full', 'replication.role',
                                                                      'schemas.totals.total_bytes'])
                   if matches is None or matches.matches(record['tags'])]
    if as_json:
        print_json(records)
        return
    rows = table('host', 'address', 'version', 'role', 'data', 'tags')
    for record in records:
        facts = record['facts']
        address = '%s:%s' % (record['address'], record['port']) if record['address'] else '-'
        rows.add_row(record['name'], address, str(facts.get('server.version.full') or '-'),
                     str(facts.get('replication.role') or '-'),
                     human_bytes(facts.get('schemas.totals.total_bytes')), ', '.join(record['tags']))
    console.print(rows)
    console.print('%d host(s)' % len(records))


@hosts_app.command('set')
def hosts_set(host: str, attributes: list[str] = typer.Argument(..., help='key=value (empty value removes the key)'),
              address: Optional[str] = typer.Option(None, '--address'), port: Optional[int] = typer.Option(None, '--port'),
              store: Optional[str] = STORE_OPTION) -> None:
    """Add a host or set its attributes (owner, business, rack, purchase_date, warranty_end, ...)."""
    values = {}
    for item in attributes:
        key, separator, value = item.partition('=')
        if not separator or not key:
            fail('attribute %r is not key=value' % item)
        values[key] = value or None
    with opened_store(store) as opened:
        opened.hosts.upsert(host, address=address, port=port, attributes=values)
    typer.echo('%s: %s' % (host, ', '.join('%s=%s' % item for item in values.items())))


@hosts_app.command('delete')
def hosts_delete(host: str, store: Optional[str] = STORE_OPTION) -> None:
    """Remove a host with its facts and tags; its tag history and the audit log keep what it had."""
    import getpass
    who = 'cli:%s' % getpass.getuser()
    with opened_store(store) as opened:
        known = opened.hosts.get(host)
        tags = sorted(opened.tags.of_host(host)) if known else []
        if known is None or not opened.hosts.delete(host, who=who):
            fail('unknown host %r: `dbfleet hosts list` shows the hosts' % host[:100])
        opened.audit.record(who, 'host.delete', host, {'tags': tags})
    typer.echo('%s: deleted%s' % (host, ' (tags: %s)' % ', '.join(tags) if tags else ''))


@hosts_app.command('profile')
def hosts_profile(host: str, as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """Everything known about one database: facts summary, tags by dimension with evidence, tag history."""
    from dbfleet.profiles import host_profile
    with opened_store(store) as opened:
        profile = host_profile(opened, host)
    if as_json:
        print_json(profile)
        return
    record = profile['host']
    console.rule('[bold]%s' % host)
    console.print('address %s:%s   facts collected %s' % (record['address'] or '-', record['port'] or '-',
                                                           profile['facts_collected_at'] or 'never'))
    if record['attributes']:
        console.print('attributes: ' + ', '.join('%s=%s' % item for item in sorted(record['attributes'].items())))
    facts = table('fact', 'value')
    for label, value in profile['facts'].items():
        facts.add_row(label, human_bytes(value) if label == 'data bytes' else ('-' if value is None else str(value)))
    console.print(facts)
    for subset, error in profile['fact_errors'].items():
        console.print('[yellow]facts %s not gathered: %s' % (subset, error))
    tags = table('dimension', 'tag', 'source', 'since', 'expires', 'evidence')
    for dimension, entries in sorted(profile['tags'].items()):
        for tag in entries:
            tags.add_row(dimension, tag['name'], tag['source'], str(tag['since'])[:19], str(tag['expires_at'] or '-')[:19],
                         ', '.join('%s=%s' % item for item in sorted((tag.get('evidence') or {}).items())))
    console.print(tags if profile['tags'] else 'no tags')
    if profile['tag_history']:
        history = table('when', 'tag', 'change', 'who')
        for event in profile['tag_history']:
            history.add_row(str(event['at'])[:19], event['tag'], event['action'], event['who'] or '-')
        console.print(history)


# --- tags --------------------------------------------------------------------------------------

@tags_app.command('list')
def tags_list(as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """Tags with their dimension, kind and number of hosts."""
    with opened_store(store) as opened:
        tags = opened.tags.list()
    if as_json:
        print_json(tags)
        return
    rows = table('tag', 'dimension', 'kind', 'hosts', 'description')
    for tag in tags:
        rows.add_row(tag['name'], tag['dimension'] or '-', tag['kind'], str(tag['hosts']), tag['description'] or '')
    console.print(rows)


def _manual(host: str, tags: list[str], state: str, expires: str | None, store: str | None,
            create: bool = False) -> None:
    import getpass

    from dbfleet.inspection import InspectionError, TagRequest, apply_tags
    try:
        outcome = apply_tags(TagRequest(host=host, manual_tags=tags, state=state, expires=expires, store_url=store,
                                        who='cli:%s' % getpass.getuser(), create_host=create))
    except (InspectionError, ValueError) as exc:
        fail(str(exc))
    changed = outcome.added if state == 'present' else outcome.removed
    typer.echo('%s: %s %s' % (host, 'added' if state == 'present' else 'removed', ', '.join(changed) or 'nothing'))


@tags_app.command('add')
def tags_add(host: str, tags: list[str] = typer.Argument(..., help='Tag names.'),
             expires: Optional[str] = typer.Option(None, '--expires', help='7d, 12h, 2026-12-31, ...'),
             create: bool = typer.Option(False, '--create', help='Add the host to the store if it is not there.'),
             store: Optional[str] = STORE_OPTION) -> None:
    """Set manual tags on a host (a known one, unless --create)."""
    _manual(host, tags, 'present', expires, store, create=create)


@tags_app.command('remove')
def tags_remove(host: str, tags: list[str] = typer.Argument(..., help='Tag names.'),
                store: Optional[str] = STORE_OPTION) -> None:
    """Remove manual tags from a host."""
    _manual(host, tags, 'absent', None, store)


@tags_app.command('explain')
def tags_explain(host: str, tag: Optional[str] = typer.Argument(None),
                 rules: Optional[str] = typer.Option(None, '--rules', help='Rules file (default: DBFLEET_TAG_RULES).'),
                 as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """Why each rule is true or false for a host, from its latest stored facts."""
    from dbfleet.inspection import InspectionError, explain
    try:
        rows = explain(host, tag, store_url=store, rules_path=rules)
    except InspectionError as exc:
        fail(str(exc))
    if as_json:
        print_json(rows)
        return
    out = table('tag', 'result', 'reason', 'evidence')
    for row in rows:
        result = '[red]error' if row['error'] else ('[green]true' if row['result'] else 'false')
        out.add_row(row['tag'], result, row['error'] or row['reason'] or '',
                    ', '.join('%s=%s' % item for item in sorted(row['evidence'].items())))
    console.print(out)


@rules_app.command('check')
def rules_check(path: str, as_json: bool = JSON_OPTION) -> None:
    """Check a rules file: syntax, unknown tags, unsafe expressions, cycles (exit 2 with the reason)."""
    from dbfleet.tags import RulesError, load_rules
    try:
        ruleset = load_rules(path)
    except RulesError as exc:
        fail('%s: %s' % (path, str(exc).replace('\n', ' ')))
    if as_json:
        print_json(ruleset.definitions())
        return
    typer.echo('%s: %d rules OK, evaluation order: %s' % (path, len(ruleset.rules), ', '.join(ruleset.order)))


# --- tokens ------------------------------------------------------------------------------------

@tokens_app.command('create')
def tokens_create(name: str = typer.Argument(..., help='A name for people: who or what uses the token.'),
                  role: str = typer.Option(..., '--role', help='viewer (read), operator (launch templates, change '
                                           'timings), admin (everything), or agent (one bridged host: reports its '
                                           'cron runs, reads its entries; needs --host).'),
                  templates: Optional[list[str]] = typer.Option(None, '--template', help='It may launch only this '
                                                                'job template (repeat); no bare playbooks.'),
                  host: Optional[str] = typer.Option(None, '--host', help='The bridged host of an agent token.'),
                  expires: Optional[str] = typer.Option(None, '--expires', help='When it stops working: a duration '
                                                        'from now (90d, 12h, 2w) or a date (2027-03-31).'),
                  as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """Create an API token. It is printed once: only its hash is kept."""
    import getpass

    from runner_service import tokens
    if role not in tokens.ROLES:
        fail('--role must be one of %s, got %r' % (', '.join(tokens.ROLES), role[:40]))
    if role == tokens.AGENT and not host:
        fail('an agent token needs --host: the bridged host it reports for')
    if role != tokens.AGENT and host is not None:
        fail('--host is for agent tokens only (role %s)' % role)
    with opened_store(store) as opened:
        try:
            token, record = tokens.create(opened, name, role, 'cli:%s' % getpass.getuser(), host=host,
                                          expires=expires, templates=templates or None)
        except ValueError as exc:
            fail(str(exc))
    if as_json:
        print_json(dict(record, token=token))
        return
    # The note goes to stderr, so TOKEN=$(dbfleet tokens create ...) captures the token alone.
    typer.echo('token %s (%s%s%s%s) created; it cannot be shown again: keep it now.'
               % (name, role, ' of host %s' % host if host else '',
                  '; templates: %s' % ', '.join(record['templates']) if record['templates'] else '',
                  ', expires %s' % _when(record['expires_at']) if record['expires_at'] else ''), err=True)
    typer.echo(token)


@tokens_app.command('list')
def tokens_list(show_all: bool = typer.Option(False, '--all', help='Include revoked tokens.'),
                as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """API tokens by name, with their role, host, expiry and use (never the tokens or their hashes)."""
    from runner_service.tokens import is_expired
    with opened_store(store) as opened:
        tokens = opened.tokens.list(include_revoked=show_all)
    if as_json:
        print_json([dict(token, expired=is_expired(token)) for token in tokens])
        return
    rows = table('name', 'role', 'host', 'created', 'expires', 'last used', 'revoked', 'templates')
    for token in tokens:
        expires = _when(token['expires_at'])
        if is_expired(token):
            expires += ' (expired)'
        # Text, not markup: a name such as '[/x]' is printed as it is.
        rows.add_row(Text(token['name']), token['role'], Text(token['host'] or '-'), _when(token['created_at']),
                     expires, _when(token['last_used_at']), _when(token['revoked_at']),
                     Text(', '.join(token['templates'] or ()) or '-'))
    print_wide(rows)
    console.print('%d token(s)' % len(tokens))


@tokens_app.command('revoke')
def tokens_revoke(name: str, store: Optional[str] = STORE_OPTION) -> None:
    """Revoke an API token for good (the name is not reused). Its open event streams end within seconds."""
    import getpass

    from runner_service import tokens
    with opened_store(store) as opened:
        try:
            record = tokens.revoke(opened, name, 'cli:%s' % getpass.getuser())
        except ValueError as exc:
            fail(str(exc))
    typer.echo('token %s revoked at %s' % (name, _when(record['revoked_at'])))


# --- audit -------------------------------------------------------------------------------------

@app.command('audit')
def audit(actor: Optional[str] = typer.Option(None, '--actor', help='Only what this token (or cli:USER) did.'),
          action: Optional[str] = typer.Option(None, '--action', help='An action (launch, token.create) or a '
                                               'prefix ending in a dot (token., schedule., cron.).'),
          target: Optional[str] = typer.Option(None, '--target', help='A job id or a name.'),
          since: Optional[str] = typer.Option(None, '--since', help='From this time: 7d (ago), 2026-12-01.'),
          until: Optional[str] = typer.Option(None, '--until', help='Before this time: 1d (ago), 2026-12-31.'),
          limit: int = typer.Option(50, '--limit', min=1, max=1000, help='At most this many, newest first.'),
          cursor: Optional[int] = typer.Option(None, '--cursor', min=1, help='Older than this entry id (paging).'),
          as_json: bool = JSON_OPTION,
          store: Optional[str] = typer.Option(None, '--store', help='Read this store directly (default without '
                                              'DBFLEET_API_URL: DBFLEET_STORE_URL).')) -> None:
    """Who created, changed, deleted, launched and canceled what, newest first (admins only).
    Through the API when DBFLEET_API_URL is set (and --store is not), else from the store."""
    import os
    filters = dict(actor=actor, action=action, target=target, since=_ago(since, '--since'),
                   until=_ago(until, '--until'), limit=limit, cursor=cursor)
    if os.environ.get('DBFLEET_API_URL') and not store:
        page = api_answer(lambda client: client.audit(**dict(
            filters, since=filters['since'] and filters['since'].isoformat(),
            until=filters['until'] and filters['until'].isoformat())), False)
        entries, next_cursor = page['entries'], page['next_cursor']
    else:
        cursor_id = filters.pop('cursor')
        with opened_store(store) as opened:
            try:
                entries = opened.audit.list(before=cursor_id, **filters)
            except ValueError as exc:
                fail(str(exc))
        next_cursor = entries[-1]['id'] if len(entries) == limit else None
    if as_json:
        print_json({'entries': entries, 'next_cursor': next_cursor})
        return
    rows = table('id', 'at', 'actor', 'action', 'target', 'detail')
    for entry in entries:
        rows.add_row(str(entry['id']), _when(entry['at']), Text(entry['actor']), Text(entry['action']),
                     Text(entry['target']), Text(json.dumps(entry['detail'], sort_keys=True, default=str)
                                                 if entry['detail'] is not None else '-'))
    print_wide(rows)
    if next_cursor is not None:
        console.print('older entries: --cursor %d' % next_cursor)


def _ago(text: Optional[str], option: str):
    """A point in time the user wrote: a duration back from now (7d) or a date/datetime."""
    if text is None:
        return None
    from dbfleet.clock import utcnow
    from dbfleet.durations import TimeSpecError, parse_duration, parse_point_in_time
    try:
        try:
            return utcnow() - parse_duration(text)
        except TimeSpecError:
            return parse_point_in_time(text)
    except (TimeSpecError, OverflowError) as exc:
        fail('%s: %s' % (option, str(exc)[:200]))


def _when(value) -> str:
    return str(value)[:19] if value is not None else '-'


# --- jobs --------------------------------------------------------------------------------------
# These commands talk to the API only: requests are the API's own models (JobCreate, Relaunch,
# Dependency), answers are read with its response models (runner_service.client).

WAIT_OPTION = typer.Option(False, '--wait', help='Follow the job to its end (exit 0 if successful, else 1).')
JOB_ID_ARGUMENT = typer.Argument(..., help='A job id.')
HOST_COLUMNS = ('ok', 'changed', 'failed', 'unreachable', 'skipped')
# Option names of the request models' fields, for messages about invalid values (others: --field-name).
OPTION_NAMES = {'playbook': 'PLAYBOOK', 'extra_vars': '-e', 'depends_on': '--after', 'max_retries': '--retries',
                'max_fail_percentage': '--max-fail', 'name': 'NAME', 'kind': '--cron/--every/--at',
                'expression': '--cron/--every/--at', 'timezone': '--tz', 'misfire_grace_seconds': '--misfire-grace',
                'jitter_seconds': '--jitter', 'slots': 'SLOTS', 'duration_seconds': '--duration'}
# Options that several commands share (shared_options): what to run on, its variables, its plan.
TARGET_OPTIONS = {
    'inventory': optional(str, '--inventory', '-i', help='An inventory file or directory under the project.'),
    'tags': optional(str, '--tags', help="The store's hosts matching a tag expression, e.g. 'large and not "
                                         "maintenance'."),
    'limit': optional(str, '--limit', '-l', help="ansible's --limit."),
}
VARS_OPTIONS = {
    'extra_vars': optional(list[str], '--extra-vars', '-e', help='key=value (the value read as JSON when it is JSON: '
                           '3, true, [..]) or @file.json / @file.yml; repeat, later ones win.'),
}
PLAN_OPTIONS = {
    'lanes': optional(int, '--lanes', help='Split the hosts into N lanes balanced by estimated duration; each lane '
                                           'runs its hosts one by one.'),
    'rolling': optional(str, '--rolling', help='Rolling batches in order, e.g. 1,5,20% (the last size repeats), '
                                               'instead of lanes.'),
    'max_fail': optional(str, '--max-fail', help='With --rolling: stop when a batch fails more than this percentage '
                                                 'of its hosts.'),
    'pool': optional(str, '--pool', help='Each host run holds a slot of this pool, shared with every other job '
                                         '(dbfleet pools).'),
}
TASK_START_EVENTS = ('playbook_on_task_start', 'playbook_on_handler_task_start')
RESULT_EVENTS = ('runner_on_ok', 'runner_on_failed', 'runner_on_skipped', 'runner_on_unreachable')
HOST_FAILED_EVENTS = ('runner_on_failed', 'runner_on_unreachable')


class TaskProgress:
    """A live job as its events tell it: the current task, its hosts done of the hosts seen so far,
    and the hosts that failed or were unreachable (a failure ignored by the play does not count)."""

    def __init__(self) -> None:
        self.task: str | None = None
        self.hosts: set[str] = set()
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.task_failed: set[str] = set()

    def feed(self, event: dict) -> str | None:
        """Take one event; returns a line for the task it ended, if it ended one."""
        name, host = event['event'], event.get('host')
        if name in TASK_START_EVENTS or name == 'playbook_on_stats':
            ended = self.end_task()
            self.task = (event.get('task') or '(unnamed task)') if name != 'playbook_on_stats' else None
            return ended
        if host and name == 'runner_on_start':
            self.hosts.add(host)
        elif host and name in RESULT_EVENTS:
            self.hosts.add(host)
            self.done.add(host)
            if name in HOST_FAILED_EVENTS and event.get('failed') is not False:
                self.failed.add(host)
                self.task_failed.add(host)
        return None

    def end_task(self) -> str | None:
        if self.task is None:
            return None
        line = 'task %s: %d/%d hosts done' % (self.task, len(self.done), len(self.hosts))
        if self.task_failed:
            line += ', failed: %s' % ', '.join(sorted(self.task_failed))
        self.task, self.done, self.task_failed = None, set(), set()
        return line

    @property
    def failures(self) -> str:
        return 'failed: %s' % ', '.join(sorted(self.failed)) if self.failed else ''


def _extra_vars(items: list[str]) -> dict:
    """-e values merged left to right: key=value (the value read as JSON when it is JSON, else
    text) or @file (a JSON or YAML mapping)."""
    merged: dict = {}
    for item in items:
        if item.startswith('@'):
            merged.update(_vars_file(item[1:]))
            continue
        key, separator, value = item.partition('=')
        if not separator or not key:
            fail('-e %r: give key=value or @file.json|@file.yml' % item)
        try:
            merged[key] = json.loads(value)
        except ValueError:
            merged[key] = value
    return merged


def _vars_file(path: str) -> dict:
    import yaml
    try:
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
    except OSError as exc:
        fail('-e @%s: %s' % (path, exc.strerror or exc))
    try:
        values = json.loads(text) if path.endswith('.json') else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = 'JSON' if path.endswith('.json') else 'YAML'
        fail('-e @%s: not valid %s: %s' % (path, kind, ' '.join(str(exc).split())))
    if not isinstance(values, dict):
        fail('-e @%s: not a mapping of variable names to values' % path)
    return values


def _seconds(text: str, option: str) -> int:
    from dbfleet.durations import TimeSpecError, parse_duration
    if text.strip().isdigit():
        return int(text)
    try:
        return int(parse_duration(text).total_seconds())
    except TimeSpecError as exc:
        fail('%s: %s' % (option, exc))


def _point(text: str, option: str, after: dt.datetime | None = None) -> dt.datetime:
    """A time the user wrote: ISO (naive means UTC), a duration from now (2h), or HH:MM: the next
    such local time after `after` (default now)."""
    from dbfleet.durations import TimeSpecError, parse_point_in_time
    hours, colon, minutes = text.strip().partition(':')
    if colon and hours.isdigit() and minutes.isdigit() and len(minutes) == 2:
        now = (after or dt.datetime.now(dt.timezone.utc)).astimezone().replace(tzinfo=None)
        try:
            wall = now.replace(hour=int(hours), minute=int(minutes), second=0, microsecond=0)
        except ValueError:
            fail('%s: %r is not a time of day (HH:MM)' % (option, text))
        return (wall if wall > now else wall + dt.timedelta(days=1)).astimezone()
    try:
        return parse_point_in_time(text)
    except TimeSpecError as exc:
        fail('%s: %s' % (option, exc))


def _invalid(exc, option: str | None = None, whole: str = '--inventory/--tags') -> str:
    """A pydantic ValidationError of a request model as one line, in the command's option names
    (`whole`: the options a rule over several fields is about)."""
    parts = []
    for error in exc.errors()[:5]:
        field = error['loc'][0] if error['loc'] else None
        name = option or (OPTION_NAMES.get(field, '--%s' % str(field).replace('_', '-')) if field is not None
                          else whole)
        parts.append('%s: %s' % (name, error['msg'].removeprefix('Value error, ')))
    return '; '.join(parts)


def _request(model, whole: str = '--inventory/--tags', **fields):
    """The API's request model from the options given (None ones left out, so they keep the
    model's defaults, or stay unset); an invalid value ends the command with one line."""
    from pydantic import ValidationError
    try:
        return model(**{key: value for key, value in fields.items() if value is not None})
    except ValidationError as exc:
        fail(_invalid(exc, whole=whole))


def _rolling(text: str) -> list:
    """--rolling 1,5,20% as BatchPlan.rolling: [1, 5, '20%']."""
    return [int(part) if part.strip().isdigit() else part.strip() for part in text.split(',')]


def _plan(options: dict, window_end: str | None = None, base: dict | None = None):
    """The BatchPlan of the plan options (PLAN_OPTIONS, --window-end) over `base` (a schedule's
    current plan: --lanes replaces its rolling batches, --rolling its lanes); None if none given."""
    from runner_service.schemas import BatchPlan
    max_fail = options.get('max_fail')
    if max_fail is not None and not max_fail.strip().rstrip('%').isdigit():
        fail('--max-fail: %r is not a percentage (0-100)' % max_fail)
    given = {'lanes': options.get('lanes'), 'rolling': _rolling(options['rolling']) if options.get('rolling') else None,
             'max_fail_percentage': int(max_fail.strip().rstrip('%')) if max_fail is not None else None,
             'pool': options.get('pool'), 'window_end': _point(window_end, '--window-end') if window_end else None}
    given = {key: value for key, value in given.items() if value is not None}
    if not given:
        return None
    plan = {key: value for key, value in (base or {}).items() if value is not None}
    if 'lanes' in given:
        plan.pop('rolling', None)
        plan.pop('max_fail_percentage', None)
    if 'rolling' in given:
        plan.pop('lanes', None)
    return _request(BatchPlan, '--lanes/--rolling', **{**plan, **given})


def _template_fields(options: dict, window_end: str | None = None, base_plan: dict | None = None) -> dict:
    """JobTemplate fields from the options `jobs launch` and `schedules create|update` share
    (TARGET_OPTIONS, VARS_OPTIONS, PLAN_OPTIONS): -e merged, the plan built; those not given left out."""
    fields = {name: options.get(name) for name in TARGET_OPTIONS}
    fields['extra_vars'] = _extra_vars(options['extra_vars']) if options.get('extra_vars') else None
    fields['plan'] = _plan(options, window_end, base_plan)
    return {key: value for key, value in fields.items() if value is not None}


def _job_request(playbook: str, after: list[str], deadline: str | None, timeout: str | None, options: dict,
                 window_end: str | None, **fields):
    """The JobCreate for `jobs launch`; options left out keep the model's defaults."""
    from pydantic import ValidationError

    from runner_service.schemas import Dependency, JobCreate
    if timeout is not None:
        fields['timeout'] = _seconds(timeout, '--timeout')
    if deadline is not None:
        fields['deadline'] = _point(deadline, '--deadline')
    depends_on = []
    for item in after:
        job_id, _, on = item.partition(':')
        try:
            depends_on.append(Dependency(job_id=job_id, on=on or 'success'))
        except ValidationError as exc:
            fail(_invalid(exc, '--after %s' % item))
    return _request(JobCreate, playbook=playbook, depends_on=depends_on, **_template_fields(options, window_end),
                    **fields)


def _host_table(job: dict) -> None:
    if not job['hosts']:
        console.print('no per-host results (yet)')
        return
    rows = table('host', *HOST_COLUMNS)
    for host, counts in sorted(job['hosts'].items()):
        rows.add_row(Text(host), *(str(counts[column]) for column in HOST_COLUMNS),
                     style='red' if counts['failed'] or counts['unreachable'] else None)
    console.print(rows)


def _timeline(client, job: dict) -> None:
    """A planned job's host runs: per lane (or batch), host, status, start, end, how long it took
    and what was estimated."""
    if not job.get('plan'):
        return
    runs = client.runs(job['id'])
    if not runs:
        console.print('no timeline (yet)')
        return
    group = 'lane' if any(run['lane'] is not None for run in runs) else 'batch'
    rows = table(group, 'host', 'status', 'start', 'end', 'took s', 'estimate s')
    for run in sorted(runs, key=lambda run: (run[group] if run[group] is not None else -1,
                                             run['started_at'] or '~', run['host'])):
        took = None
        if run['started_at'] and run['finished_at']:
            took = (dt.datetime.fromisoformat(run['finished_at'])
                    - dt.datetime.fromisoformat(run['started_at'])).total_seconds()
        rows.add_row('-' if run[group] is None else str(run[group]), Text(run['host']), run['status'],
                     _when(run['started_at']).replace('T', ' '), _when(run['finished_at']).replace('T', ' '),
                     _seconds_text(took) or '-', _seconds_text(run['estimate_seconds']) or '-',
                     style='red' if run['status'] == 'failed' else None)
    print_wide(rows)


def _seconds_text(value: float | None) -> str | None:
    return None if value is None else '%.1f' % value


def _ended(job_id: str, status: str, reason: str | None) -> str:
    return 'job %s %s%s' % (job_id, status, ': %s' % reason if reason else '')


def _follow_progress(client, job_id: str) -> None:
    """Follow a job's events to its end with a live bar, or a line a finished task off a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
    tracker = TaskProgress()
    if not console.is_terminal:
        for name, event in client.follow(job_id):
            line = tracker.end_task() if name == 'end' else tracker.feed(event)
            if line:
                typer.echo(line)
        return
    columns = (SpinnerColumn(), TextColumn('{task.description}', markup=False), BarColumn(), MofNCompleteColumn(),
               TextColumn('hosts'), TextColumn('{task.fields[failures]}', style='red', markup=False))
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task('waiting for job %s to start' % job_id, total=None, failures='')
        for name, event in client.follow(job_id):
            line = tracker.end_task() if name == 'end' else tracker.feed(event)
            if line:
                progress.console.print(Text(line))
            progress.update(bar, description=tracker.task or 'between tasks', completed=len(tracker.done),
                            total=len(tracker.hosts) or None, failures=tracker.failures)


def _wait(client, job: dict, as_json: bool) -> int:
    """Follow a job to its end, then print its per-host results and how it ended: 0 if successful, else 1."""
    try:
        if as_json:
            for _ in client.follow(job['id']):
                pass
        else:
            typer.echo('job %s %s: %s on %s' % (job['id'], job['status'], job['playbook'],
                                                job['inventory'] or 'tags %s' % job['tags']))
            _follow_progress(client, job['id'])
    except KeyboardInterrupt:
        fail('stopped waiting; job %s goes on (dbfleet jobs logs -f %s)' % (job['id'], job['id']), 130)
    final = client.get(job['id'])
    if as_json:
        print_json(final)
    else:
        _host_table(final)
        _timeline(client, final)
        typer.echo(_ended(final['id'], final['status'], final['status_reason']))
    return 0 if final['status'] == 'successful' else 1


def _started(client, job: dict, wait: bool, as_json: bool) -> None:
    if wait:
        raise typer.Exit(_wait(client, job, as_json))
    if as_json:
        print_json(job)
    else:
        typer.echo('%s %s' % (job['id'], job['status']))


PLAYBOOK_ARGUMENT = typer.Argument(..., help='A playbook under the project directory, e.g. playbooks/inspect.yml.')


@jobs_app.command('launch', short_help='Queue a playbook run; with --wait, follow it to its end.')
@shared_options(TARGET_OPTIONS, VARS_OPTIONS, PLAN_OPTIONS)
def jobs_launch(
        playbook: str = PLAYBOOK_ARGUMENT,
        window_end: Optional[str] = typer.Option(None, '--window-end', help='When the run should be over (ISO, or '
                                                 'HH:MM local): warn when its estimate overruns it.'),
        check: Optional[bool] = typer.Option(None, '--check', help='Report what would change; change nothing.'),
        diff: Optional[bool] = typer.Option(None, '--diff', help='Show the differences of what changes.'),
        forks: Optional[int] = typer.Option(None, '--forks', help='Parallel hosts.'),
        timeout: Optional[str] = typer.Option(None, '--timeout', help='Seconds the run may take (or 30m, 2h).'),
        deadline: Optional[str] = typer.Option(None, '--deadline', help='Kill the run at this time: ISO (UTC '
                                                                        'unless it says, 2026-11-27T03:00:00Z) or 2h.'),
        after: Optional[list[str]] = typer.Option(None, '--after', help='JOB[:success|failure|always]: start once that '
                                                                        'job ended so (default success); repeat.'),
        queue: Optional[str] = typer.Option(None, '--queue', help='The queue (default: default).'),
        priority: Optional[int] = typer.Option(None, '--priority', help='-100..100; above 0 jumps its queue.'),
        retries: Optional[int] = typer.Option(None, '--retries', help='Retries if its worker is lost (0-10).'),
        idempotency_key: Optional[str] = typer.Option(None, '--idempotency-key',
                                                      help='The same key gives back the same job.'),
        wait: bool = WAIT_OPTION, as_json: bool = JSON_OPTION, **options) -> None:
    """Queue a playbook run on --inventory or --tags (one of them) and print its id and status.
    --lanes or --rolling (with --max-fail), --pool and --window-end make its batch plan.
    With --wait, follow it live (a line a task when stdout is not a terminal), then print the
    per-host results and how it ended. Exit code: 0 when the job ended successful, 1 when it
    ended otherwise (failed, canceled, timed out...), 2 when the request was refused."""
    request = _job_request(playbook, after or [], deadline, timeout, options, window_end, check=check, diff=diff,
                           forks=forks, queue=queue, priority=priority, max_retries=retries,
                           idempotency_key=idempotency_key)
    with api_client() as client:
        _started(client, client.launch(request), wait, as_json)


@jobs_app.command('list')
def jobs_list(status: Optional[list[str]] = typer.Option(None, '--status', help='Only jobs with this status; repeat.'),
              playbook: Optional[str] = typer.Option(None, '--playbook', help='Only runs of this playbook.'),
              tag: Optional[str] = typer.Option(None, '--tag', help='Only jobs whose tag expression names it.'),
              limit: Optional[int] = typer.Option(None, '--limit', help='Jobs a page (default 50).'),
              cursor: Optional[str] = typer.Option(None, '--cursor', help='The next page, from the previous one.'),
              as_json: bool = JSON_OPTION) -> None:
    """Jobs, newest first."""
    with api_client() as client:
        page = client.list(status=status, playbook=playbook, tag=tag, limit=limit, cursor=cursor)
    if as_json:
        print_json(page)
        return
    rows = table('id', 'status', 'playbook', 'inventory or tags', 'created', 'run s', 'created by')
    rows.columns[0].no_wrap = True
    for job in page['jobs']:
        rows.add_row(job['id'], job['status'], Text(job['playbook']),
                     Text(job['inventory'] or 'tags: %s' % job['tags']), _when(job['created_at']).replace('T', ' '),
                     _seconds_text(job['timings']['run_seconds']) or '-', Text(job['created_by'] or '-'))
    print_wide(rows)
    more = '; next page: --cursor %s' % page['next_cursor'] if page['next_cursor'] else ''
    console.print(Text('%d job(s)%s' % (len(page['jobs']), more)))


@jobs_app.command('show')
def jobs_show(job_id: str = JOB_ID_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """A job's fields and per-host results; with a batch plan, its timeline too."""
    with api_client() as client:
        job = client.get(job_id)
        if as_json:
            print_json(job)
            return
        _show_job(client, job)


def _show_job(client, job: dict) -> None:
    timings = job['timings']
    fields = {
        'id': job['id'], 'status': job['status'], 'reason': job['status_reason'], 'playbook': job['playbook'],
        'inventory': job['inventory'], 'tags': job['tags'], 'limit': job['limit'],
        'extra vars': json.dumps(job['extra_vars'], sort_keys=True) if job['extra_vars'] else None,
        'mode': ' '.join(name for name in ('check', 'diff') if job[name]) or None, 'forks': job['forks'],
        'timeout s': job['timeout'], 'deadline': job['deadline'],
        'after': ', '.join('%s:%s' % (item['job_id'], item['on']) for item in job['depends_on']) or None,
        'queue': '%s (priority %d)' % (job['queue'], job['priority']),
        'attempt': '%d of %d' % (job['attempt'], job['max_retries'] + 1),
        'created': job['created_at'], 'started': job['started_at'], 'finished': job['finished_at'],
        'queued s': _seconds_text(timings['queued_seconds']), 'run s': _seconds_text(timings['run_seconds']),
        'worker': job['worker'],
        'return code': job['return_code'], 'created by': job['created_by'], 'relaunch of': job['relaunch_of'],
        'cancel requested': 'yes' if job['cancel_requested'] else None,
        'plan': _plan_text(job['plan']),
    }
    _fields_table(fields)
    _host_table(job)
    _timeline(client, job)


def _fields_table(fields: dict) -> None:
    rows = table('field', 'value')
    for name, value in fields.items():
        if value is not None:
            rows.add_row(name, Text(str(value)))
    print_wide(rows)


def _plan_text(plan: dict | None) -> str | None:
    if not plan:
        return None
    parts = ['%d lanes' % plan['lanes'] if plan.get('lanes') else None,
             'rolling %s' % ','.join(str(size) for size in plan['rolling']) if plan.get('rolling') else None,
             'max fail %d%%' % plan['max_fail_percentage'] if plan.get('max_fail_percentage') is not None else None,
             'pool %s' % plan['pool'] if plan.get('pool') else None,
             'window ends %s' % plan['window_end'] if plan.get('window_end') else None]
    return ', '.join(part for part in parts if part) or 'one run'


@jobs_app.command('logs', short_help="A job's output; -f follows it live to the job's end.")
def jobs_logs(job_id: str = JOB_ID_ARGUMENT,
              follow: bool = typer.Option(False, '--follow', '-f', help='Print the output as it comes, to the end.'),
              host: Optional[str] = typer.Option(None, '--host', help="Only this host's output.")) -> None:
    """A job's output as ansible printed it. With -f, follow it live until the job ends; then the
    exit code is 0 when the job ended successful, 1 when it ended otherwise."""
    with api_client() as client:
        if not follow and host is None:
            sys.stdout.write(client.stdout(job_id)['stdout'])
            return
        if not follow:
            after = None
            while True:
                page = client.events(job_id, after=after, host=host, limit=1000)
                for event in page['events']:
                    if event['stdout']:
                        typer.echo(event['stdout'])
                if page['next_cursor'] is None:
                    return
                after = page['next_cursor']
        try:
            for name, event in client.follow(job_id, host=host):
                if name == 'end':
                    typer.echo(_ended(job_id, event['status'], event.get('status_reason')), err=True)
                    raise typer.Exit(0 if event['status'] == 'successful' else 1)
                if event['stdout']:
                    typer.echo(event['stdout'])
        except KeyboardInterrupt:
            raise typer.Exit(130)


@jobs_app.command('cancel')
def jobs_cancel(job_id: str = JOB_ID_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Cancel a job: a queued or waiting one at once, a running one within seconds."""
    with api_client() as client:
        job = client.cancel(job_id)
    if as_json:
        print_json(job)
    elif job['status'] == 'canceled':
        typer.echo('job %s canceled' % job_id)
    else:
        typer.echo('job %s %s: cancel requested, its processes are stopped within seconds' % (job_id, job['status']))


@jobs_app.command('relaunch', short_help='Run a job again, on all its hosts or the failed ones.')
def jobs_relaunch(job_id: str = JOB_ID_ARGUMENT,
                  failed: bool = typer.Option(False, '--failed', help='Only its failed and unreachable hosts.'),
                  wait: bool = WAIT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Run a job again as a new job, on all its hosts or only the failed ones. With --wait, exit
    code 0 when the new job ended successful, 1 when it ended otherwise."""
    with api_client() as client:
        _started(client, client.relaunch(job_id, 'failed' if failed else 'all'), wait, as_json)


# --- schedules, pools, plans -------------------------------------------------------------------
# Through the API too: requests are ScheduleCreate, ScheduleUpdate, PoolSet, PlanPreviewRequest.

SCHEDULE_REF = typer.Argument(..., help='A schedule id or name.')
SCHEDULE_OPTIONS = {
    'cron': optional(str, '--cron', help='A cron expression: 5 fields, 6 with seconds first, or @daily...'),
    'every': optional(str, '--every', help='An interval: 90s, 15m, 2h, 1d.'),
    'at': optional(str, '--at', help='Once, at this ISO time (naive means in --tz).'),
    'tz': optional(str, '--tz', help='IANA time zone of the expression (default UTC).'),
    'overlap': optional(str, '--overlap', help='A slot while the last run still goes: allow, forbid (skip it, the '
                                               'default) or replace.'),
    'misfire_grace': optional(str, '--misfire-grace', help='Seconds (or 5m) a slot may be late and still fire '
                                                           '(default 60).'),
    'catch_up': optional(str, '--catch-up', help='After missed slots: once (the default) or skip.'),
    'jitter': optional(str, '--jitter', help='Delay each slot by up to this many seconds.'),
    'deadline_after': optional(str, '--deadline-after', help='Kill each run this long after its slot (seconds, or '
                                                             '2h).'),
    'window_policy': optional(str, '--window-policy', help='A slot inside a maintenance window: skip (the default) '
                                                           'or defer.'),
    'after': (Optional[list[str]], typer.Option(None, '--after', metavar='SCHEDULE[:on]', help='Each run waits for the latest run of this '
                                                'schedule: NAME, or NAME:failure / NAME:always (repeatable).')),
}


def _one_trigger(choices: dict, required: bool = True) -> tuple[str, str] | None:
    """(kind, value) of the one trigger option given; `choices` maps each kind to (its option, the
    value given or None). More than one, or none when one is required, ends the command."""
    given = [(kind, value) for kind, (_, value) in choices.items() if value is not None]
    if len(given) > 1 or (required and not given):
        fail('give %s: %s' % ('one of' if required else 'at most one of',
                              ', '.join(option for option, _ in choices.values())))
    return given[0] if given else None


def _schedule_fields(options: dict, required: bool) -> dict:
    """ScheduleCreate/ScheduleUpdate fields from SCHEDULE_OPTIONS; those not given left out."""
    trigger = _one_trigger({'cron': ('--cron EXPR', options.get('cron')), 'interval': ('--every DURATION',
                            options.get('every')), 'once': ('--at ISO', options.get('at'))}, required)
    fields = {'kind': trigger[0], 'expression': trigger[1]} if trigger else {}
    fields.update(timezone=options.get('tz'), overlap=options.get('overlap'), catch_up=options.get('catch_up'),
                  window_policy=options.get('window_policy'))
    for field, name in (('misfire_grace_seconds', 'misfire_grace'), ('jitter_seconds', 'jitter'),
                        ('deadline_after', 'deadline_after')):
        if options.get(name) is not None:
            fields[field] = _seconds(options[name], '--%s' % name.replace('_', '-'))
    if options.get('after'):
        fields['after'] = [_schedule_dependency(text) for text in options['after']]
    return {key: value for key, value in fields.items() if value is not None}


def _schedule_dependency(text: str) -> dict:
    name, _, on = text.rpartition(':') if text.rsplit(':', 1)[-1] in ('success', 'failure', 'always') else \
        (text, '', 'success')
    if not name:
        fail('--after %r: give a schedule name, optionally followed by :success, :failure or :always' % text)
    return {'schedule': name, 'on': on}


def _zoned(value, zone: str | None = None) -> str:
    """An API time in `zone` (a schedule's; None: as the API wrote it), e.g. 2026-03-29 03:30:00+02:00."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    if value is None:
        return '-'
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    try:
        moment = moment.astimezone(ZoneInfo(zone)) if zone else moment
    except (ZoneInfoNotFoundError, ValueError):
        pass
    return moment.isoformat(sep=' ', timespec='seconds')


def _trigger_text(schedule: dict) -> str:
    kind = {'cron': 'cron', 'interval': 'every', 'once': 'once at'}[schedule['kind']]
    return '%s %s (%s)' % (kind, schedule['expression'], schedule['timezone'])


def _target_text(job: dict) -> str:
    if job.get('template'):
        return 'template %s%s' % (job['template'], ' --limit %s' % job['limit'] if job.get('limit') else '')
    return '%s on %s%s' % (job['playbook'], job.get('inventory') or 'tags: %s' % job.get('tags'),
                           ' --limit %s' % job['limit'] if job.get('limit') else '')


def _show_schedule(schedule: dict) -> None:
    job, zone = schedule['job'], schedule['timezone']
    _fields_table({
        'id': schedule['id'], 'name': schedule['name'], 'trigger': _trigger_text(schedule),
        'interval start': _zoned(schedule['start_at'], zone) if schedule.get('start_at') else None,
        'state': 'paused' if schedule['paused'] else 'active', 'job': _target_text(job),
        'extra vars': json.dumps(job['extra_vars'], sort_keys=True) if job.get('extra_vars') else None,
        'plan': _plan_text(job.get('plan')),
        'overlap': schedule['overlap'], 'misfire grace s': schedule['misfire_grace_seconds'],
        'catch up': schedule['catch_up'], 'jitter s': schedule['jitter_seconds'] or None,
        'deadline after s': schedule['deadline_after'], 'window policy': schedule.get('window_policy'),
        'after': ', '.join('%s (%s)' % (item['schedule'], item['on']) for item in schedule.get('after') or []) or None,
        'next fire': '-' if schedule['paused'] else _zoned(schedule['next_fire_at'], zone),
        'last fire': _zoned(schedule['last_fire_at'], zone),
        'last job': schedule['last_job_id'], 'created': schedule['created_at'], 'created by': schedule['created_by'],
        'updated': schedule['updated_at'],
    })


def _schedule_line(schedule: dict, did: str) -> None:
    typer.echo('schedule %s %s; next fire %s' % (schedule['name'], did, 'none (paused)' if schedule['paused']
                                                else _zoned(schedule['next_fire_at'], schedule['timezone'])))


@schedules_app.command('list')
def schedules_list(as_json: bool = JSON_OPTION) -> None:
    """Schedules with their trigger, job, state and next fire (in each one's time zone)."""
    schedules = api_answer(lambda client: client.schedules(), as_json)
    rows = table('name', 'trigger', 'job', 'state', 'next fire', 'last job')
    for schedule in schedules:
        rows.add_row(Text(schedule['name']), Text(_trigger_text(schedule)), Text(_target_text(schedule['job'])),
                     'paused' if schedule['paused'] else 'active',
                     '-' if schedule['paused'] else _zoned(schedule['next_fire_at'], schedule['timezone']),
                     schedule['last_job_id'] or '-')
    print_wide(rows)
    console.print(Text('%d schedule(s)' % len(schedules)))


@schedules_app.command('show')
def schedules_show(ref: str = SCHEDULE_REF, as_json: bool = JSON_OPTION) -> None:
    """A schedule's trigger, job, policies and fires."""
    _show_schedule(api_answer(lambda client: client.schedule(ref), as_json))


@schedules_app.command('create', short_help='Run a playbook on a cron expression, an interval or once.')
@shared_options(SCHEDULE_OPTIONS, TARGET_OPTIONS, VARS_OPTIONS, PLAN_OPTIONS)
def schedules_create(name: str = typer.Argument(..., help='A name for the schedule, e.g. nightly-backup.'),
                     playbook: Optional[str] = typer.Argument(None, help='A playbook under the project directory, '
                                                              'e.g. playbooks/inspect.yml (or --template).'),
                     template: Optional[str] = typer.Option(None, '--template', help='Launch this job template '
                                                            'instead of a playbook (-e, --limit: its survey, hosts).'),
                     paused: bool = typer.Option(False, '--paused', help='Create it paused (resume starts it).'),
                     as_json: bool = JSON_OPTION, **options) -> None:
    """Run PLAYBOOK on --inventory or --tags (needs an admin token), or launch --template with
    -e values for its survey (an operator token that may launch it will do), at each fire of
    --cron, --every or --at (one of them), in --tz."""
    from runner_service.schemas import JobTemplate, ScheduleCreate
    if (playbook is None) == (template is None):
        fail('give PLAYBOOK or --template, exactly one')
    if template is not None:
        target = {'template': template, 'limit': options.get('limit'),
                  'extra_vars': _extra_vars(options['extra_vars']) if options.get('extra_vars') else None}
    else:
        target = {'job': _request(JobTemplate, playbook=playbook, **_template_fields(options))}
    request = _request(ScheduleCreate, '--cron/--every/--at', name=name, paused=paused, **target,
                       **_schedule_fields(options, required=True))
    _show_schedule(api_answer(lambda client: client.create_schedule(request), as_json))


@schedules_app.command('update', short_help='Change a schedule: only the options given change.')
@shared_options(SCHEDULE_OPTIONS, TARGET_OPTIONS, VARS_OPTIONS, PLAN_OPTIONS)
def schedules_update(ref: str = SCHEDULE_REF,
                     playbook: Optional[str] = typer.Option(None, '--playbook', help='Run this playbook instead.'),
                     as_json: bool = JSON_OPTION, **options) -> None:
    """Change a schedule: only the options given change (-e replaces its extra vars; --lanes its
    rolling batches, --rolling its lanes). A new trigger or --tz fires from now on."""
    from runner_service.schemas import JobTemplate, ScheduleUpdate
    changes = _schedule_fields(options, required=False)
    with api_client() as client:
        shared = (*TARGET_OPTIONS, *VARS_OPTIONS, *PLAN_OPTIONS)
        if playbook is None and any(options.get(name) for name in shared) and \
                client.schedule(ref)['job'].get('template'):
            # A schedule of a job template: -e and --limit are values for the template's launch.
            if any(options.get(name) for name in shared if name not in ('extra_vars', 'limit')):
                fail('%s launches a job template: only -e and --limit change what it launches' % ref)
            if options.get('extra_vars'):
                changes['extra_vars'] = _extra_vars(options['extra_vars'])
            if options.get('limit'):
                changes['limit'] = options['limit']
        elif playbook is not None or any(options.get(name) for name in shared):
            job = client.schedule(ref)['job']
            template = _template_fields(options, base_plan=job.get('plan'))
            if playbook is not None:
                template['playbook'] = playbook
            if 'inventory' in template or 'tags' in template:
                job = dict(job, inventory=None, tags=None)
            changes['job'] = _request(JobTemplate, **{**job, **template})
        if not changes:
            fail('nothing to change: give the options to change (dbfleet schedules update --help)')
        changed = client.update_schedule(ref, _request(ScheduleUpdate, **changes))
    if as_json:
        print_json(changed)
    else:
        _show_schedule(changed)


@schedules_app.command('pause')
def schedules_pause(ref: str = SCHEDULE_REF, as_json: bool = JSON_OPTION) -> None:
    """Stop firing until resumed."""
    _schedule_line(api_answer(lambda client: client.pause_schedule(ref), as_json), 'paused')


@schedules_app.command('resume')
def schedules_resume(ref: str = SCHEDULE_REF, as_json: bool = JSON_OPTION) -> None:
    """Fire again from the next slot after now (slots that fell in the pause are not caught up)."""
    _schedule_line(api_answer(lambda client: client.resume_schedule(ref), as_json), 'resumed')


@schedules_app.command('delete')
def schedules_delete(ref: str = SCHEDULE_REF, as_json: bool = JSON_OPTION) -> None:
    """Delete a schedule (its jobs stay)."""
    typer.echo('schedule %s deleted' % api_answer(lambda client: client.delete_schedule(ref), as_json)['name'])


@schedules_app.command('preview')
def schedules_preview(ref: str = SCHEDULE_REF,
                      count: int = typer.Option(10, '-n', help='How many fire times (1-100).'),
                      as_json: bool = JSON_OPTION) -> None:
    """The next fire times, in the schedule's time zone; those inside a maintenance window are
    marked: skipped, or deferred to the window's end."""
    preview = api_answer(lambda client: client.preview_schedule(ref, count), as_json)
    zone = preview['timezone']
    blocked = {entry['time']: entry for entry in preview.get('blocked') or []}
    rows = table('#', 'fire time (%s)' % zone, 'maintenance window')
    for index, time in enumerate(preview['times'], 1):
        entry = blocked.get(time)
        note = '' if entry is None else '%s: in %s until %s' % (
            'skipped' if entry['action'] == 'skip' else 'deferred', entry['window'], _zoned(entry['until'], zone))
        rows.add_row(str(index), _zoned(time, zone), Text(note), style='yellow' if entry else None)
    print_wide(rows)
    if not preview['times']:
        console.print(Text('schedule %s fires no more' % preview['schedule']))


@schedules_app.command('slots')
def schedules_slots(ref: str = SCHEDULE_REF,
                    limit: Optional[int] = typer.Option(None, '--limit', help='Slots to show (default 50).'),
                    as_json: bool = JSON_OPTION) -> None:
    """What each recent slot did, newest first: fired (with its job), skipped or missed, who took it
    (by: platform or crontab), and why."""
    slots = api_answer(lambda client: client.schedule_slots(ref, limit), as_json)
    zone = api_answer(lambda client: client.schedule(ref), False)['timezone'] if slots else 'UTC'
    rows = table('slot (%s)' % zone, 'outcome', 'by', 'job', 'reason')
    for slot in slots:
        rows.add_row(_zoned(slot['slot_at'], zone), slot['outcome'], slot.get('claimed_by') or '-',
                     slot['job_id'] or '-', Text(slot['reason'] or ''),
                     style=None if slot['outcome'] == 'fired' else 'yellow')
    print_wide(rows)
    console.print(Text('%d slot(s)' % len(slots)))


@pools_app.command('list')
def pools_list(as_json: bool = JSON_OPTION) -> None:
    """Pools with their slots, how many are taken and by whom (job:host)."""
    pools = api_answer(lambda client: client.pools(), as_json)
    rows = table('name', 'slots', 'in use', 'holders', 'description')
    for pool in pools:
        rows.add_row(Text(pool['name']), str(pool['slots']), str(pool['in_use']), Text(', '.join(pool['holders'])),
                     Text(pool['description'] or ''))
    print_wide(rows)


@pools_app.command('set')
def pools_set(name: str = typer.Argument(..., help='The pool, e.g. backup.'),
              slots: int = typer.Argument(..., help='How many host runs may hold it at once, fleet-wide.'),
              description: Optional[str] = typer.Option(None, '--description', help='What it protects.'),
              as_json: bool = JSON_OPTION) -> None:
    """Create a pool or resize it (holders keep their slots). Needs an admin token."""
    from runner_service.schemas import PoolSet
    _request(PoolSet, slots=slots, description=description)
    pool = api_answer(lambda client: client.set_pool(name, slots, description), as_json)
    typer.echo('pool %s: %d slots, %d in use' % (pool['name'], pool['slots'], pool['in_use']))


@pools_app.command('delete')
def pools_delete(name: str = typer.Argument(..., help='The pool.'), as_json: bool = JSON_OPTION) -> None:
    """Delete a pool. Needs an admin token."""
    typer.echo('pool %s deleted' % api_answer(lambda client: client.delete_pool(name), as_json)['name'])


@plans_app.command('preview', short_help='Which host in which lane, and when the run would end.')
@shared_options(TARGET_OPTIONS)
def plans_preview(playbook: Optional[str] = typer.Argument(None, help='A playbook, with --inventory (and --limit): '
                                                                      'the hosts it would run on.'),
                  hosts: Optional[str] = typer.Option(None, '--hosts', help='The hosts: h1,h2,...'),
                  lanes: int = typer.Option(..., '--lanes', help='How many lanes.'),
                  start: Optional[str] = typer.Option(None, '--start', help='When it would start (ISO; default now).'),
                  window_end: Optional[str] = typer.Option(None, '--window-end', help='When it must be over: ISO, or '
                                                           'HH:MM (local, the next one after the start).'),
                  as_json: bool = JSON_OPTION, **options) -> None:
    """Split the hosts (--hosts, --tags, or PLAYBOOK with --inventory) into --lanes balanced by
    their estimated durations: each lane's hosts and times, the predicted finish, the lower bound,
    and a warning when it overruns --window-end (the exit code stays 0)."""
    from runner_service.schemas import PlanPreviewRequest
    begin = _point(start, '--start') if start else None
    request = _request(PlanPreviewRequest, '--hosts/--tags/PLAYBOOK', playbook=playbook, lanes=lanes, start=begin,
                       hosts=[host.strip() for host in hosts.split(',') if host.strip()] if hosts else None,
                       window_end=_point(window_end, '--window-end', begin) if window_end else None, **options)
    with api_client() as client:
        preview = client.preview_plan(request)
    if as_json:
        print_json(preview)
    else:
        rows = table('lane', 'hosts', 'estimate s', 'start', 'end')
        for lane in preview['lanes']:
            planned = lane['hosts']
            rows.add_row(str(lane['lane']), Text(', '.join(host['host'] for host in planned)),
                         '%.0f' % lane['seconds'], _zoned(planned[0]['start'] if planned else None),
                         _zoned(planned[-1]['end'] if planned else None))
        print_wide(rows)
        took = (dt.datetime.fromisoformat(preview['finish']) - dt.datetime.fromisoformat(preview['start']))
        typer.echo('predicted finish: %s (%.0f s)' % (_zoned(preview['finish']), took.total_seconds()))
        typer.echo('lower bound: %.0f s (no plan of %d lanes can be shorter)' % (preview['lower_bound_seconds'], lanes))
        if preview['window_end'] is not None:
            typer.echo('window ends: %s: %s' % (_zoned(preview['window_end']),
                                                'fits' if preview['fits'] else 'overruns'))
    if preview['warning']:
        if not as_json:
            typer.echo('warning: %s' % preview['warning'])
        typer.echo('dbfleet: warning: %s' % preview['warning'], err=True)


@windows_app.command('list')
def windows_list(as_json: bool = JSON_OPTION) -> None:
    """Maintenance windows: when, how long, which schedules they hold back, and the next occurrence."""
    windows = api_answer(lambda client: client.windows(), as_json)
    rows = table('name', 'when', 'lasts', 'scope', 'next (or current)', 'description')
    for window in windows:
        upcoming = window['occurrences'][0] if window['occurrences'] else None
        rows.add_row(Text(window['name']), Text(_window_when(window)), _duration_text(window['duration_seconds']),
                     Text('tags: %s' % window['tags'] if window['tags'] else 'every schedule'),
                     '%s to %s' % (_zoned(upcoming['start']), _zoned(upcoming['end'])) if upcoming else 'over',
                     Text(window['description'] or ''))
    print_wide(rows)
    console.print(Text('%d window(s)' % len(windows)))


@windows_app.command('create', short_help='A blackout: recurring (--cron) or once (--at), for --duration.')
def windows_create(name: str = typer.Argument(..., help='A name for the window, e.g. db-upgrade.'),
                   cron: Optional[str] = typer.Option(None, '--cron', help='Recurring: starts at each fire of this '
                                                      'cron expression (5 fields, 6 with seconds first, @weekly).'),
                   at: Optional[str] = typer.Option(None, '--at', help='Once, from this ISO time (naive means in '
                                                    '--tz).'),
                   duration: str = typer.Option(..., '--duration', help='How long each occurrence lasts: 2h, 90m, '
                                                '3600.'),
                   tz: Optional[str] = typer.Option(None, '--tz', help='IANA time zone of --cron or --at (default '
                                                    'UTC).'),
                   tags: Optional[str] = typer.Option(None, '--tags', help='Only schedules whose job targets tags '
                                                      'with a host matching this expression (default: every '
                                                      'schedule).'),
                   description: Optional[str] = typer.Option(None, '--description', help='Why.'),
                   as_json: bool = JSON_OPTION) -> None:
    """Create a maintenance window: the schedules in its scope skip their slots inside it, or defer
    them to its end (their --window-policy). Needs an admin token."""
    from runner_service.schemas import WindowCreate
    kind, start = _one_trigger({'recurring': ('--cron EXPR', cron), 'absolute': ('--at ISO', at)})
    request = _request(WindowCreate, name=name, kind=kind, start=start, timezone=tz, tags=tags,
                       duration_seconds=_seconds(duration, '--duration'), description=description)
    window = api_answer(lambda client: client.create_window(request), as_json)
    upcoming = window['occurrences'][0] if window['occurrences'] else None
    typer.echo('window %s: %s for %s; next %s' % (window['name'], _window_when(window),
                                                   _duration_text(window['duration_seconds']),
                                                   '%s to %s' % (_zoned(upcoming['start']), _zoned(upcoming['end']))
                                                   if upcoming else 'none: it is over'))


@windows_app.command('delete')
def windows_delete(ref: str = typer.Argument(..., help='A window id or name.'), as_json: bool = JSON_OPTION) -> None:
    """Delete a maintenance window. Needs an admin token."""
    typer.echo('window %s deleted' % api_answer(lambda client: client.delete_window(ref), as_json)['name'])


def _window_when(window: dict) -> str:
    return '%s %s (%s)' % ('cron' if window['kind'] == 'recurring' else 'at', window['start'], window['timezone'])


def _duration_text(seconds: int) -> str:
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60)):
        if seconds % size == 0:
            return '%d%s' % (seconds // size, unit)
    return '%ds' % seconds



# --- the service's processes -------------------------------------------------------------------

QUEUE_OPTION = typer.Option(['default'], '--queue', '-q', help='Queue to work on (repeat for several, in order).')


@app.command('api')
def api(host: str = typer.Option('127.0.0.1', help='Address to listen on.'),
        port: int = typer.Option(8080, help='Port to listen on.'),
        log_level: str = typer.Option('info', help='uvicorn log level.')) -> None:
    """Serve the REST API (/api/v1, /healthz, /openapi.json); reconciles the queues with the store."""
    from runner_service.processes import run_api
    run_api(host, port, log_level)


@app.command('worker')
def worker(queues: list[str] = QUEUE_OPTION,
           processes: int = typer.Option(1, '--processes', '-n', min=1, help='Worker processes (an RQ pool).'),
           burst: bool = typer.Option(False, help='Stop when the queues are empty.'),
           name: Optional[str] = typer.Option(None, help='Worker name (default: RQ picks one).')) -> None:
    """Run jobs from the queues with ansible-runner (RQ worker, RQ scheduler enabled for retries)."""
    from dbfleet.settings import get_settings
    from runner_service.processes import run_worker
    run_worker(get_settings().redis_url, queues, processes=processes, burst=burst, name=name)


@app.command('up')
def up(host: str = typer.Option('127.0.0.1', help='API address.'), port: int = typer.Option(8080, help='API port.'),
       workers: int = typer.Option(2, '--workers', '-n', min=1, help='Worker processes.'),
       queues: list[str] = QUEUE_OPTION) -> None:
    """API, workers and scheduler on this machine, supervised; a private Redis unless DBFLEET_REDIS_URL is set."""
    from dbfleet.settings import get_settings
    from runner_service.processes import run_up
    try:
        status = run_up(host, port, workers, queues, get_settings().var_dir)
    except RuntimeError as exc:  # no redis-server, or it did not start
        fail(str(exc))
    raise typer.Exit(status)


@app.command('scheduler')
def scheduler_command() -> None:
    """Fire due schedule slots as jobs (second precision); several may run, each slot fires once."""
    import logging

    from runner_service.processes import run_scheduler
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    run_scheduler()


@app.command('reconcile')
def reconcile_command() -> None:
    """One reconciler pass: release waiting jobs, time out overdue ones, mark lost ones, re-enqueue
    what Redis forgot. The API does this on its own every DBFLEET_RECONCILE_SECONDS."""
    from runner_service.jobs.reconciler import reconcile
    from runner_service.runtime import Runtime
    runtime = Runtime()
    try:
        print_json(reconcile(runtime))
    finally:
        runtime.close()


def main() -> None:
    app()


if __name__ == '__main__':
    main()
