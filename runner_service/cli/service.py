"""The service's processes, started from the command line: `dbfleet api`, `worker`, `scheduler`,
`up` (all of them on one machine) and one `reconcile` pass. Each imports its server (uvicorn,
RQ, the store) only when it runs, so the other commands start without them."""

from __future__ import annotations

from typing import Optional

import typer

from runner_service.cli.output import fail, print_json

QUEUE_OPTION = typer.Option(['default'], '--queue', '-q', help='Queue to work on (repeat for several, in order).')


def api(host: str = typer.Option('127.0.0.1', help='Address to listen on.'),
        port: int = typer.Option(8080, help='Port to listen on.'),
        log_level: str = typer.Option('info', help='uvicorn log level.')) -> None:
    """Serve the REST API (/api/v1, /healthz, /openapi.json); reconciles the queues with the store."""
    from dbfleet.settings import get_settings
    from runner_service.processes import run_api
    get_settings()  # refused settings end the command here, not inside the server's start-up
    run_api(host, port, log_level)


def worker(queues: list[str] = QUEUE_OPTION,
           processes: int = typer.Option(1, '--processes', '-n', min=1, help='Worker processes (an RQ pool).'),
           burst: bool = typer.Option(False, help='Stop when the queues are empty.'),
           name: Optional[str] = typer.Option(None, help='Worker name (default: RQ picks one).')) -> None:
    """Run jobs from the queues with ansible-runner (RQ worker, RQ scheduler enabled for retries)."""
    from dbfleet.settings import get_settings
    from runner_service.processes import run_worker
    run_worker(get_settings().redis_url, queues, processes=processes, burst=burst, name=name)


def up(host: str = typer.Option('127.0.0.1', help='API address.'), port: int = typer.Option(8080, help='API port.'),
       workers: int = typer.Option(2, '--workers', '-n', min=1, help='Worker processes.'),
       queues: list[str] = QUEUE_OPTION) -> None:
    """API, workers and scheduler on this machine, supervised; a private Redis unless DBFLEET_REDIS_URL is set."""
    from dbfleet.settings import get_settings
    from runner_service.processes import run_up
    try:
        status = run_up(host, port, workers, queues, get_settings().var_dir)
    except RuntimeError as exc:  # no redis-server, or it did not start
        fail(str(exc))
    raise typer.Exit(status)


def scheduler_command() -> None:
    """Fire due schedule slots as jobs (second precision); several may run, each slot fires once."""
    import logging

    from runner_service.processes import run_scheduler
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    run_scheduler()


def reconcile_command() -> None:
    """One reconciler pass: release waiting jobs, time out overdue ones, mark lost ones, re-enqueue
    what Redis forgot. The API does this on its own every DBFLEET_RECONCILE_SECONDS."""
    from runner_service.jobs.reconciler import reconcile
    from runner_service.runtime import Runtime
    runtime = Runtime()
    try:
        print_json(reconcile(runtime))
    finally:
        runtime.close()
