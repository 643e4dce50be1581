"""`dbfleet backups list`: the backup catalog, newest first, through the API when DBFLEET_API_URL is
set (and --store is not), else from the store."""

from __future__ import annotations

from typing import Optional

import typer

from runner_service.cli.fleet import DIRECT_STORE_OPTION, fleet
from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import console, print_json, print_wide, table, when
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
    rows = table('started', 'host', 'method', 'status', 'seconds', 'size', 'copies', 'path')
    for backup in page['backups']:
        rows.add_row(when(backup['started_at']), backup['host'], backup['method'], backup['status'],
                     '%.1f' % backup['duration_seconds'] if backup['duration_seconds'] is not None else '-',
                     human_bytes(backup['bytes']), copies_cell(backup.get('copies') or []),
                     backup['error'] or backup['path'] or '-')
    print_wide(rows)
    if page['next_cursor'] is not None:
        console.print('older attempts: --cursor %s' % page['next_cursor'])


def copies_cell(copies: list[dict]) -> str:
    """'offsite ok, s3 FAILED': each repository's latest copy of the backup."""
    latest = {copy['repository']: copy['status'] for copy in copies}
    return ', '.join('%s %s' % (name, 'ok' if status == 'ok' else 'FAILED') for name, status in latest.items()) or '-'
