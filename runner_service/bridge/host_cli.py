"""`dbfleet cron exec|import|sync|diff|watchdog`: the commands a bridged database host runs.

They are what `dbfleet[agent]` installs a host for, so they stand on the standard library
(argparse here, http.client in runner_service.bridge.host_api): no Typer, Rich or httpx to install
on every database host, and nothing to load before crontab's command runs. `runner_service.console`
sends them here on every install, the service's too, so there is one code path; the platform's
side of the bridge (`dbfleet cron list|observe|takeover|revert|history|runs`) is the Typer CLI's
(runner_service.cli.cron).

Errors are one line on stderr, `dbfleet: ...`: exit 2 when the input or the API refused it or the
API could not be reached, 1 when the API failed; `diff` exits 1 when there is a difference, as
diff does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from runner_service.bridge.host_api import (IMPORT_TIMEOUT, ConfigError, HostApi, HostApiError, positive_seconds,
                                           read_config)

# Each command with its line in `dbfleet cron --help` (runner_service.cli.cron lists them there).
COMMANDS = {
    'exec': 'On a bridged host: the wrapper crontab runs (runs COMMAND, reports the run).',
    'import': 'On a bridged host: import a crontab file; its entries are observed from then on.',
    'sync': 'On a bridged host: make its crontab files match the platform.',
    'diff': 'On a bridged host: what `dbfleet cron sync` would change.',
    'watchdog': 'On a bridged host, from crontab every minute: sync, deliver reports, fall back.',
}
HOST_HELP = 'the host\'s name on the platform (default: DBFLEET_HOST, else this machine\'s hostname)'


class Failed(Exception):
    """A command that cannot go on: `message` for stderr, `code` to exit with."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def as_failure(exc: Exception) -> Failed:
    """Failed, ConfigError or HostApiError as one Failed: exit 1 when the API failed, else 2."""
    if isinstance(exc, HostApiError):
        return Failed(exc.detail, 1 if exc.status is not None and exc.status >= 500 else 2)
    return exc if isinstance(exc, Failed) else Failed(str(exc))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, as every dbfleet command
        print('%s: %s' % (self.prog, message), file=sys.stderr)
        raise SystemExit(2)


def _grace(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('not a whole number of seconds: %.40r' % text) from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError('between 0 and 86400 seconds, not %d' % value)
    return value


def _seconds(text: str) -> float:
    try:
        return positive_seconds(text, '--threshold')
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(': ', 1)[1]) from None


def parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """`dbfleet cron` and each of its host commands' parsers."""
    root = _Parser(prog='dbfleet cron', description='The crontab bridge on a bridged host.')
    commands = root.add_subparsers(dest='host_command', required=True, parser_class=_Parser)

    run = commands.add_parser('exec', help=COMMANDS['exec'], description='The wrapper crontab runs: runs '
                              'COMMAND as crontab would (output passed through, same exit code) and reports the run '
                              'to the API; when the API is away the report is spooled and sent later.')
    run.add_argument('--host', help=HOST_HELP)
    run.add_argument('schedule_id', metavar='ID', help='the entry\'s schedule id')
    run.add_argument('command', nargs=argparse.REMAINDER, metavar='-- COMMAND',
                     help='one shell command (run with $SHELL -c, as crontab does), or a program and its arguments')

    imported = commands.add_parser('import', help=COMMANDS['import'], description='Import a crontab: each '
                                   'entry becomes a schedule in mode observe (crontab keeps running it, through the '
                                   'reporting wrapper). Lines that do not parse are reported and left alone.')
    which = imported.add_mutually_exclusive_group(required=True)
    which.add_argument('--user', help='the crontab of this user')
    which.add_argument('--system', action='store_true', help='/etc/crontab')
    which.add_argument('--crond', help='a file in /etc/cron.d, by name')
    which.add_argument('--path', help='a crontab file anywhere')
    imported.add_argument('--path-system', dest='path_system', action='store_true', default=None,
                          help='--path: its lines carry a user field (default: yes under /etc/cron.d)')
    imported.add_argument('--path-user', dest='path_system', action='store_false', help='--path: they do not')
    imported.add_argument('--host', help=HOST_HELP)
    imported.add_argument('--inventory', default='inventories/localhost.yml',
                          help='an inventory under the project that reaches this host, for takeover jobs')
    imported.add_argument('--inventory-host', help='this host\'s name in that inventory (default: localhost with '
                          'the default inventory, else --host)')
    imported.add_argument('--timezone', help='the time zone cron reads the times in (default: this machine\'s)')
    imported.add_argument('--grace', type=_grace, default=60,
                          help='seconds after a slot before a run without a report is flagged missed')
    imported.add_argument('--sync', dest='sync', action='store_true', default=True,
                          help='wrap the imported entries in the file now (observe mode) - the default')
    imported.add_argument('--no-sync', dest='sync', action='store_false', help='leave the file as it is')
    imported.add_argument('--json', dest='as_json', action='store_true', help='print the API\'s answer as JSON')

    sync = commands.add_parser('sync', help=COMMANDS['sync'], description='Make this host\'s '
                               'crontab files match the platform (modes, edits); idempotent.')
    sync.add_argument('--host', help=HOST_HELP)
    diff = commands.add_parser('diff', help=COMMANDS['diff'], description='What `dbfleet cron sync` would '
                               'change in this host\'s crontab files (a unified diff; exit 1 when there is a '
                               'difference, as diff does).')
    diff.add_argument('--host', help=HOST_HELP)

    watchdog = commands.add_parser('watchdog', help=COMMANDS['watchdog'], description='Run from crontab '
                                   'every minute: sync with the platform and deliver spooled reports while it '
                                   'answers; give taken-over entries back to crontab when it has not answered for '
                                   '--threshold seconds, and take them back when it answers again.')
    watchdog.add_argument('--host', help=HOST_HELP)
    watchdog.add_argument('--threshold', type=_seconds, help='seconds without the platform before crontab runs the '
                          'taken-over entries again (default: DBFLEET_CRON_FALLBACK_SECONDS, 300)')
    watchdog.add_argument('--quiet', action='store_true', help='print only when something changed')
    return root, {'exec': run, 'import': imported, 'sync': sync, 'diff': diff, 'watchdog': watchdog}


def agent_help() -> str:
    """What `dbfleet --help` says on an install of the host agent alone (no Typer there)."""
    root, _commands = parsers()
    return root.format_help() + ('\nThis install is the host agent (dbfleet[agent]): the other dbfleet commands '
                                 'need dbfleet[service].\n')


def main(argv: list[str]) -> int:
    """`dbfleet cron COMMAND ...` (argv: what follows `cron`); the exit code."""
    root, commands = parsers()
    if argv[:1] and argv[0] in commands:  # each command's own parser: its errors name it
        arguments = commands[argv[0]].parse_args(argv[1:])
        arguments.host_command = argv[0]
    else:
        arguments = root.parse_args(argv)
    if arguments.host_command == 'exec':
        if arguments.command[:1] == ['--']:
            arguments.command = arguments.command[1:]
        if not arguments.command:  # as the parser says it: this one it cannot tell
            print('dbfleet cron exec: no command after --', file=sys.stderr)
            return 2
    try:
        config = read_config(host=arguments.host)
        return RUNS[arguments.host_command](arguments, config)
    except (Failed, ConfigError, HostApiError) as exc:
        failure = as_failure(exc)
        print('dbfleet: %s' % failure, file=sys.stderr)
        return failure.code


def _exec(arguments, config) -> int:
    from runner_service.bridge.cron_exec import run_wrapped
    return run_wrapped(arguments.schedule_id, arguments.command, config)


def sync_files(config, apply: bool) -> list:
    """Make (apply) or compare this host's crontab files with the platform's entries for
    config.host; the changed files (agent.FileChange). Its notes are printed."""
    from runner_service.bridge import agent
    from runner_service.bridge.crontab import files
    from runner_service.bridge.spool import WatchdogState
    entries = HostApi(config, agent='dbfleet-cron').entries(config.host)
    state = WatchdogState.load(config.spool)
    try:
        changes = agent.plan_sync(entries, state.fallback_ids)
        for change in changes:
            for note in change.notes:
                print(note)
        return agent.apply(changes) if apply else [change for change in changes if change.changed]
    except files.Conflict as exc:
        raise Failed('%s: try again' % exc) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise Failed(str(exc)) from None


def _sync(arguments, config) -> int:
    written = sync_files(config, apply=True)
    for change in written:
        sys.stdout.write(change.diff())
    print('%d file(s) rewritten' % len(written))
    return 0


def _diff(arguments, config) -> int:
    changes = sync_files(config, apply=False)
    for change in changes:
        sys.stdout.write(change.diff())
    return 1 if changes else 0


def _watchdog(arguments, config) -> int:
    from runner_service.bridge import agent
    threshold = arguments.threshold or config.fallback_seconds
    try:
        outcome = agent.watchdog(config, threshold)
    except Exception as exc:  # noqa: BLE001 - one line for crontab's mail, never a traceback
        raise Failed('watchdog: %s' % (getattr(exc, 'detail', None) or exc), 1) from None
    if not arguments.quiet or outcome.get('files_written') or outcome.get('fallback_started') \
            or outcome.get('handed_back'):
        _print_json(outcome)
    return 0


def _import(arguments, config) -> int:
    from runner_service.bridge.crontab import files
    try:
        source = files.source_for(user=arguments.user, system=arguments.system, crond=arguments.crond,
                                  path=arguments.path, path_system=arguments.path_system)
        if source.kind != 'user' and not Path(source.name).is_file():
            raise Failed('%s: no such file' % source.name)
        text = files.read(source)
    except (ValueError, OSError) as exc:
        raise Failed(str(exc)) from None
    inventory_host = arguments.inventory_host
    if inventory_host is None:
        inventory_host = 'localhost' if arguments.inventory == 'inventories/localhost.yml' else config.host
    request = {'host': config.host, 'file': {'kind': source.kind, 'name': source.name, 'system': source.system},
               'text': text, 'inventory': arguments.inventory, 'inventory_host': inventory_host,
               'timezone': arguments.timezone or local_timezone(), 'grace_seconds': arguments.grace,
               'cron_tz': shutil.which('crond', path='/usr/sbin:/usr/bin:/sbin:/bin') is not None}
    result = HostApi(config, timeout=IMPORT_TIMEOUT, agent='dbfleet-cron').import_crontab(request)
    written = sync_files(config, apply=True) if arguments.sync else []
    if arguments.as_json:
        _print_json(dict(result, files_written=[change.source.describe() for change in written]))
        return 0
    rows = [('line', 'entry', 'mode', 'when', 'command')]
    for item in result['entries']:
        entry = item['entry']
        rows.append((str(item['line']), entry['name'] + ('' if item['created'] else ' (known)'), entry['mode'],
                     entry['expression'], _shortened(entry['original'])))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)) + '  ' + row[4])
    described = source.describe()
    for note in result.get('reboot', []):
        print('%s:%d: @reboot recorded, not scheduled: %s' % (described, note['line'], note['text']))
    for note in result.get('warnings', []):
        print('%s:%d: %s%s' % (described, note['line'], note['reason'], ': ' + note['text'] if note['text'] else ''))
    for note in result.get('errors', []):
        print('%s:%d: left alone: %s: %s' % (described, note['line'], note['reason'], note['text']))
    count = len(result['entries'])
    print('%d entr%s from %s; %s' % (count, 'y' if count == 1 else 'ies', described,
                                     'crontab lines wrapped' if written else 'no line changed'))
    return 0


RUNS = {'exec': _exec, 'import': _import, 'sync': _sync, 'diff': _diff, 'watchdog': _watchdog}


def local_timezone() -> str:
    """This machine's IANA time zone (what cron reads crontab times in)."""
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


def _shortened(line: str) -> str:
    return line if len(line) <= 60 else line[:57] + '...'


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + '\n')
