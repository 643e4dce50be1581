"""`dbfleet archive run`: keep a binlog stream open per primary into the backup repository (runner_service.archive)."""

from __future__ import annotations

import os
from typing import List, Optional

import typer

from runner_service.cli.output import fail

archive_app = typer.Typer(help='The binary log archive.', no_args_is_help=True)


@archive_app.command('run')
def archive_run(host: List[str] = typer.Option([], '--host', help='A primary to stream (its store address and '
                                               'port, if any, are used); repeat for several.'),
                tags: Optional[str] = typer.Option(None, '--tags', help="And every host of the store this tag "
                                                   "expression matches ('primary'), read again every --refresh "
                                                   'seconds: a failover\'s new primary is picked up.'),
                refresh: float = typer.Option(60.0, '--refresh', min=5, max=3600, help='Seconds between two '
                                              'readings of --tags.'),
                dest: str = typer.Option(..., '--dest', help='The backup repository: <dest>/<host>/binlogs/.'),
                defaults_file: str = typer.Option(os.path.expanduser('~/.my.cnf'), '--defaults-file',
                                                  help='MySQL option file with the login (user, password, socket, '
                                                  'TLS); 0600. Needs REPLICATION SLAVE and BINLOG MONITOR.'),
                poll: float = typer.Option(2.0, '--poll', min=0.2, max=60, help='Seconds between looks for '
                                           'rotated files.'),
                store: Optional[str] = typer.Option(None, '--store', help='The store (default DBFLEET_STORE_URL).'),
                ) -> None:
    """Stream the hosts' binary logs until SIGTERM or SIGINT, restarting each stream after a drop: the hosts
    named and those --tags matches (a host that stops matching has its stream stopped, its archive kept)."""
    import logging
    import signal
    import threading

    from runner_service.cli.store import opened_store

    if not os.path.isabs(dest):
        fail('--dest must be an absolute path, got %r' % dest)
    if not os.path.isfile(defaults_file):
        fail('--defaults-file %s does not exist: write the login there (a [client] section), mode 0600' % defaults_file)
    if os.stat(defaults_file).st_mode & 0o077:
        fail('--defaults-file %s is readable by others: chmod 600 it' % defaults_file)
    from runner_service.archive.streamer import archive_logic, run_archive
    if not host and tags is None:
        fail('give the primaries to stream: --host NAME (repeat) or --tags EXPRESSION (e.g. primary)')
    expression = None
    if tags is not None:
        from dbfleet.tags import TagExpressionError, parse_tag_expression
        try:
            expression = parse_tag_expression(tags)
        except TagExpressionError as exc:
            fail('--tags: %s' % exc)
    for name in host:
        if name in ('.', '..') or '/' in name or '\0' in name or not name.strip():
            fail('--host must be a host name (no slash, not . or ..), got %r' % name)
    try:
        archive_logic().find_tool(__import__('shutil').which)
    except Exception as exc:
        fail(str(exc))
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(message)s')
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop.set())
    with opened_store(store) as opened:
        run_archive(opened, dest, defaults_file, list(host), stop, poll_seconds=poll, tags=expression,
                    refresh_seconds=refresh)
