"""The `dbfleet` command line."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from runner_service import __version__
from runner_service.paths import collections_dir, project_dir

app = typer.Typer(help='Operate a MySQL/MariaDB fleet with Ansible: facts, tags, jobs, schedules.',
                  no_args_is_help=True, add_completion=False)
console = Console()


@app.callback()
def _root() -> None:
    """Operate a MySQL/MariaDB fleet with Ansible: facts, tags, jobs, schedules."""


@app.command()
def version() -> None:
    """Print the versions of dbfleet and of the Ansible it drives."""
    from importlib.metadata import version as installed_version

    table = Table(show_header=False, box=None)
    table.add_row('dbfleet', __version__)
    table.add_row('ansible-core', installed_version('ansible-core'))
    table.add_row('ansible-runner', installed_version('ansible-runner'))
    table.add_row('project dir', str(project_dir()))
    table.add_row('collections', str(collections_dir()))
    console.print(table)


def main() -> None:
    app()


if __name__ == '__main__':
    main()
