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
app.add_typer(hosts_app, name='hosts')
app.add_typer(tags_app, name='tags')
tags_app.add_typer(rules_app, name='rules')
app.add_typer(store_app, name='store')
app.add_typer(tokens_app, name='tokens')

console = Console()
JSON_OPTION = typer.Option(False, '--json', help='Print JSON instead of a table.')
STORE_OPTION = typer.Option(None, '--store', envvar='DBFLEET_STORE_URL', help='Store URL (default: DBFLEET_STORE_URL).',
                            show_envvar=False)


def fail(message: str) -> None:
    """A user error: one line on stderr, exit code 2."""
    typer.echo('dbfleet: %s' % message, err=True)
    raise typer.Exit(2)


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
