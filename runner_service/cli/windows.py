"""`dbfleet windows ...`: maintenance windows, the blackouts that hold schedules back, through the
API."""

from __future__ import annotations

from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.inputs import one_trigger, parse_seconds, request_model
from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import api_answer, console, print_wide, table, zoned

windows_app = typer.Typer(help='Maintenance windows (blackouts for schedules), through the API: list, create, '
                               'delete.', no_args_is_help=True)


@windows_app.command('list')
def windows_list(as_json: bool = JSON_OPTION) -> None:
    """Maintenance windows: when, how long, which schedules they hold back, and the next occurrence."""
    windows = api_answer(lambda client: client.windows(), as_json)
    rows = table('name', 'when', 'lasts', 'scope', 'next (or current)', 'description')
    for window in windows:
        upcoming = window['occurrences'][0] if window['occurrences'] else None
        rows.add_row(Text(window['name']), Text(_window_when(window)), _duration_text(window['duration_seconds']),
                     Text('tags: %s' % window['tags'] if window['tags'] else 'every schedule'),
                     '%s to %s' % (zoned(upcoming['start']), zoned(upcoming['end'])) if upcoming else 'over',
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
    kind, start = one_trigger({'recurring': ('--cron EXPR', cron), 'absolute': ('--at ISO', at)})
    request = request_model(WindowCreate, name=name, kind=kind, start=start, timezone=tz, tags=tags,
                            duration_seconds=parse_seconds(duration, '--duration'), description=description)
    window = api_answer(lambda client: client.create_window(request), as_json)
    upcoming = window['occurrences'][0] if window['occurrences'] else None
    typer.echo('window %s: %s for %s; next %s' % (window['name'], _window_when(window),
                                                   _duration_text(window['duration_seconds']),
                                                   '%s to %s' % (zoned(upcoming['start']), zoned(upcoming['end']))
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
