"""The `dbfleet` command line. Commands are thin: they call the same service functions as the
Ansible plugins (runner_service.inspection, runner_service.profiles, the store) and print."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from runner_service import __version__

app = typer.Typer(help='Operate a MySQL/MariaDB fleet with Ansible: facts, tags, jobs, schedules.',
                  no_args_is_help=True, add_completion=False)
hosts_app = typer.Typer(help='Database hosts and their profiles.', no_args_is_help=True)
tags_app = typer.Typer(help='Tags: list, add, remove, explain; rules files.', no_args_is_help=True)
rules_app = typer.Typer(help='Tag rules files.', no_args_is_help=True)
store_app = typer.Typer(help='The store: migrations.', no_args_is_help=True)
tokens_app = typer.Typer(help='API bearer tokens: create, list, revoke.', no_args_is_help=True)
jobs_app = typer.Typer(help='Jobs, through the API (DBFLEET_API_URL, DBFLEET_TOKEN): launch, list, show, logs, '
                            'cancel, relaunch.', no_args_is_help=True)
app.add_typer(hosts_app, name='hosts')
app.add_typer(tags_app, name='tags')
tags_app.add_typer(rules_app, name='rules')
app.add_typer(store_app, name='store')
app.add_typer(tokens_app, name='tokens')
app.add_typer(jobs_app, name='jobs')

console = Console()
JSON_OPTION = typer.Option(False, '--json', help='Print JSON instead of a table.')
STORE_OPTION = typer.Option(None, '--store', envvar='DBFLEET_STORE_URL', help='Store URL (default: DBFLEET_STORE_URL).',
                            show_envvar=False)


def fail(message: str, code: int = 2) -> None:
    """A user error: one line on stderr, exit code 2 (or `code`)."""
    typer.echo('dbfleet: %s' % message, err=True)
    raise typer.Exit(code)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + '\n')


@contextmanager
def opened_store(url: str | None):
    from runner_service.store import StoreError, open_store
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


def table(*columns: str) -> Table:
    result = Table(*columns, header_style='bold', box=None, pad_edge=False)
    return result


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

    from runner_service.settings import get_settings

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
    from runner_service.store import StoreError, migrate
    from runner_service.settings import get_settings
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
    from runner_service.store import StoreError, migrate
    from runner_service.settings import get_settings
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
    from runner_service.tags import TagExpressionError, parse_tag_expression
    try:
        matches = parse_tag_expression(tags) if tags else None
    except TagExpressionError as exc:
        fail('bad --tags filter: %s' % str(exc).replace('\n', ' '))
    with opened_store(store) as opened:
        records = [record for record in opened.inventory(fact_paths=['server.version.full', 'replication.role',
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
        opened.upsert_host(host, address=address, port=port, attributes=values)
    typer.echo('%s: %s' % (host, ', '.join('%s=%s' % item for item in values.items())))


@hosts_app.command('profile')
def hosts_profile(host: str, as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """Everything known about one database: facts summary, tags by dimension with evidence, tag history."""
    from runner_service.profiles import host_profile
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
        tags = opened.list_tags()
    if as_json:
        print_json(tags)
        return
    rows = table('tag', 'dimension', 'kind', 'hosts', 'description')
    for tag in tags:
        rows.add_row(tag['name'], tag['dimension'] or '-', tag['kind'], str(tag['hosts']), tag['description'] or '')
    console.print(rows)


def _manual(host: str, tags: list[str], state: str, expires: str | None, store: str | None) -> None:
    import getpass

    from runner_service.inspection import InspectionError, TagRequest, apply_tags
    try:
        outcome = apply_tags(TagRequest(host=host, manual_tags=tags, state=state, expires=expires, store_url=store,
                                        who='cli:%s' % getpass.getuser()))
    except InspectionError as exc:
        fail(str(exc))
    changed = outcome.added if state == 'present' else outcome.removed
    typer.echo('%s: %s %s' % (host, 'added' if state == 'present' else 'removed', ', '.join(changed) or 'nothing'))


@tags_app.command('add')
def tags_add(host: str, tags: list[str] = typer.Argument(..., help='Tag names.'),
             expires: Optional[str] = typer.Option(None, '--expires', help='7d, 12h, 2026-12-31, ...'),
             store: Optional[str] = STORE_OPTION) -> None:
    """Set manual tags on a host."""
    _manual(host, tags, 'present', expires, store)


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
    from runner_service.inspection import InspectionError, explain
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
    from runner_service.tags import RulesError, load_rules
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
                  role: str = typer.Option(..., '--role', help='viewer (read), operator (run jobs) or admin.'),
                  as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """Create an API token. It is printed once: only its hash is kept."""
    import getpass

    from runner_service.tokens import ROLES, issue
    if role not in ROLES:
        fail('--role must be one of %s, got %r' % (', '.join(ROLES), role))
    with opened_store(store) as opened:
        try:
            token, record = issue(opened, name, role, created_by='cli:%s' % getpass.getuser())
        except ValueError as exc:
            fail(str(exc))
    if as_json:
        print_json(dict(record, token=token))
        return
    # The note goes to stderr, so TOKEN=$(dbfleet tokens create ...) captures the token alone.
    typer.echo('token %s (%s) created; it cannot be shown again: keep it now.' % (name, role), err=True)
    typer.echo(token)


@tokens_app.command('list')
def tokens_list(show_all: bool = typer.Option(False, '--all', help='Include revoked tokens.'),
                as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """API tokens by name, with their role and use (never the tokens or their hashes)."""
    with opened_store(store) as opened:
        tokens = opened.list_tokens(include_revoked=show_all)
    if as_json:
        print_json(tokens)
        return
    rows = table('name', 'role', 'created', 'last used', 'revoked')
    for token in tokens:
        # Text, not markup: a name such as '[/x]' is printed as it is.
        rows.add_row(Text(token['name']), token['role'], _when(token['created_at']), _when(token['last_used_at']),
                     _when(token['revoked_at']))
    console.print(rows)
    console.print('%d token(s)' % len(tokens))


@tokens_app.command('revoke')
def tokens_revoke(name: str, store: Optional[str] = STORE_OPTION) -> None:
    """Revoke an API token for good (the name is not reused)."""
    with opened_store(store) as opened:
        try:
            record = opened.revoke_token(name)
        except ValueError as exc:
            fail(str(exc))
    typer.echo('token %s revoked at %s' % (name, _when(record['revoked_at'])))


def _when(value) -> str:
    return str(value)[:19] if value is not None else '-'


# --- jobs --------------------------------------------------------------------------------------
# These commands talk to the API only: requests are the API's own models (JobCreate, Relaunch,
# Dependency), answers are read with its response models (runner_service.client).

WAIT_OPTION = typer.Option(False, '--wait', help='Follow the job to its end (exit 0 if successful, else 1).')
JOB_ID_ARGUMENT = typer.Argument(..., help='A job id.')
HOST_COLUMNS = ('ok', 'changed', 'failed', 'unreachable', 'skipped')
# Option names of JobCreate's fields, for messages about invalid values.
JOB_OPTIONS = {'playbook': 'PLAYBOOK', 'extra_vars': '-e', 'depends_on': '--after', 'max_retries': '--retries'}
TASK_START_EVENTS = ('playbook_on_task_start', 'playbook_on_handler_task_start')
RESULT_EVENTS = ('runner_on_ok', 'runner_on_failed', 'runner_on_skipped', 'runner_on_unreachable')
HOST_FAILED_EVENTS = ('runner_on_failed', 'runner_on_unreachable')


@contextmanager
def api_client():
    """An ApiClient for DBFLEET_API_URL and DBFLEET_TOKEN. An API error ends the command with one
    line: exit 2 when the API refused the request or could not be reached, 1 when it failed."""
    from runner_service.client import ApiClient, ApiError
    client = ApiClient()
    try:
        yield client
    except ApiError as exc:
        fail(exc.detail, 1 if exc.status is not None and exc.status >= 500 else 2)
    finally:
        client.close()


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
    from runner_service.durations import TimeSpecError, parse_duration
    if text.strip().isdigit():
        return int(text)
    try:
        return int(parse_duration(text).total_seconds())
    except TimeSpecError as exc:
        fail('%s: %s' % (option, exc))


def _invalid(exc, option: str | None = None) -> str:
    """A pydantic ValidationError of a request model as one line, in the command's option names."""
    parts = []
    for error in exc.errors()[:5]:
        field = error['loc'][0] if error['loc'] else None
        name = option or (JOB_OPTIONS.get(field, '--%s' % str(field).replace('_', '-')) if field is not None
                          else '--inventory/--tags')
        parts.append('%s: %s' % (name, error['msg'].removeprefix('Value error, ')))
    return '; '.join(parts)


def _job_request(playbook: str, after: list[str], deadline: str | None, timeout: str | None, **fields):
    """The JobCreate for `jobs launch`; options left out keep the model's defaults."""
    from pydantic import ValidationError

    from runner_service.api.schemas import Dependency, JobCreate
    from runner_service.durations import TimeSpecError, parse_point_in_time
    if timeout is not None:
        fields['timeout'] = _seconds(timeout, '--timeout')
    if deadline is not None:
        try:
            fields['deadline'] = parse_point_in_time(deadline)
        except TimeSpecError as exc:
            fail('--deadline: %s' % exc)
    depends_on = []
    for item in after:
        job_id, _, on = item.partition(':')
        try:
            depends_on.append(Dependency(job_id=job_id, on=on or 'success'))
        except ValidationError as exc:
            fail(_invalid(exc, '--after %s' % item))
    try:
        return JobCreate(playbook=playbook, depends_on=depends_on,
                         **{key: value for key, value in fields.items() if value is not None})
    except ValidationError as exc:
        fail(_invalid(exc))


def _host_table(job: dict) -> None:
    if not job['hosts']:
        console.print('no per-host results (yet)')
        return
    rows = table('host', *HOST_COLUMNS)
    for host, counts in sorted(job['hosts'].items()):
        rows.add_row(Text(host), *(str(counts[column]) for column in HOST_COLUMNS),
                     style='red' if counts['failed'] or counts['unreachable'] else None)
    console.print(rows)


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
        typer.echo(_ended(final['id'], final['status'], final['status_reason']))
    return 0 if final['status'] == 'successful' else 1


def _started(client, job: dict, wait: bool, as_json: bool) -> None:
    if wait:
        raise typer.Exit(_wait(client, job, as_json))
    if as_json:
        print_json(job)
    else:
        typer.echo('%s %s' % (job['id'], job['status']))


@jobs_app.command('launch', short_help='Queue a playbook run; with --wait, follow it to its end.')
def jobs_launch(
        playbook: str = typer.Argument(..., help='A playbook under the project directory, e.g. playbooks/inspect.yml.'),
        inventory: Optional[str] = typer.Option(None, '--inventory', '-i',
                                                help='An inventory file or directory under the project.'),
        tags: Optional[str] = typer.Option(None, '--tags', help="The store's hosts matching a tag expression, "
                                                                "e.g. 'large and not maintenance'."),
        limit: Optional[str] = typer.Option(None, '--limit', '-l', help="ansible's --limit."),
        extra_vars: Optional[list[str]] = typer.Option(
            None, '--extra-vars', '-e', help='key=value (the value read as JSON when it is JSON: 3, true, [..]) or '
                                             '@file.json / @file.yml; repeat, later ones win.'),
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
        wait: bool = WAIT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Queue a playbook run on --inventory or --tags (one of them) and print its id and status.
    With --wait, follow it live (a line a task when stdout is not a terminal), then print the
    per-host results and how it ended. Exit code: 0 when the job ended successful, 1 when it
    ended otherwise (failed, canceled, timed out...), 2 when the request was refused."""
    request = _job_request(playbook, after or [], deadline, timeout, inventory=inventory, tags=tags, limit=limit,
                           extra_vars=_extra_vars(extra_vars or []), check=check, diff=diff, forks=forks, queue=queue,
                           priority=priority, max_retries=retries, idempotency_key=idempotency_key)
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
    # Off a terminal (a pipe, a file) the table keeps its full width rather than cutting ids short.
    if console.is_terminal:
        console.print(rows)
    else:
        natural = console.measure(rows, options=console.options.update(max_width=100000)).maximum
        Console(width=max(console.width, natural)).print(rows)
    more = '; next page: --cursor %s' % page['next_cursor'] if page['next_cursor'] else ''
    console.print(Text('%d job(s)%s' % (len(page['jobs']), more)))


@jobs_app.command('show')
def jobs_show(job_id: str = JOB_ID_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """A job's fields and per-host results."""
    with api_client() as client:
        job = client.get(job_id)
    if as_json:
        print_json(job)
        return
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
    }
    rows = table('field', 'value')
    for name, value in fields.items():
        if value is not None:
            rows.add_row(name, Text(str(value)))
    console.print(rows)
    _host_table(job)


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
    from runner_service.processes import run_worker
    from runner_service.settings import get_settings
    run_worker(get_settings().redis_url, queues, processes=processes, burst=burst, name=name)


@app.command('up')
def up(host: str = typer.Option('127.0.0.1', help='API address.'), port: int = typer.Option(8080, help='API port.'),
       workers: int = typer.Option(2, '--workers', '-n', min=1, help='Worker processes.'),
       queues: list[str] = QUEUE_OPTION) -> None:
    """API, workers and scheduler on this machine, supervised; a private Redis unless DBFLEET_REDIS_URL is set."""
    from runner_service.processes import run_up
    from runner_service.settings import get_settings
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
    from runner_service.reconciler import reconcile
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
