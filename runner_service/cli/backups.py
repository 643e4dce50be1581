"""`dbfleet backups list|show-id|keep|unkeep`: the backup catalog, newest first, and pins, through
the API when DBFLEET_API_URL is set (and --store is not), else from the store."""

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
                 pinned: Optional[bool] = typer.Option(None, '--pinned/--unpinned', help='Only pinned or unpinned.',
                                                       show_default=False),
                 include_removed: bool = typer.Option(False, '--include-removed',
                                                      help='Also backups retention removed.'),
                 as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Backup attempts, newest first: id, host, method, status, start, duration, size, flags, where."""
    from dbfleet.profiles import human_bytes
    filters = dict(host=host, method=method, status=status, since=point_in_time(since, '--since'),
                   until=point_in_time(until, '--until'), limit=limit, cursor=cursor, pinned=pinned,
                   include_removed=include_removed or None)
    with fleet(store) as reach:
        page = reach.backups(**filters)
    if as_json:
        print_json(page)
        return
    rows = table('id', 'started', 'host', 'method', 'status', 'seconds', 'size', 'flags', 'path')
    for backup in page['backups']:
        rows.add_row(str(backup['id']), when(backup['started_at']), backup['host'], backup['method'], backup['status'],
                     '%.1f' % backup['duration_seconds'] if backup['duration_seconds'] is not None else '-',
                     human_bytes(backup['bytes']), flags(backup) or '-',
                     backup['error'] or backup['path'] or '-')
    print_wide(rows)
    if page['next_cursor'] is not None:
        console.print('older attempts: --cursor %s' % page['next_cursor'])


def flags(backup: dict) -> str:
    """pinned, removed, partial kept, restore-tested: what the catalog says beyond the attempt."""
    found = []
    if backup.get('pinned'):
        found.append('pinned')
    if backup.get('removed_at'):
        found.append('removed %s' % when(backup['removed_at']))
    if backup.get('kept_partial'):
        found.append('partial kept')
    if backup.get('restore_test_status'):
        found.append('restore %s %s' % (backup['restore_test_status'], when(backup['restore_tested_at'])))
    return ', '.join(found)


@backups_app.command('show-id')
def backups_show_id(backup_id: int = typer.Argument(..., min=1, help='The id `dbfleet backups list` shows.'),
                    as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """One backup attempt, every field."""
    with fleet(store) as reach:
        backup = reach.backup(backup_id)
    show_backup(backup, as_json)


@backups_app.command('keep')
def backups_keep(backup_id: int = typer.Argument(..., min=1, help='The id `dbfleet backups list` shows.'),
                 as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Pin a backup: retention never removes it (operator; audited)."""
    set_pin(backup_id, True, as_json, store)


@backups_app.command('unkeep')
def backups_unkeep(backup_id: int = typer.Argument(..., min=1, help='The id `dbfleet backups list` shows.'),
                   as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Unpin a backup: retention may remove it again (admin; audited)."""
    set_pin(backup_id, False, as_json, store)


def set_pin(backup_id: int, pinned: bool, as_json: bool, store: str | None) -> None:
    with fleet(store) as reach:
        backup = reach.keep_backup(backup_id, pinned)
    show_backup(backup, as_json)


def show_backup(backup: dict, as_json: bool) -> None:
    if as_json:
        print_json(backup)
        return
    rows = table('field', 'value')
    for name, value in backup.items():
        rows.add_row(name, '-' if value is None else str(value))
    print_wide(rows)
