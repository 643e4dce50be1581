"""The `dbfleet` executable. The crontab bridge's host commands (`dbfleet cron exec|import|sync|
diff|watchdog`: what a bridged database host runs, the wrapper every minute on many) go straight to
runner_service.bridge.host_cli (standard library only) before the command line and its libraries
are loaded: they are all `dbfleet[agent]` installs. Everything else is the Typer application in
runner_service.cli, which needs `dbfleet[service]`."""

from __future__ import annotations

import sys

from runner_service.bridge.host_cli import COMMANDS as HOST_COMMANDS


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ['cron'] and arguments[1:2] and arguments[1] in HOST_COMMANDS:
        from runner_service.bridge.host_cli import main as host_main
        raise SystemExit(host_main(arguments[1:]))
    try:
        from runner_service.cli import main as cli
    except ModuleNotFoundError as exc:
        if exc.name not in ('typer', 'rich', 'httpx', 'click'):
            raise
        helps = ([], ['--help'], ['-h'])
        if arguments in helps or arguments[:1] == ['cron'] and arguments[1:] in helps:
            from runner_service.bridge.host_cli import agent_help
            sys.stdout.write(agent_help())
            raise SystemExit(0 if arguments[-1:] in (['--help'], ['-h']) else 2) from None
        print('dbfleet: this install has the host agent only (dbfleet[agent]: `dbfleet cron %s`); the rest of the '
              'command line needs dbfleet[service] (%s is missing)' % ('|'.join(HOST_COMMANDS), exc.name),
              file=sys.stderr)
        raise SystemExit(2) from None
    cli()


if __name__ == '__main__':
    main()
