"""What every `dbfleet` command shares: the console, one-line failures (exit 2), JSON and table
output, the API client with its errors turned into those failures, and how times, durations,
field lists and batch plans are printed."""

from __future__ import annotations

import datetime as dt
import json
import sys
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()


def fail(message: str, code: int = 2) -> None:
    """A user error: one line on stderr, exit code 2 (or `code`)."""
    typer.echo('dbfleet: %s' % message, err=True)
    raise typer.Exit(code)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + '\n')


def table(*columns: str) -> Table:
    result = Table(*columns, header_style='bold', box=None, pad_edge=False)
    return result


def print_wide(rows: Table) -> None:
    """Off a terminal (a pipe, a file) the table keeps its full width rather than cutting ids short."""
    if console.is_terminal:
        console.print(rows)
    else:
        natural = console.measure(rows, options=console.options.update(max_width=100000)).maximum
        Console(width=max(console.width, natural)).print(rows)


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


def api_answer(call, as_json: bool):
    """The API's answer to call(client); with --json, print it and end the command."""
    with api_client() as client:
        answer = call(client)
    if as_json:
        print_json(answer)
        raise typer.Exit(0)
    return answer


def when(value) -> str:
    return str(value)[:19] if value is not None else '-'


def seconds_text(value: float | None) -> str | None:
    return None if value is None else '%.1f' % value


def zoned(value, zone: str | None = None) -> str:
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


def fields_table(fields: dict) -> None:
    rows = table('field', 'value')
    for name, value in fields.items():
        if value is not None:
            rows.add_row(name, Text(str(value)))
    print_wide(rows)


def subscriptions_text(notify: dict | None) -> str | None:
    """A template's or a schedule's notify as `failed: ops-hook, ops-mail; slot_missed: ops-hook`."""
    return '; '.join('%s: %s' % (event, ', '.join(names)) for event, names in notify.items()) if notify else None


def plan_text(plan: dict | None) -> str | None:
    if not plan:
        return None
    parts = ['%d lanes' % plan['lanes'] if plan.get('lanes') else None,
             'rolling %s' % ','.join(str(size) for size in plan['rolling']) if plan.get('rolling') else None,
             'max fail %d%%' % plan['max_fail_percentage'] if plan.get('max_fail_percentage') is not None else None,
             'pool %s' % plan['pool'] if plan.get('pool') else None,
             'window ends %s' % plan['window_end'] if plan.get('window_end') else None]
    return ', '.join(part for part in parts if part) or 'one run'
