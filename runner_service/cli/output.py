"""What every `dbfleet` command shares: the console, one-line failures (exit 2), JSON and table
output, and the API client with its errors turned into those failures."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.table import Table

console = Console()
JSON_OPTION = typer.Option(False, '--json', help='Print JSON instead of a table.')
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
