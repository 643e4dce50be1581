"""`dbfleet backups list`: the backup catalog, newest first, through the API when DBFLEET_API_URL is
set (and --store is not), else from the store. `dbfleet backups restore`: a restore as a job, through the API."""

from __future__ import annotations

from typing import Optional

import typer

from runner_service.cli.fleet import DIRECT_STORE_OPTION, fleet
from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import api_client, console, fail, print_json, print_wide, table, when
from runner_service.cli.time_points import point_in_time

backups_app = typer.Typer(help='The backup catalog.', no_args_is_help=True)


@backups_app.command('list')
def backups_list(host: Optional[str] = typer.Option(None, '--host', help='Only this host.'),
                 method: Optional[str] = typer.Option(None, '--method', help='logical or physical.'),
                 status: Optional[str] = typer.Option(None, '--status', help='ok or failed.'),
                 since: Optional[str] = typer.Option(None, '--since', help='Started at or after: 7d (ago), 2026-12-01.'),
                 until: Optional[str] = typer.Option(None, '--until', help='Started before: 1d (ago), 2026-12-31.'),
                 limit: int = typer.Option(50, '--limit', min=1, max=1000, help='At most this many, newest first.'),
                 cursor: Optional[str] = typer.Option(None, '--cursor', help='The next page (as the last one said).'),
                 as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Backup attempts, newest first: host, method, status, start, duration, size, where."""
    from dbfleet.profiles import human_bytes
    filters = dict(host=host, method=method, status=status, since=point_in_time(since, '--since'),
                   until=point_in_time(until, '--until'), limit=limit, cursor=cursor)
    with fleet(store) as reach:
        page = reach.backups(**filters)
    if as_json:
        print_json(page)
        return
    rows = table('started', 'host', 'method', 'status', 'seconds', 'size', 'path')
    for backup in page['backups']:
        rows.add_row(when(backup['started_at']), backup['host'], backup['method'], backup['status'],
                     '%.1f' % backup['duration_seconds'] if backup['duration_seconds'] is not None else '-',
                     human_bytes(backup['bytes']), backup['error'] or backup['path'] or '-')
    print_wide(rows)
    if page['next_cursor'] is not None:
        console.print('older attempts: --cursor %s' % page['next_cursor'])


@backups_app.command('restore', short_help='Restore a host\'s backup to an instant or a GTID, as a job.')
def backups_restore(host: str = typer.Argument(..., help='The backed-up host.'),
                    to: Optional[str] = typer.Option(None, '--to', help="The instant, UTC: '2026-12-04 03:12:00'."),
                    to_gtid: Optional[str] = typer.Option(None, '--to-gtid', help='Up to and including this GTID.'),
                    backup: Optional[int] = typer.Option(None, '--backup', help='Start from this backup id.'),
                    into: str = typer.Option('scratch', '--into', help='scratch (a sandbox) or an inventory host '
                                             '(admin).'),
                    schema: Optional[str] = typer.Option(None, '--schema', help='One database (logical backups).'),
                    force: bool = typer.Option(False, '--force', help='Restore over a server with the databases, a '
                                               'binary log or replicas.'),
                    wait: bool = typer.Option(False, '--wait', help='Follow the job to its end.'),
                    as_json: bool = JSON_OPTION) -> None:
    """Launch a restore through the API: the newest successful backup of HOST started before the target, its
    archived binlogs replayed up to --to or --to-gtid, then verified. Prints the job id (with --wait, its
    result). Exit code: 2 refused; with --wait 0 successful, 1 otherwise."""
    from runner_service.cli.inputs import request_model
    from runner_service.cli.job_view import show_launched
    from runner_service.fleet.schemas import RestoreRequest
    if (to is None) == (to_gtid is None):
        fail('give --to TIME or --to-gtid GTID (exactly one)')
    request = request_model(RestoreRequest, whole='restore', host=host, to=restore_instant(to) if to else None,
                            to_gtid=to_gtid, backup=backup, into=into, schema=schema, force=force)
    with api_client() as client:
        launched = client.restore_backup(request)
        job, used = launched['job'], launched['backup']
        if as_json and not wait:
            print_json(launched)
            return
        if not as_json:
            typer.echo('restoring %s from backup %d (%s, started %s) into %s' % (
                host, used['id'], used['method'], when(used['started_at']), into), err=True)
        show_launched(client, job, wait, as_json)


def restore_instant(text: str):
    """--to as an aware UTC datetime: 'YYYY-MM-DD HH:MM:SS' (UTC) or ISO 8601 with a zone; exit 2 otherwise."""
    import datetime as dt
    value = text.strip()
    try:
        moment = dt.datetime.fromisoformat(value[:-1] + '+00:00' if value.endswith('Z') else value)
    except ValueError:
        fail("--to %r is not a time: give 'YYYY-MM-DD HH:MM:SS' (UTC)" % text[:100])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)
