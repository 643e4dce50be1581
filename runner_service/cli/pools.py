"""`dbfleet pools ...`: pools, the fleet-wide concurrency limits of planned jobs, through the API."""

from __future__ import annotations

from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.inputs import request_model
from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import api_answer, print_wide, table

pools_app = typer.Typer(help='Pools (fleet-wide concurrency limits for planned jobs), through the API: list, set, '
                             'delete.', no_args_is_help=True)


@pools_app.command('list')
def pools_list(as_json: bool = JSON_OPTION) -> None:
    """Pools with their slots, how many are taken and by whom (job:host)."""
    pools = api_answer(lambda client: client.pools(), as_json)
    rows = table('name', 'slots', 'in use', 'holders', 'description')
    for pool in pools:
        rows.add_row(Text(pool['name']), str(pool['slots']), str(pool['in_use']), Text(', '.join(pool['holders'])),
                     Text(pool['description'] or ''))
    print_wide(rows)


@pools_app.command('set')
def pools_set(name: str = typer.Argument(..., help='The pool, e.g. backup.'),
              slots: int = typer.Argument(..., help='How many host runs may hold it at once, fleet-wide.'),
              description: Optional[str] = typer.Option(None, '--description', help='What it protects.'),
              as_json: bool = JSON_OPTION) -> None:
    """Create a pool or resize it (holders keep their slots). Needs an admin token."""
    from runner_service.schemas import PoolSet
    request_model(PoolSet, slots=slots, description=description)
    pool = api_answer(lambda client: client.set_pool(name, slots, description), as_json)
    typer.echo('pool %s: %d slots, %d in use' % (pool['name'], pool['slots'], pool['in_use']))


@pools_app.command('delete')
def pools_delete(name: str = typer.Argument(..., help='The pool.'), as_json: bool = JSON_OPTION) -> None:
    """Delete a pool. Needs an admin token."""
    typer.echo('pool %s deleted' % api_answer(lambda client: client.delete_pool(name), as_json)['name'])
