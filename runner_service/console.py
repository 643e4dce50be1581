"""The `dbfleet` executable. `dbfleet cron exec ...` is the wrapper crontab runs for every entry
of a bridged host, every minute on many: it goes straight to runner_service.bridge.cron_exec
(standard library only) before the command line and its libraries are loaded. Everything else
is the Typer application in runner_service.cli."""

from __future__ import annotations

import sys


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[:2] == ['cron', 'exec']:
        from runner_service.bridge.cron_exec import main as cron_exec
        raise SystemExit(cron_exec(arguments[2:]))
    from runner_service.cli import main as cli
    cli()


if __name__ == '__main__':
    main()
