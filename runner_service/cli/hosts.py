"""`dbfleet hosts ...`: database hosts, their attributes and profiles, through the API when
DBFLEET_API_URL is set (and --store is not), else from the store: the same services, the same output."""

from __future__ import annotations

from typing import Optional

import typer

from runner_service.cli.fleet import DIRECT_STORE_OPTION, fleet, request
from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import console, fail, print_json, print_wide, table, when

hosts_app = typer.Typer(help='Database hosts and their profiles.', no_args_is_help=True)


@hosts_app.command('list')
def hosts_list(tags: Optional[str] = typer.Option(None, '--tags', help="Tag filter, e.g. 'large and not maintenance'."),
               search: Optional[str] = typer.Option(None, '--search', '-q', help='Text in the name, address or '
                                                    'attributes (any case).'),
               as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """List hosts with their tags and a fact summary."""
    from dbfleet.profiles import human_bytes
    with fleet(store) as reach:
        records = reach.hosts(tags, search)
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
              store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Add a host or set its attributes (owner, business, rack, purchase_date, warranty_end, ...)."""
    from runner_service.fleet.schemas import HostUpdate
    values = {}
    for item in attributes:
        key, separator, value = item.partition('=')
        if not separator or not key:
            fail('attribute %r is not key=value' % item)
        values[key] = value or None
    change = request(HostUpdate, address=address, port=port, attributes=values)
    with fleet(store) as reach:
        reach.set_host(host, change)
    typer.echo('%s: %s' % (host, ', '.join('%s=%s' % item for item in values.items())))


@hosts_app.command('delete')
def hosts_delete(host: str, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Remove a host with its facts and tags; its jobs, backups, tag history and the audit log keep what it had."""
    with fleet(store) as reach:
        tags = reach.delete_host(host)['tags']
    typer.echo('%s: deleted%s' % (host, ' (tags: %s)' % ', '.join(tags) if tags else ''))


@hosts_app.command('profile')
def hosts_profile(host: str, as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Everything known about one database: facts summary, tags by dimension with evidence, tag history,
    recent jobs and host runs, backups, crontab entries."""
    from dbfleet.profiles import human_bytes
    with fleet(store) as reach:
        profile = reach.profile(host)
    if as_json:
        print_json(profile)
        return
    record = profile['host']
    console.rule('[bold]%s' % host)
    collected = profile['facts_collected_at']
    console.print('address %s:%s   facts collected %s' % (record['address'] or '-', record['port'] or '-',
                                                           when(collected) if collected else 'never'))
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
            tags.add_row(dimension, tag['name'], tag['source'], when(tag['since']), when(tag['expires_at']),
                         ', '.join('%s=%s' % item for item in sorted((tag.get('evidence') or {}).items())))
    if profile['tags']:
        print_wide(tags)
    else:
        console.print('no tags')
    _section('tag history', profile['tag_history'], ('when', 'tag', 'change', 'who'),
             lambda event: (when(event['at']), event['tag'], event['action'], event['who'] or '-'))
    _section('recent jobs', profile['jobs'], ('job', 'playbook', 'template', 'status', 'created', 'recap'),
             lambda job: (job['id'], job['playbook'], job['template'] or '-', job['status'], when(job['created_at']),
                          ' '.join('%s=%s' % item for item in (job['counts'] or {}).items() if item[1]) or '-'))
    _section('host runs', profile['runs'], ('job', 'lane', 'batch', 'status', 'started', 'finished', 'worker'),
             lambda run: (run['job_id'], str(run['lane'] if run['lane'] is not None else '-'),
                          str(run['batch'] if run['batch'] is not None else '-'), run['status'],
                          when(run['started_at']), when(run['finished_at']), run['worker'] or '-'))
    _section('backups', profile['backups'], ('started', 'method', 'status', 'seconds', 'size'),
             lambda backup: (when(backup['started_at']), backup['method'], backup['status'],
                             '%.1f' % backup['duration_seconds'] if backup['duration_seconds'] is not None else '-',
                             human_bytes(backup['bytes'])))
    drills = profile.get('restore_drills')
    if drills is not None:
        console.print('last restore-tested: %s' % (when(drills['last_ok_at']) if drills['last_ok_at'] else
                                                   'never (first backup %s)' % when(drills['first_backup_at'])))
        _section('restore drills', drills['recent'], ('started', 'backup', 'status', 'RTO s', 'RPO s'),
                 lambda drill: (when(drill['started_at']), str(drill['backup_id'] or '-'), drill['status'],
                                '%.1f' % drill['rto_seconds'] if drill['rto_seconds'] is not None else '-',
                                '%.0f' % drill['rpo_seconds'] if drill['rpo_seconds'] is not None else '-'))
    _section('crontab entries', profile['cron_entries'], ('entry', 'mode', 'line', 'schedule', 'next'),
             lambda entry: (entry['name'], entry['mode'], str(entry['line']), entry['expression'],
                            when(entry['next_fire_at'])))


def _section(title: str, items: list, columns: tuple, row) -> None:
    if not items:
        return
    console.print('[bold]%s' % title)
    rows = table(*columns)
    for item in items:
        rows.add_row(*row(item))
    print_wide(rows)
