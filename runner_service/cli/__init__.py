"""The `dbfleet` command line."""

import sys


def main() -> None:
    # crontab starts `dbfleet cron exec` for every run of a bridged entry and `dbfleet cron
    # watchdog` every minute, on database hosts that may have only dbfleet[agent]: they load the
    # cron group alone, not the module of every command.
    if sys.argv[1:2] == ['cron']:
        from runner_service.cli.cron import cron_app
        cron_app(args=sys.argv[2:], prog_name='dbfleet cron')
        return
    from runner_service.cli.app import main as main_with_every_command
    main_with_every_command()


__all__ = ['main']
