"""The `dbfleet` command line: one module per command group, assembled here.

The commands that stand alone come first in `dbfleet --help`, then the groups. Command modules
import only typer and rich at the top and everything else inside the command that needs it, so
`dbfleet cron exec` (the wrapper crontab runs every minute on a bridged host) and `dbfleet
version` start without FastAPI, RQ, ansible-runner, SQLAlchemy or uvicorn (tests/unit/test_cli_imports.py).
"""

import typer

from dbfleet.settings import SettingsError
from runner_service.redis_urls import RedisUrlError
from runner_service.cli import service
from runner_service.cli.archive import archive_app
from runner_service.cli.audit import audit
from runner_service.cli.backups import backups_app
from runner_service.cli.credentials import credentials_app
from runner_service.cli.cron import cron_app
from runner_service.cli.hosts import hosts_app
from runner_service.cli.jobs import jobs_app
from runner_service.cli.notifiers import notifiers_app
from runner_service.cli.plans import plans_app
from runner_service.cli.pools import pools_app
from runner_service.cli.schedules import schedules_app
from runner_service.cli.store import store_app
from runner_service.cli.tags import tags_app
from runner_service.cli.templates import templates_app
from runner_service.cli.tokens import tokens_app
from runner_service.cli.version import version
from runner_service.cli.windows import windows_app

app = typer.Typer(help='Operate a MySQL/MariaDB fleet with Ansible: facts, tags, jobs, schedules.',
                  no_args_is_help=True, add_completion=False)


@app.callback()
def _root() -> None:
    """Operate a MySQL/MariaDB fleet with Ansible: facts, tags, jobs, schedules."""


app.command('version')(version)
app.command('audit')(audit)
app.command('api')(service.api)
app.command('worker')(service.worker)
app.command('up')(service.up)
app.command('scheduler')(service.scheduler_command)
app.command('reconcile')(service.reconcile_command)

app.add_typer(hosts_app, name='hosts')
app.add_typer(tags_app, name='tags')
app.add_typer(backups_app, name='backups')
app.add_typer(archive_app, name='archive')
app.add_typer(store_app, name='store')
app.add_typer(tokens_app, name='tokens')
app.add_typer(jobs_app, name='jobs')
app.add_typer(schedules_app, name='schedules')
app.add_typer(pools_app, name='pools')
app.add_typer(plans_app, name='plans')
app.add_typer(windows_app, name='windows')
app.add_typer(cron_app, name='cron')
app.add_typer(templates_app, name='templates')
app.add_typer(credentials_app, name='credentials')
app.add_typer(notifiers_app, name='notifiers')


def main() -> None:
    try:
        app()
    except SettingsError as exc:  # a DBFLEET_* value refused, by whichever command first read them
        typer.echo('dbfleet: %s' % exc, err=True)
        raise SystemExit(2) from None
    except RedisUrlError as exc:  # DBFLEET_REDIS_URL passed the settings' scheme check, not the URL's own
        typer.echo('dbfleet: DBFLEET_REDIS_URL: %s' % exc, err=True)
        raise SystemExit(2) from None


__all__ = ['app', 'main']
