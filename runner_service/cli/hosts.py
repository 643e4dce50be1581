"""`dbfleet hosts ...`: database hosts in the store, their attributes and profiles."""

from __future__ import annotations

from typing import Optional

import typer

from runner_service.cli.options import JSON_OPTION, STORE_OPTION
from runner_service.cli.output import console, fail, print_json, table
from runner_service.cli.store import opened_store

hosts_app = typer.Typer(help='Database hosts and their profiles.', no_args_is_help=True)


@hosts_app.command('list')
def hosts_list(tags: Optional[str] = typer.Option(None, '--tags', help="Tag filter, e.g. 'large and not maintenance'."),
               as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """List hosts with their tags and a fact summary."""
    from dbfleet.profiles import human_bytes
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
    from dbfleet.profiles import host_profile, human_bytes
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
