"""`dbfleet cron ...`: the crontab bridge from the command line.

On the platform side (any machine with DBFLEET_API_URL and a token): list entries, move them
between modes, read their history. The commands a bridged host runs (`dbfleet cron exec|import|
sync|diff|watchdog`) are runner_service.bridge.host_cli's, on the standard library so that a host
needs only `dbfleet[agent]`; the executable sends them there (runner_service.console), and they
are listed here so that `dbfleet cron --help` shows the whole bridge.
"""

from __future__ import annotations

import typer
from rich.text import Text

from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import api_answer, api_client, console, fail, print_json, print_wide, table

cron_app = typer.Typer(help='The crontab bridge: import crontab entries, observe them, take them over, revert, '
                            'sync, fall back.', no_args_is_help=True, add_completion=False)

ENTRY_REF = typer.Argument(..., help='A crontab entry: its schedule id or name (`dbfleet cron list`).')


def _sync_here(host: str) -> list | None:
    """Sync this machine's crontab files when `host` is this machine (as the host commands name
    it); the files written, None when the entry belongs to another host."""
    from runner_service.bridge import host_cli
    from runner_service.bridge.host_api import ConfigError, HostApiError, read_config
    try:
        config = read_config()
        return host_cli.sync_files(config, apply=True) if host == config.host else None
    except (host_cli.Failed, ConfigError, HostApiError) as exc:
        failure = host_cli.as_failure(exc)
        fail(str(failure), failure.code)


@cron_app.command('list')
def cron_list(host: str = typer.Option(None, '--host', help='Only this host\'s entries.'),
              as_json: bool = JSON_OPTION) -> None:
    """Crontab entries known to the platform, with their mode and provenance."""
    entries = api_answer(lambda client: client.cron_entries(host), as_json)
    rows = table('entry', 'mode', 'host', 'file:line', 'when', 'next')
    for entry in entries:
        rows.add_row(Text(entry['name']), entry['mode'], Text(entry['host']),
                     Text('%s:%d' % (entry['file']['name'], entry['line'])), Text(entry['expression']),
                     '-' if entry['paused'] else str(entry['next_fire_at'] or '-'))
    print_wide(rows)
    console.print(Text('%d entr%s' % (len(entries), 'y' if len(entries) == 1 else 'ies')))


def _mode_command(mode: str, ref: str, sync: bool, as_json: bool) -> None:
    entry = api_answer(lambda client: client.cron_mode(ref, mode), False)
    written = _sync_here(entry['host']) if sync else None
    if as_json:
        print_json(entry)
        return
    where = ('%s: crontab updated' % ', '.join(change.source.describe() for change in written) if written else
             'crontab already as wanted' if written is not None else
             'host %s: its crontab follows at its next `dbfleet cron sync` or watchdog run' % entry['host'])
    console.print(Text('%s is now in mode %s (%s)' % (entry['name'], entry['mode'], where)))


SYNC_OPTION = typer.Option(True, '--sync/--no-sync', help='Rewrite the crontab line now when the entry belongs '
                                                          'to this host.')


@cron_app.command('observe')
def cron_observe(ref: str = ENTRY_REF, sync: bool = SYNC_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Crontab runs the entry, wrapped by `dbfleet cron exec`, which reports every run."""
    _mode_command('observe', ref, sync, as_json)


@cron_app.command('takeover')
def cron_takeover(ref: str = ENTRY_REF, sync: bool = SYNC_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The platform runs the entry as a job; its crontab line is commented out, naming the schedule."""
    _mode_command('takeover', ref, sync, as_json)


@cron_app.command('revert')
def cron_revert(ref: str = ENTRY_REF, sync: bool = SYNC_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The crontab line comes back exactly as it was; the platform stops scheduling and watching it."""
    _mode_command('reverted', ref, sync, as_json)


@cron_app.command('history')
def cron_history(ref: str = ENTRY_REF, limit: int = typer.Option(20, '--limit', min=1, max=1000),
                 as_json: bool = JSON_OPTION) -> None:
    """Each recent slot of an entry: run by crontab (ok, FAILED, running), missed, or a platform job."""
    items = api_answer(lambda client: client.cron_history(ref, limit), as_json)
    rows = table('slot', 'state', 'exit', 'took', 'detail')
    for item in items:
        run = item['run'] or {}
        state = item['state']
        rows.add_row(str(item['slot_at']), Text(state.upper() if state in ('failed', 'missed') else state,
                                                style='red' if state in ('failed', 'missed') else ''),
                     '-' if run.get('exit_code') is None else str(run['exit_code']),
                     '-' if run.get('duration_seconds') is None else '%.1f s' % run['duration_seconds'],
                     Text(item['job_id'] and 'job %s' % item['job_id'] or item['reason'] or ''))
    print_wide(rows)


@cron_app.command('runs')
def cron_runs(entry: str = typer.Option(None, '--entry', help='Only this entry\'s runs.'),
              host: str = typer.Option(None, '--host'), limit: int = typer.Option(20, '--limit', min=1, max=1000),
              as_json: bool = JSON_OPTION) -> None:
    """Runs reported by the wrapper, newest first, with the end of their output."""
    runs = api_answer(lambda client: client.cron_runs(entry, host, limit), as_json)
    rows = table('started', 'entry', 'host', 'via', 'status', 'exit', 'took', 'output (end)')
    for run in runs:
        rows.add_row(str(run['started_at']), run['schedule_id'], Text(run['host']), run['via'], run['status'],
                     '-' if run['exit_code'] is None else str(run['exit_code']),
                     '-' if run['duration_seconds'] is None else '%.1f s' % run['duration_seconds'],
                     Text((run['output_tail'] or '').strip().splitlines()[-1:][0] if run['output_tail']
                          and run['output_tail'].strip() else ''))
    print_wide(rows)


def _host_command(name: str, summary: str) -> None:
    """`dbfleet cron NAME` of runner_service.bridge.host_cli, listed in this group's help. The
    executable never reaches this (it sends them there first); `python -m runner_service.cli` does."""
    def forward(context: typer.Context) -> None:
        from runner_service.bridge.host_cli import main
        raise typer.Exit(main([name] + context.args))
    forward.__doc__ = summary
    cron_app.command(name, add_help_option=False,
                     context_settings={'allow_extra_args': True, 'ignore_unknown_options': True,
                                       'allow_interspersed_args': False})(forward)


def _register_host_commands() -> None:
    from runner_service.bridge.host_cli import COMMANDS
    for name, summary in COMMANDS.items():
        _host_command(name, summary)


_register_host_commands()
