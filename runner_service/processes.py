"""dbfleet's long-running processes: the API, the workers, and `up`, which supervises both.

    dbfleet api                 uvicorn serving the API (runner_service.api.server; reconciler inside)
    dbfleet worker              RQ worker(s) on dbfleet's queues, RQ's scheduler enabled (delayed retries)
    dbfleet scheduler           the cron loop: fires due schedule slots as jobs
    dbfleet up                  API + workers + scheduler on one machine, restarted when they die; starts a private
                                redis-server on a unix socket unless DBFLEET_REDIS_URL is set
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runner_service.job_queue import connect, queue_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiServing:
    """How `dbfleet api` listens: address, TLS, which proxies' X-Forwarded-* headers it believes,
    access log. check() turns what uvicorn would only find out with a traceback into one line."""

    host: str = '127.0.0.1'
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    proxy_headers: bool = False
    forwarded_allow_ips: str = '127.0.0.1,::1'
    access_log: bool = False

    def check(self) -> None:
        """Raises ValueError saying what is wrong: a certificate without its key (or the other way
        round), files that do not load as a certificate and its key, a proxy that is no address."""
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError('TLS needs both a certificate and its key (--tls-cert and --tls-key, or '
                             'DBFLEET_API_TLS_CERT and DBFLEET_API_TLS_KEY)')
        if self.tls_cert:
            import ssl
            try:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.tls_cert, self.tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError('cannot serve TLS with certificate %s and key %s: %s' % (
                    self.tls_cert, self.tls_key, getattr(exc, 'strerror', None) or exc.args[-1])) from None
        for entry in (item.strip() for item in self.forwarded_allow_ips.split(',')):
            if entry == '*':
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError('forwarded allow IPs: %r is not an address or network (comma-separated, or *)'
                                 % entry[:100]) from None


def run_api(serving: ApiServing, log_level: str = 'info') -> None:
    # The one import of the HTTP layer outside it: this is where the API's process starts.
    from runner_service.api.server import serve

    serve(serving.host, serving.port, log_level, tls_cert=serving.tls_cert and str(serving.tls_cert),
          tls_key=serving.tls_key and str(serving.tls_key), proxy_headers=serving.proxy_headers,
          forwarded_allow_ips=serving.forwarded_allow_ips, access_log=serving.access_log)


def run_worker(redis_url: str, queues: list[str], processes: int = 1, burst: bool = False,
               name: str | None = None, log_level: str = 'INFO') -> None:
    """Preloads ansible-runner and the store so each forked work horse starts a play at once."""
    import ansible_runner  # noqa: F401  (imported for the forks)
    from rq.worker_pool import WorkerPool

    import runner_service.worker.run  # noqa: F401
    from runner_service.worker.fleet_worker import FleetWorker

    _prepare_for_work_horses()
    redis = connect(redis_url)
    names = [queue_name(queue) for queue in queues]
    if processes > 1:
        WorkerPool(names, connection=redis, num_workers=processes, worker_class=FleetWorker).start(
            burst=burst, logging_level=log_level)
    else:
        work_until_stopped(lambda: FleetWorker(names, connection=redis, name=name), burst, log_level)


# Pauses before a worker that ended on its own starts again: doubled each time, up to the last.
RESTART_PAUSES = (1, 2, 4, 8, 15, 30)


def work_until_stopped(make_worker, burst: bool, log_level: str, sleep=time.sleep) -> None:
    """RQ's worker leaves work() when Redis fails anywhere but in its wait for a job (a Sentinel
    failover between two jobs, the master gone while it books a job's end): it logs 'quitting'
    and returns. A dbfleet worker then starts a new one, after a pause, until it is asked to stop
    (SIGTERM) or, with --burst, has emptied its queues; the store keeps every job meanwhile and
    the reconciler puts back what Redis lost."""
    from redis.exceptions import RedisError
    from rq.exceptions import StopRequested

    attempt = 0
    worker = None
    while True:
        try:
            worker = make_worker()  # RQ's worker names itself to Redis as it is made
            worker.work(burst=burst, with_scheduler=True, logging_level=log_level)
        except (RedisError, ValueError) as exc:  # Redis away at the start; a worker name still registered
            log.warning('dbfleet worker: Redis failed (%s)', exc)
        if burst or stopping(worker):
            return
        pause = RESTART_PAUSES[min(attempt, len(RESTART_PAUSES) - 1)]
        log.warning('dbfleet worker: the RQ worker ended on its own (Redis unreachable?); a new one in %d s', pause)
        try:
            sleep(pause)
        except StopRequested:  # SIGTERM during the pause, through the last worker's handler
            return
        if stopping(worker):
            return
        attempt += 1


def stopping(worker) -> bool:
    """Whether the worker was asked to stop (SIGTERM/SIGINT): RQ dates every request, and sets
    _stop_requested only for one that comes while a job runs."""
    return worker is not None and (worker._stop_requested or worker._shutdown_requested_date is not None)


def _prepare_for_work_horses() -> None:
    """Do once, before RQ forks a work horse per job, what each horse would otherwise redo: open
    the store (its schema checked, or upgraded on first use), configure the ORM's mappers. The
    horses inherit the engine (runtime.process_runtime) but none of its connections: this
    process closes the ones it used. A store that cannot be opened now is left to the jobs,
    which fail with the reason, as they did before the worker prepared anything."""
    from sqlalchemy.orm import configure_mappers

    from runner_service.runtime import process_runtime

    configure_mappers()
    runtime = process_runtime()
    try:
        runtime.store.close()  # opened (and checked) by the first access; the engine stays usable
    except Exception as exc:
        runtime.__dict__.pop('store', None)
        log.warning('dbfleet worker: the store is not ready (%s); each job opens it itself', exc)


def run_scheduler() -> None:
    """The cron loop until SIGTERM or SIGINT; any number may run at once (each slot fires once)."""
    import threading

    from runner_service.runtime import Runtime
    from runner_service.schedules.loop import Scheduler

    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    runtime = Runtime()
    try:
        log.info('dbfleet scheduler: firing schedules from %s', runtime.settings.store_url)
        Scheduler(runtime, name='%s/%d' % (runtime.hostname, os.getpid())).run(stopped)
    finally:
        runtime.close()


# A unix socket's path fits in sockaddr_un's 108 bytes with its NUL; a longer one fails to bind.
SOCKET_PATH_MAX = 107


def private_redis_directory(var_dir: Path) -> Path:
    """A new 0700 directory for the private Redis's socket: under the state directory when the
    socket's path fits a unix socket address there, else under the system's temporary directory
    (an installed dbfleet's state directory can be deep: $XDG_STATE_HOME of a long home)."""
    socket = var_dir / ('dbfleet-redis-' + 'x' * 8) / 'redis.sock'  # mkdtemp adds 8 characters
    fits = var_dir.is_dir() and len(os.fsencode(socket)) <= SOCKET_PATH_MAX
    return Path(tempfile.mkdtemp(prefix='dbfleet-redis-', dir=var_dir if fits else None))


class PrivateRedis:
    """A redis-server for `dbfleet up` alone: unix socket in a private directory, no TCP, no disk."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.socket = directory / 'redis.sock'
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return 'unix://%s' % self.socket

    def start(self) -> 'PrivateRedis':
        binary = shutil.which('redis-server')
        if binary is None:
            raise RuntimeError('redis-server is not installed: install it (apt-get install redis-server) or set '
                               'DBFLEET_REDIS_URL to a Redis you run')
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.process = subprocess.Popen(
            [binary, '--port', '0', '--unixsocket', str(self.socket), '--unixsocketperm', '700', '--save', '',
             '--appendonly', 'no', '--dir', str(self.directory)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if connect(self.url).ping():
                    return self
            except Exception:
                time.sleep(0.05)
        raise RuntimeError('the private redis-server did not start on %s (%s)' % (
            self.socket, 'it exited with %s' % self.process.returncode if self.process.poll() is not None
            else 'no answer in 10 s'))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def run_up(host: str, port: int, workers: int, queues: list[str], var_dir: Path, tls: bool = False) -> int:
    """Run API and workers as child processes, restart any that dies, stop all on SIGINT/SIGTERM."""
    env = dict(os.environ)
    private = None
    if not env.get('DBFLEET_REDIS_URL'):
        private = PrivateRedis(private_redis_directory(var_dir)).start()
        env['DBFLEET_REDIS_URL'] = private.url
        print('dbfleet up: private Redis at %s' % private.url, flush=True)
    cli = [sys.executable, '-m', 'runner_service.cli']
    commands = {'api': cli + ['api', '--host', host, '--port', str(port)], 'scheduler': cli + ['scheduler']}
    for index in range(workers):
        commands['worker-%d' % (index + 1)] = cli + ['worker'] + [arg for queue in queues for arg in ('--queue', queue)]
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print('dbfleet up: starting the API, %d worker(s) on queues %s and the scheduler' % (workers, ', '.join(queues)),
          flush=True)
    readiness = Readiness(host, port, workers, tls)
    try:
        while not stopping:
            readiness.check()
            for name, command in commands.items():
                child = children.get(name)
                if child is None or child.poll() is not None:
                    if child is not None:
                        print('dbfleet up: %s exited with %s; restarting it' % (name, child.returncode), flush=True)
                        _signal_group(child, signal.SIGKILL)  # what it forked and left behind
                    # Each child leads its own process group, so stopping it also stops what it forked
                    # (RQ's scheduler process), before the private Redis goes away.
                    children[name] = subprocess.Popen(command, env=env, start_new_session=True)
            time.sleep(0.5)
    finally:
        for child in children.values():
            _signal_group(child, signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(child, signal.SIGKILL)
        if private is not None:
            private.stop()
            shutil.rmtree(private.directory, ignore_errors=True)
    return 0


class Readiness:
    """`dbfleet up` says it is up once /healthz shows all three: the API answers, the scheduler
    passes, every worker is registered; until then it says, every WAIT_REPORT_SECONDS, what it waits for."""

    WAIT_REPORT_SECONDS = 30

    def __init__(self, host: str, port: int, workers: int, tls: bool = False):
        local = {'0.0.0.0': '127.0.0.1', '': '127.0.0.1', '::': '::1'}.get(host, host)
        self.url = '%s://%s:%d' % ('https' if tls else 'http', '[%s]' % local if ':' in local else local, port)
        # With TLS (DBFLEET_API_TLS_CERT), the probe of its own child on this machine does not check
        # the certificate: it names the API's public name, not the address probed, and /healthz
        # is public anyway.
        self.verify = not tls
        self.workers = workers
        self.ready = False
        self.next_report = time.monotonic() + self.WAIT_REPORT_SECONDS

    def check(self) -> None:
        if self.ready:
            return
        import httpx
        try:
            body = httpx.get(self.url + '/healthz', timeout=2, verify=self.verify).json()
            waiting = [reason for reason in body['reasons'] if not reason.startswith('queue ')]
            if body['workers']['count'] < self.workers:
                waiting.append('workers: %d of %d registered' % (body['workers']['count'], self.workers))
        except Exception as exc:
            waiting = ['api: not answering yet (%s)' % type(exc).__name__]
        if not waiting:
            self.ready = True
            print('dbfleet up: ready: API on %s, %d worker(s), scheduler passing' % (self.url, self.workers),
                  flush=True)
        elif time.monotonic() >= self.next_report:
            self.next_report = time.monotonic() + self.WAIT_REPORT_SECONDS
            print('dbfleet up: not ready yet: %s' % '; '.join(waiting), flush=True)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
