"""`dbfleet tags ...`: tags in the store, manual tags on a host, why a rule holds, and
`dbfleet tags rules check` for rules files."""

from __future__ import annotations

from typing import Optional

import typer

from runner_service.cli.fleet import DIRECT_STORE_OPTION, fleet, request
from runner_service.cli.options import JSON_OPTION, STORE_OPTION
from runner_service.cli.output import console, fail, print_json, table

tags_app = typer.Typer(help='Tags: list, add, remove, explain; rules files.', no_args_is_help=True)
rules_app = typer.Typer(help='Tag rules files.', no_args_is_help=True)
tags_app.add_typer(rules_app, name='rules')


@tags_app.command('list')
def tags_list(as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Tags with their dimension, kind and number of hosts."""
    with fleet(store) as reach:
        tags = reach.tags()
    if as_json:
        print_json(tags)
        return
    rows = table('tag', 'dimension', 'kind', 'hosts', 'description')
    for tag in tags:
        rows.add_row(tag['name'], tag['dimension'] or '-', tag['kind'], str(tag['hosts']), tag['description'] or '')
    console.print(rows)


def _manual(host: str, tags: list[str], state: str, expires: str | None, store: str | None,
            create: bool = False) -> None:
    from runner_service.errors import ServiceError
    from runner_service.fleet.schemas import ManualTags
    from runner_service.fleet.tags import check_tag_names
    try:
        check_tag_names(tags)  # before the request's own check, which would only name a pattern
    except ServiceError as exc:
        fail(exc.detail)
    change = request(ManualTags, host=host, tags=tags, expires=expires, create=create)
    with fleet(store) as reach:
        outcome = reach.change_tags(change, state)
    changed = outcome['added'] if state == 'present' else outcome['removed']
    typer.echo('%s: %s %s' % (host, 'added' if state == 'present' else 'removed', ', '.join(changed) or 'nothing'))


@tags_app.command('add')
def tags_add(host: str, tags: list[str] = typer.Argument(..., help='Tag names.'),
             expires: Optional[str] = typer.Option(None, '--expires', help='7d, 12h, 2026-12-31, ...'),
             create: bool = typer.Option(False, '--create', help='Add the host to the store if it is not there.'),
             store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Set manual tags on a host (a known one, unless --create)."""
    _manual(host, tags, 'present', expires, store, create=create)


@tags_app.command('remove')
def tags_remove(host: str, tags: list[str] = typer.Argument(..., help='Tag names.'),
                store: Optional[str] = DIRECT_STORE_OPTION) -> None:
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
