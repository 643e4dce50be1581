"""A real dbfleet service for tests and benches: a private redis-server, a SQLite store, `dbfleet api`
over HTTP on a free port and `dbfleet worker` processes, all started as a user would."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from runner_service.job_queue import connect
from runner_service.processes import PrivateRedis

REPO = Path(__file__).resolve().parents[1]
TERMINAL = {'successful', 'failed', 'canceled', 'timed_out', 'dependency_failed', 'worker_lost'}
PLAYBOOKS = 'tests/service/playbooks'
INVENTORY = 'tests/service/inventory.yml'
# The project's inventories/ and the service tests' own (DBFLEET_INVENTORY_DIRS).
INVENTORY_DIRS = '["inventories", "tests/service"]'
# How much longer than on a quiet machine a wait may take before it fails: every wait here ends as
# soon as its condition holds, so a generous bound costs a passing test nothing, and a loaded CI
# machine (a suite beside `make bench`: load 20 on 2 cores) took 60 s to start a service and over
# 120 s to run a job behind others. DBFLEET_TEST_PATIENCE=1 gives the bounds as written.
PATIENCE = float(os.environ.get('DBFLEET_TEST_PATIENCE', '5'))


class ExternalRedis:
    """A Redis someone else runs (devtools/netfleet's platform): the harness neither starts nor stops it."""

    def __init__(self, url: str):
        self.url = url

    def start(self):
        return self

    def stop(self):
        pass


def wait_for(condition, what: str, timeout: float = 60):
    """The first true value of `condition()`, polled every 0.1 s; AssertionError(`what`) after
    `timeout` x PATIENCE seconds."""
    deadline = time.monotonic() + timeout * PATIENCE
    while not (value := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Service:
    def __init__(self, directory: Path, workers: int = 2, store_url: str | None = None, reconcile_seconds: float = 1,
                 schedulers: int = 0, inventory_dirs: str = INVENTORY_DIRS, redis_url: str | None = None,
                 variables: dict | None = None):
        self.directory = directory
        self.variables = variables or {}  # more DBFLEET_* variables for every process
        self.inventory_dirs = inventory_dirs
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.redis = ExternalRedis(redis_url) if redis_url else PrivateRedis(directory / 'redis')
        self.store_url = store_url or 'sqlite:///%s' % (directory / 'store.db')
        self.worker_count = workers
        self.reconcile_seconds = reconcile_seconds
        self.api: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.scheduler_count = schedulers
        self.schedulers: list[subprocess.Popen] = []
        self.tokens: dict[str, str] = {}

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env.update(DBFLEET_STORE_URL=self.store_url, DBFLEET_REDIS_URL=self.redis.url,
                   DBFLEET_PROJECT_DIR=str(REPO), DBFLEET_VAR_DIR=str(self.directory / 'var'),
                   DBFLEET_INVENTORY_DIRS=self.inventory_dirs,
                   DBFLEET_RECONCILE_SECONDS=str(self.reconcile_seconds), DBFLEET_LOST_AFTER_SECONDS='6',
                   DBFLEET_API_URL=self.url, PATH='%s:%s' % (Path(sys.executable).parent, env.get('PATH', '')))
        env.update(self.variables)
        return env

    def dbfleet(self, *args, token: str | None = None, check=False, timeout=120) -> subprocess.CompletedProcess:
        timeout *= PATIENCE
        env = self.env
        if token:
            env['DBFLEET_TOKEN'] = token
        return subprocess.run([sys.executable, '-m', 'runner_service.cli', *args], env=env, capture_output=True,
                              text=True, timeout=timeout, check=check)

    def start(self) -> 'Service':
        """Everything started and healthy; on any failure what did start is stopped again."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> 'Service':
        self.redis.start()
        for role in ('admin', 'operator', 'viewer'):
            created = self.dbfleet('tokens', 'create', role, '--role', role, '--json', check=True)
            import json
            self.tokens[role] = json.loads(created.stdout)['token']
        self.start_api()
        for _ in range(self.worker_count):
            self.start_worker()
        for _ in range(self.scheduler_count):
            self.start_scheduler()
        self.wait_healthy()
        return self

    def start_scheduler(self) -> subprocess.Popen:
        log = open(self.directory / ('scheduler-%d.log' % (len(self.schedulers) + 1)), 'ab')
        scheduler = subprocess.Popen([sys.executable, '-m', 'runner_service.cli', 'scheduler'], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        self.schedulers.append(scheduler)
        return scheduler

    def start_api(self) -> None:
        log = open(self.directory / 'api.log', 'ab')
        self.api = subprocess.Popen([sys.executable, '-m', 'runner_service.cli', 'api', '--port', str(self.port)],
                                    env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_worker(self, *queues: str, variables: dict | None = None) -> subprocess.Popen:
        """A worker on `queues` (default: default), with DBFLEET_* `variables` of its own."""
        log = open(self.directory / ('worker-%d.log' % (len(self.workers) + 1)), 'ab')
        options = [option for queue in queues for option in ('--queue', queue)]
        worker = subprocess.Popen([sys.executable, '-m', 'runner_service.cli', 'worker', *options],
                                  env={**self.env, **(variables or {})},
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(worker)
        return worker

    def wait_healthy(self, timeout: float = 60) -> dict:
        timeout *= PATIENCE
        deadline = time.monotonic() + timeout
        body = None
        while time.monotonic() < deadline:
            try:
                body = httpx.get(self.url + '/healthz', timeout=5).json()
                # A service started without `dbfleet scheduler` is degraded for that reason alone.
                expected = [reason for reason in body['reasons']
                            if reason.startswith('scheduler:') and not self.scheduler_count
                            or reason.startswith('workers:') and not self.worker_count]
                if body['reasons'] == expected and body['workers']['count'] >= len(self.live_workers()):
                    return body
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError('dbfleet service not healthy after %ss: %s' % (timeout, body))

    def live_workers(self) -> list[subprocess.Popen]:
        return [worker for worker in self.workers if worker.poll() is None]

    def client(self, role: str = 'admin') -> httpx.Client:
        headers = {'Authorization': 'Bearer %s' % self.tokens[role]} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30 * PATIENCE)

    def launch(self, playbook: str, role: str = 'admin', **body) -> dict:
        """Launch a bare playbook (admins only; operators launch templates)."""
        body.setdefault('inventory', INVENTORY)
        with self.client(role) as client:
            response = client.post('/api/v1/jobs', json={'playbook': '%s/%s' % (PLAYBOOKS, playbook), **body})
        assert response.status_code == 201, response.text
        return response.json()

    def job(self, job_id: str) -> dict:
        with self.client('viewer') as client:
            response = client.get('/api/v1/jobs/%s' % job_id)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, job_id: str, statuses=TERMINAL, timeout: float = 120) -> dict:
        timeout *= PATIENCE
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job['status'] in statuses:
                return job
            if time.monotonic() > deadline:
                raise AssertionError('job %s still %s after %ss (%s)' % (job_id, job['status'], timeout,
                                                                        job['status_reason']))
            time.sleep(0.2)

    def events(self, job_id: str, **params) -> list[dict]:
        found, after = [], None
        with self.client('viewer') as client:
            while True:
                response = client.get('/api/v1/jobs/%s/events' % job_id,
                                      params={**params, 'limit': 1000, **({'after': after} if after else {})})
                assert response.status_code == 200, response.text
                page = response.json()
                found.extend(page['events'])
                if page['next_cursor'] is None:
                    return found
                after = page['next_cursor']

    def redis_client(self):
        return connect(self.redis.url)

    def stop(self) -> None:
        processes = self.schedulers + self.workers + ([self.api] if self.api else [])
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.redis.stop()


def job_processes(job_id: str) -> list[int]:
    """Processes still carrying the job's DBFLEET_JOB_ID (its ansible-playbook and everything under it)."""
    marker = ('DBFLEET_JOB_ID=%s' % job_id).encode()
    found = []
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / 'environ').read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def live_event_names(response) -> tuple[list[str], dict | None]:
    """Read a job's server-sent events stream to its end: (the events' names in order, the end
    event's data: status and status_reason), or None for the end when the stream stopped first."""
    names, kind = [], None
    for line in response.iter_lines():
        if line.startswith('event: '):
            kind = line[7:]
        elif line.startswith('data: '):
            if kind == 'end':
                return names, json.loads(line[6:])
            names.append(kind)
    return names, None


def runs(service, job_id: str) -> list[dict]:
    """A planned job's timeline (GET /api/v1/jobs/{id}/runs)."""
    with service.client('viewer') as client:
        response = client.get('/api/v1/jobs/%s/runs' % job_id)
    assert response.status_code == 200, response.text
    return response.json()


def intervals(items) -> list[tuple[dt.datetime, dt.datetime]]:
    """(start, end) of the runs that have both."""
    return [(dt.datetime.fromisoformat(run['started_at']), dt.datetime.fromisoformat(run['finished_at']))
            for run in items if run['started_at'] and run['finished_at']]


def most_at_once(spans) -> int:
    """The largest number of intervals that overlap at one instant."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
