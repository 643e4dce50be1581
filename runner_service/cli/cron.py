"""`dbfleet cron ...`: the crontab bridge from the command line.

On the platform side (any machine with DBFLEET_API_URL and a token): list entries, move them
between modes, read their history. On a host whose crontab is bridged: import its crontab
files, sync them with the platform, and the two commands crontab itself runs there: the
wrapper `dbfleet cron exec ID -- COMMAND` and `dbfleet cron watchdog`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import typer
from rich.text import Text

from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import api_answer, api_client, console, fail, print_json, print_wide, table

cron_app = typer.Typer(help='The crontab bridge: import crontab entries, observe them, take them over, revert, '
                            'sync, fall back.', no_args_is_help=True, add_completion=False)

HOST_OPTION = typer.Option(None, '--host', help='The host\'s name on the platform (default: DBFLEET_HOST, else '
                                                'this machine\'s hostname).')
ENTRY_REF = typer.Argument(..., help='A crontab entry: its schedule id or name (`dbfleet cron list`).')


def _settings():
    from dbfleet.settings import get_settings
    return get_settings()


def _host(host: str | None) -> str:
    return host or _settings().host


@cron_app.command('import')
def cron_import(user: str = typer.Option(None, '--user', help='The crontab of this user.'),
                system: bool = typer.Option(False, '--system', help='/etc/crontab.'),
                crond: str = typer.Option(None, '--crond', help='A file in /etc/cron.d, by name.'),
                path: Path = typer.Option(None, '--path', help='A crontab file anywhere.'),
                path_system: bool = typer.Option(None, '--path-system/--path-user', help='--path: do its lines '
                                                 'carry a user field (default: yes under /etc/cron.d).'),
                host: str = HOST_OPTION,
                inventory: str = typer.Option('inventories/localhost.yml', '--inventory', help='An inventory under '
                                              'the project that reaches this host, for takeover jobs.'),
                inventory_host: str = typer.Option(None, '--inventory-host', help='This host\'s name in that '
                                                   'inventory (default: localhost with the default inventory, '
                                                   'else --host).'),
                timezone: str = typer.Option(None, '--timezone', help='The time zone cron reads the times in '
                                             '(default: this machine\'s).'),
                grace: int = typer.Option(60, '--grace', help='Seconds after a slot before a run without a report '
                                          'is flagged missed.'),
                sync: bool = typer.Option(True, '--sync/--no-sync', help='Wrap the imported entries in the file '
                                          'now (observe mode) - the default.'),
                as_json: bool = JSON_OPTION) -> None:
    """Import a crontab: each entry becomes a schedule in mode observe (crontab keeps running it,
    through the reporting wrapper). Lines that do not parse are reported and left alone."""
    from runner_service.bridge.crontab import files
    from runner_service.schemas import CronFile, CronImport
    try:
        source = files.source_for(user=user, system=system, crond=crond, path=str(path) if path else None,
                                  path_system=path_system)
        if source.kind != 'user' and not Path(source.name).is_file():
            fail('%s: no such file' % source.name)
        text = files.read(source)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    host = _host(host)
    if inventory_host is None:
        inventory_host = 'localhost' if inventory == 'inventories/localhost.yml' else host
    request = CronImport(host=host, file=CronFile(kind=source.kind, name=source.name, system=source.system),
                         text=text, inventory=inventory, inventory_host=inventory_host,
                         timezone=timezone or local_timezone(), grace_seconds=grace,
                         cron_tz=shutil.which('crond', path='/usr/sbin:/usr/bin:/sbin:/bin') is not None)
    result = api_answer(lambda client: client.cron_import(request), False)
    written = _sync(host, apply=True) if sync else []
    if as_json:
        print_json(dict(result, files_written=[change.source.describe() for change in written]))
        return
    rows = table('line', 'entry', 'mode', 'when', 'command')
    for item in result['entries']:
        entry = item['entry']
        rows.add_row(str(item['line']), Text(entry['name'] + ('' if item['created'] else ' (known)')),
                     entry['mode'], Text(entry['expression']), Text(_command_of(entry['original'])))
    print_wide(rows)
    for note in result['reboot']:
        console.print(Text('%s:%d: @reboot recorded, not scheduled: %s' % (source.describe(), note['line'],
                                                                          note['text'])))
    for note in result['warnings']:
        console.print(Text('%s:%d: %s%s' % (source.describe(), note['line'], note['reason'],
                                            ': ' + note['text'] if note['text'] else '')), style='yellow')
    for note in result['errors']:
        console.print(Text('%s:%d: left alone: %s: %s' % (source.describe(), note['line'], note['reason'],
                                                          note['text'])), style='yellow')
    console.print(Text('%d entr%s from %s; %s' % (len(result['entries']), 'y' if len(result['entries']) == 1 else
                                                  'ies', source.describe(),
                                                  'crontab lines wrapped' if written else 'no line changed')))


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
    written = _sync(entry['host'], apply=True) if sync and entry['host'] == _host(None) else None
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


def _sync(host: str, apply: bool):
    from runner_service.bridge import agent as cron_agent
    from runner_service.bridge.crontab import files
    from runner_service.bridge.spool import WatchdogState
    with api_client() as client:
        entries = client.cron_entries(host)
    state = WatchdogState.load(_settings().cron_spool)
    try:
        changes = cron_agent.plan_sync(entries, state.fallback_ids)
        for change in changes:
            for note in change.notes:
                console.print(Text(note), style='yellow')
        return cron_agent.apply(changes) if apply else [change for change in changes if change.changed]
    except files.Conflict as exc:
        fail('%s: try again' % exc)
    except (OSError, ValueError, RuntimeError) as exc:
        fail(str(exc))


@cron_app.command('sync')
def cron_sync(host: str = HOST_OPTION) -> None:
    """Make this host's crontab files match the platform (modes, edits); idempotent."""
    written = _sync(_host(host), apply=True)
    for change in written:
        console.print(Text(change.diff()))
    console.print(Text('%d file(s) rewritten' % len(written)))


@cron_app.command('diff')
def cron_diff(host: str = HOST_OPTION) -> None:
    """What `dbfleet cron sync` would change in this host's crontab files (a unified diff; exit 1
    when there is a difference, as diff does)."""
    changes = _sync(_host(host), apply=False)
    for change in changes:
        sys.stdout.write(change.diff())
    raise typer.Exit(1 if changes else 0)


@cron_app.command('exec', context_settings={'allow_interspersed_args': False})
def cron_exec(schedule_id: str = typer.Argument(..., help='The entry\'s schedule id.'),
              command: list[str] = typer.Argument(..., help='After --: one shell command (run with $SHELL -c, as '
                                                  'crontab does), or a program and its arguments.'),
              host: str = HOST_OPTION) -> None:
    """The wrapper crontab runs: runs COMMAND as crontab would (output passed through, same exit
    code) and reports the run to the API; when the API is away the report is spooled and sent later.
    The `dbfleet` executable runs it without loading this CLI (runner_service.console)."""
    from runner_service.bridge import cron_exec as wrapper
    if command[:1] == ['--']:  # click keeps the separator once arguments stop being interspersed
        command = command[1:]
    if not command:
        fail('cron exec: no command after --')
    raise typer.Exit(wrapper.run_wrapped(schedule_id, command, wrapper.read_config(host=host)))


@cron_app.command('watchdog')
def cron_watchdog(host: str = HOST_OPTION,
                  threshold: float = typer.Option(None, '--threshold', help='Seconds without the platform before '
                                                  'crontab runs the taken-over entries again (default: '
                                                  'DBFLEET_CRON_FALLBACK_SECONDS, 300).'),
                  quiet: bool = typer.Option(False, '--quiet', help='Print only when something changed.')) -> None:
    """Run from crontab every minute: sync with the platform and deliver spooled reports while it
    answers; give taken-over entries back to crontab when it has not answered for --threshold
    seconds, and take them back when it answers again."""
    from runner_service.bridge import agent as cron_agent
    settings = _settings()
    try:
        outcome = cron_agent.watchdog(settings, _host(host), threshold or settings.cron_fallback_seconds)
    except Exception as exc:  # noqa: BLE001 - one line for crontab's mail, never a traceback
        fail('watchdog: %s' % exc, 1)
    if not quiet or outcome.get('files_written') or outcome.get('fallback_started') or outcome.get('handed_back'):
        print_json(outcome)


def local_timezone() -> str:
    """This machine's IANA time zone (what cron reads crontab times in)."""
    import os
    name = os.environ.get('TZ', '').lstrip(':')
    if name and '/' in name or name == 'UTC':
        return name
    try:
        return Path('/etc/timezone').read_text().strip() or 'UTC'
    except OSError:
        pass
    try:
        target = os.path.realpath('/etc/localtime')
        return target.split('/zoneinfo/', 1)[1] if '/zoneinfo/' in target else 'UTC'
    except OSError:
        return 'UTC'


def _command_of(line: str) -> str:
    return line if len(line) <= 60 else line[:57] + '...'
