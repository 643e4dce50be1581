"""The service's processes, started from the command line: `dbfleet api`, `worker`, `scheduler`,
`up` (all of them on one machine) and one `reconcile` pass. Each imports its server (uvicorn,
RQ, the store) only when it runs, so the other commands start without them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from runner_service.cli.output import fail, print_json

QUEUE_OPTION = typer.Option(['default'], '--queue', '-q', help='Queue to work on (repeat for several, in order).')


def api(host: Optional[str] = typer.Option(None, help='Address to listen on (default: DBFLEET_API_HOST, 127.0.0.1).'),
        port: Optional[int] = typer.Option(None, min=1, max=65535,
                                           help='Port to listen on (default: DBFLEET_API_PORT, 8080).'),
        tls_cert: Optional[Path] = typer.Option(None, help='PEM certificate (chain): serve HTTPS only '
                                                '(default: DBFLEET_API_TLS_CERT).'),
        tls_key: Optional[Path] = typer.Option(None, help='Its PEM private key (default: DBFLEET_API_TLS_KEY).'),
        proxy_headers: Optional[bool] = typer.Option(None, '--proxy-headers/--no-proxy-headers',
                                                     help='Believe X-Forwarded-For/-Proto from the proxies of '
                                                          '--forwarded-allow-ips (default: DBFLEET_API_PROXY_HEADERS).'),
        forwarded_allow_ips: Optional[str] = typer.Option(None, help='Comma-separated proxy addresses or networks '
                                                          '(default: DBFLEET_API_FORWARDED_ALLOW_IPS, 127.0.0.1,::1).'),
        access_log: Optional[bool] = typer.Option(None, '--access-log/--no-access-log',
                                                  help='A log line per request (default: DBFLEET_API_ACCESS_LOG).'),
        log_level: str = typer.Option('info', help='uvicorn log level.')) -> None:
    """Serve the REST API (/api/v1, /healthz, /openapi.json); reconciles the queues with the store."""
    from dbfleet.settings import get_settings
    from runner_service.processes import ApiServing, run_api
    settings = get_settings()

    def given(value, default):
        return default if value is None else value

    serving = ApiServing(host=given(host, settings.api_host), port=given(port, settings.api_port),
                         tls_cert=given(tls_cert, settings.api_tls_cert), tls_key=given(tls_key, settings.api_tls_key),
                         proxy_headers=given(proxy_headers, settings.api_proxy_headers),
                         forwarded_allow_ips=given(forwarded_allow_ips, settings.api_forwarded_allow_ips),
                         access_log=given(access_log, settings.api_access_log))
    try:
        serving.check()
    except ValueError as exc:
        fail(str(exc))
    run_api(serving, log_level)


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
    settings = get_settings()
    try:
        status = run_up(host, port, workers, queues, settings.var_dir, tls=settings.api_tls_cert is not None)
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
