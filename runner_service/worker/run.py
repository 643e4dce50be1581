"""Running one job: the function an RQ worker calls, ansible-runner inside it.

    run_job(job_id)   # what RQ executes; everything it needs is in the store

The job moves queued -> running by compare-and-set (a duplicate RQ entry, or a job canceled
meanwhile, does nothing). ansible-playbook runs in its own process group under
ansible-runner; its events go to the store through an EventWriter (runner_service.worker.events).
With a project URL (DBFLEET_PROJECT_URL) the play runs from this job's own copy of the commit
its branch points to when the job starts (runner_service.worker.project), recorded with the job
and removed when it ends; the playbook and inventory are checked in that copy.
A job with a batch plan runs through the lanes runner (runner_service.worker.lanes), which sees
this run only through its RunControl: the stop reason, the stop check, events, pool leases; its
lanes are spread over the queue's workers through a lane board in Redis, and the helpers that
run some of them on other workers (runner_service.worker.lane_share) are runs of this class too.
A heartbeat thread tells the store the worker is alive, picks up cancel requests, and kills
the play if the worker process that forked this one dies. Cancel and deadlines kill the whole
process group, then every process left below the work horse (a child subreaper: a daemon that
left the group, the session or the environment is still below it); the job ends successful,
failed, canceled or timed_out with per-host results.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import yaml

from dbfleet.clock import utcnow
from dbfleet.paths import checkout_collections, private_directory
from runner_service.credentials.private_data import (CredentialError, RunCredentials, command_line,
                                                     open_credentials, remove_private_data,
                                                     run_temp_dir)
from runner_service.errors import ServiceError
from runner_service.extra_vars import check_extra_vars
from runner_service.jobs import lifecycle
from runner_service.jobs.service import COLLECTION_PLAYBOOK, JobService
from runner_service.runtime import Runtime, process_runtime
from runner_service.secret_box import Redactor, secret_values
from runner_service.worker import process_tree
from runner_service.worker.events import EventWriter, host_results
from runner_service.worker.lane_board import LaneBoard
from runner_service.worker.lanes import LaneSpread, PlanError, PlanRunner
from runner_service.worker.project import ProjectCache, ProjectError, ProjectStopped

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
# How often ansible-runner's loop wakes without output: the cancel and deadline check cadence.
POLL_SECONDS = 0.1
# How often, of those wakes, Redis is asked for a cancel request (a round trip each).
CANCEL_POLL_SECONDS = 0.5
# The job's copy of its git project, in its private directory.
PROJECT_COPY = 'project'
# What the worker (runner_service.worker.fleet_worker) sends its work horse when it is stopping and
# the job overran DBFLEET_WORKER_STOP_SECONDS: the run stops its play and records the job lost.
STOP_JOB_SIGNAL = signal.SIGUSR1
_worker_stopping = threading.Event()


def on_stop_job_signal(signum, frame) -> None:
    """The work horse's handler of STOP_JOB_SIGNAL: the run sees it at its next stop check."""
    _worker_stopping.set()


def run_job(job_id: str) -> str:
    """RQ's entry point. Returns the job's final status (RQ keeps it briefly as the result)."""
    runtime = process_runtime()
    job = runtime.store.jobs.transition(job_id, 'running', expect='queued', worker=worker_name(runtime))
    if job is None:
        current = runtime.store.jobs.get(job_id)
        return 'not run: job is %s' % (current['status'] if current else 'gone')
    return JobRun(runtime, job).run()


class JobRun:
    def __init__(self, runtime: Runtime, job: dict):
        self.runtime = runtime
        self.store = runtime.store
        self.job = job
        self.job_id = job['id']
        self.settings = runtime.settings
        self.secret = runtime.secrets.open(job.get('secret_vars'))
        # A credential that cannot be had fails the run in _prepare, once its events can be written.
        self.credential_problem: str | None = None
        try:
            self.credentials = open_credentials(self.store, runtime.secrets, job.get('credentials'))
        except CredentialError as exc:
            self.credentials, self.credential_problem = RunCredentials(), str(exc)
        self.redactor = Redactor(secret_values(self.secret) | self.credentials.secret_texts())
        self.worker = worker_name(runtime)
        # The value of DBFLEET_JOB_ID in the play's environment: what kills this run's processes finds them by it.
        self.marker = self.job_id
        self.private_dir = self.settings.runs_dir / self.job_id
        self.deadline = effective_deadline(job)
        self.stop_reason: str | None = None
        self.next_cancel_check = 0.0  # time.monotonic() of the next cancel check on Redis
        self.done = threading.Event()
        self.parent_pid = os.getppid()
        self.reported_pid: int | None = None
        self.leases: set[tuple[str, str]] = set()  # pool slots held by this run's hosts (renewed by the heartbeat)
        self.writer = self._writer()

    def _writer(self) -> EventWriter:
        return EventWriter(self.runtime, self.job_id, self.redactor, offset=self.store.events.last_seq(self.job_id))

    # -- the run -------------------------------------------------------------------------

    def run(self) -> str:
        if self.deadline is not None and utcnow() >= self.deadline:
            return self._end('timed_out', None, 'deadline %s passed before the job started' % _iso(self.deadline))
        heartbeat = threading.Thread(target=self._heartbeat, name='dbfleet-heartbeat', daemon=True)
        heartbeat.start()
        runner = None
        unrun: tuple[str, int | None, str] | None = None  # how the job ends when its play could not run
        try:
            kwargs = self._prepare()
            if self.job.get('plan'):
                runner = PlanRunner(self, self.job, self.store, kwargs, spread=self._spread()).run()
            else:
                import ansible_runner  # imported by the worker before forking; cheap here
                runner = ansible_runner.run(**kwargs)
        except ProjectStopped:
            unrun = ('timed_out', None, 'deadline %s reached while fetching the project' % _iso(self.deadline)) \
                if self.stop_reason == 'timed_out' else \
                ('canceled', None, 'canceled while fetching the project, before the play started')
        except Exception as exc:
            if not isinstance(exc, (PlanError, CredentialError, ProjectError)):
                log.exception('job %s could not run', self.job_id)
            what = 'project' if isinstance(exc, ProjectError) else 'dbfleet could not run the playbook'
            unrun = ('failed', None, '%s: %s' % (what, self.redactor.text(str(exc))))
        finally:
            self.done.set()
            self._kill_play()  # whatever outlived the play (or its cancel)
            self._scrub()  # before the job is seen ended: its files are gone by then
        self.writer.close()
        if unrun is not None:
            return self._end(*unrun)
        self.store.jobs.set_host_results(self.job_id, host_results(self.writer.stats))
        if self.stop_reason == 'worker_stopped':
            return self._lost('its worker was stopped and the job did not end within %g s '
                              '(DBFLEET_WORKER_STOP_SECONDS): its processes were killed'
                              % self.settings.worker_stop_seconds)
        return self._end(*self._outcome(runner))

    def _spread(self) -> LaneSpread:
        """The lane board of this attempt, and how many workers could take some of its lanes."""
        queue = self.runtime.queue
        try:
            workers = queue.listening()[self.job['queue']]
        except Exception as exc:  # Redis away: this worker runs every lane itself
            log.warning('job %s: could not count the workers of queue %s: %s', self.job_id, self.job['queue'], exc)
            workers = 1

        def ask(helpers: int, share: int) -> None:
            queue.enqueue_lane_helpers(self.job, helpers, share)

        return LaneSpread(board=LaneBoard(queue.redis, self.job_id, self.job['attempt']), workers=workers,
                          ask_helpers=ask, most=self.settings.lanes_per_worker)

    def _outcome(self, runner) -> tuple[str, int | None, str]:
        rc = runner.rc
        if self.stop_reason == 'canceled':
            return 'canceled', rc, 'canceled while running; its processes were killed'
        if self.stop_reason == 'timed_out':
            return 'timed_out', rc, 'deadline %s reached: the play was killed' % _iso(self.deadline)
        if runner.status == 'successful' and rc == 0 and not self._failed_hosts():
            return 'successful', rc, None
        skipped = getattr(runner, 'skipped', None)
        if skipped:
            failed = self._failed_hosts()
            return 'failed', rc, ('the window ended at %s: %d host(s) not started (skipped): %s%s'
                                  % (_iso(runner.window_end), len(skipped), _names(skipped),
                                     '; failed or unreachable: %s' % _names(failed) if failed else ''))
        lost = getattr(runner, 'lost', None)
        if lost:
            failed = self._failed_hosts()
            return 'failed', rc, ('the worker running %s was lost and the job has no retry left for it%s'
                                  % (_names(lost), '; failed or unreachable: %s' % _names(failed) if failed else ''))
        vault = self._missing_vault(runner)
        if vault:
            return 'failed', rc, vault
        failed = self._failed_hosts()
        if failed:
            return 'failed', rc, 'ansible-playbook exited %s; failed or unreachable: %s' % (rc, _names(failed))
        return 'failed', rc, 'ansible-playbook exited %s (%s): see the job stdout' % (rc, runner.status)

    def _missing_vault(self, runner) -> str | None:
        """The reason of a run that stopped at vaulted data it had no password for, naming the
        credential the job lacks (Ansible's own words say only that no vault secret was found)."""
        try:
            with runner.stdout as handle:
                output = handle.read()
        except (AttributeError, OSError):  # a lanes run, or no output saved
            return None
        if 'no vault secrets' not in output.lower():
            return None
        template = ' to template %s' % self.job['template'] if self.job.get('template') else ''
        held = self.credentials.names('vault')
        if held:
            return ('ansible-playbook found vaulted data that the vault credential %s does not open: add the vault '
                    'credential of its vault id%s' % (held[0], template))
        return ('ansible-playbook found vaulted data and the job has no vault credential: add a vault credential'
                '%s (credentials: [NAME]; `dbfleet credentials create NAME --kind vault`)' % template)

    def _failed_hosts(self) -> list[str]:
        stats = self.writer.stats
        return sorted(host for key in ('failures', 'dark') for host, count in (stats.get(key) or {}).items() if count)

    def _lost(self, reason: str) -> str:
        """worker_lost, retried when the job's policy allows: the job was not at fault."""
        job = self.store.jobs.get(self.job_id)
        ended = lifecycle.lose(self.runtime, job, reason) if job else None
        current = ended or self.store.jobs.get(self.job_id)
        return current['status'] if current else 'worker_lost'

    def _end(self, status: str, rc: int | None, reason: str | None) -> str:
        job = lifecycle.finish(self.runtime, self.job_id, status, return_code=rc, status_reason=reason)
        if job is None:
            current = self.store.jobs.get(self.job_id)
            log.warning('job %s ended %s here, but the store already has it %s', self.job_id, status,
                        current and current['status'])
            return current['status'] if current else status
        return status

    # -- setting up ansible-runner ---------------------------------------------------------

    def _prepare(self) -> dict:
        job = self.job
        if self.credential_problem:
            raise CredentialError(self.credential_problem)
        if self.private_dir.exists():
            shutil.rmtree(self.private_dir / 'inventory', ignore_errors=True)
        for directory in (self.settings.var_dir, self.settings.runs_dir, self.private_dir):
            private_directory(directory)
        env_dir = private_directory(self.private_dir / 'env')
        temp_dir = run_temp_dir(self.private_dir)
        credential_arguments, credential_env, credential_vars = self.credentials.prepare(
            self.private_dir, temp_dir, {lifecycle.JOB_ENV: self.marker})
        # Checked again as they leave the store: a job accepted before the check, or a store
        # edited by hand, must not hand Ansible a marker of its own. A credential's variables win.
        extra_vars = {**check_extra_vars(unmask(job['extra_vars'], self.secret), allow_connection_vars=True),
                      **credential_vars}
        if extra_vars:
            # A file ansible-runner passes as -e @file: values never reach a command line.
            path = env_dir / 'extravars'
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, 'w') as handle:
                json.dump(untemplated(extra_vars), handle)
        project = self._project()
        cmdline = [flag for flag, wanted in (('--check', job['check_mode']), ('--diff', job['diff_mode'])) if wanted]
        cmdline += credential_arguments
        envvars = {
            'PATH': os.pathsep.join([os.path.dirname(sys.executable), os.environ.get('PATH', '')]),
            'DBFLEET_STORE_URL': self.settings.store_url,
            lifecycle.JOB_ENV: self.marker,
            'ANSIBLE_FORCE_COLOR': '0',
            'ANSIBLE_NOCOLOR': '1',
            'TMPDIR': str(temp_dir),  # goes with the run
            **credential_env,
        }
        if self.settings.project_url:
            # The play's own dbfleet (the fleet_tags plugin: tag rules) reads this copy as a local project.
            envvars.update(DBFLEET_PROJECT_DIR=str(project), DBFLEET_PROJECT_URL='')
        if (project / 'ansible.cfg').is_file():
            envvars['ANSIBLE_CONFIG'] = str(project / 'ansible.cfg')
        elif checkout_collections() is not None:
            # The checkout's collection (dbfleet.mysql.run_command) from any project; an installed
            # collection is on Ansible's own collections paths already.
            envvars['ANSIBLE_COLLECTIONS_PATH'] = os.pathsep.join(
                [str(checkout_collections()), os.environ.get('ANSIBLE_COLLECTIONS_PATH', '')]).rstrip(os.pathsep)
        return dict(
            private_data_dir=str(self.private_dir), project_dir=str(project), playbook=job['playbook'],
            inventory=self._inventory(project), limit=job['limit_pattern'], forks=job['forks'],
            cmdline=command_line(cmdline) or None, envvars=envvars, ident=str(job['attempt']),
            rotate_artifacts=3,
            quiet=True, settings={'pexpect_timeout': POLL_SECONDS, 'suppress_ansible_output': True},
            event_handler=self.writer.add, cancel_callback=self.should_stop, status_handler=None,
        )

    def _project(self) -> Path:
        """Where the play runs: the local project directory, or this job's copy of the commit the
        project branch points to now (a retry fetches again, and may run a newer commit)."""
        if not self.settings.project_url:
            return Path(self.settings.project_dir).resolve()
        if self.job.get('project_revision'):
            self.store.jobs.set_project_revision(self.job_id, None)  # an earlier attempt's
        copy, commit = self._check_out(None)
        self.store.jobs.set_project_revision(self.job_id, commit)
        return copy

    def _check_out(self, commit: str | None) -> tuple[Path, str]:
        """This run's copy of the project at `commit` (None: where its branch points now), its
        playbook and inventory checked there."""
        copy = self.private_dir / PROJECT_COPY
        commit = ProjectCache(self.settings).check_out(copy, self.should_stop, commit=commit)
        copy = copy.resolve()
        # The launch could only check the names (the API host has no copy): the files, here.
        checks = JobService(self.runtime)
        try:
            if not COLLECTION_PLAYBOOK.fullmatch(self.job['playbook']):
                checks.project_path(self.job['playbook'], 'playbook', playbook=True, project=copy)
            if self.job['inventory_kind'] == 'file':
                checks.inventory_path(self.job['inventory'], project=copy)
        except ServiceError as exc:
            raise ProjectError('commit %s of branch %r: %s' % (commit, self.settings.project_branch,
                                                              exc.detail)) from None
        return copy, commit

    def _inventory(self, project: Path) -> str:
        job = self.job
        if job['inventory_kind'] == 'file':
            return str(project / job['inventory'])
        # A tag expression: the fleet inventory plugin over the store, with the project's
        # group_vars and host_vars beside it so connection settings apply as usual.
        directory = self.private_dir / 'inventory'
        directory.mkdir(parents=True, exist_ok=True)
        source = directory / 'job.fleet.yml'
        source.write_text(yaml.safe_dump({'plugin': 'dbfleet.mysql.fleet', 'store_url': self.settings.store_url,
                                          'tags': job['inventory']}))
        for name in ('group_vars', 'host_vars'):
            target = project / 'inventories' / name
            if target.is_dir():
                (directory / name).symlink_to(target)
        return str(source)

    # -- while it runs (also the lanes runner's RunControl) ----------------------------------

    def should_stop(self) -> bool:
        """ansible-runner asks this every POLL_SECONDS; True kills the play's process group.
        The deadline is checked each time, Redis's cancel flag every CANCEL_POLL_SECONDS."""
        if self.stop_reason is None:
            if _worker_stopping.is_set():
                self.stop_reason = 'worker_stopped'
            elif self.deadline is not None and utcnow() >= self.deadline:
                self.stop_reason = 'timed_out'
            elif time.monotonic() >= self.next_cancel_check:
                self.next_cancel_check = time.monotonic() + CANCEL_POLL_SECONDS
                try:
                    if self.runtime.queue.cancel_requested(self.job_id):
                        self.stop_reason = 'canceled'
                except Exception:  # Redis away: the heartbeat still reads the store's flag
                    pass
        return self.stop_reason is not None

    def add_event(self, event: dict) -> bool:
        return self.writer.add(event)

    def add_row(self, row: dict) -> None:
        self.writer.add_row(row)

    def flush_events(self) -> None:
        self.writer.flush()

    def abandoning(self) -> bool:
        return False  # the job's own run records every host it stops

    def hold_lease(self, pool: str, holder: str) -> bool:
        """Take a slot of `pool` for `holder` if one is free; the heartbeat renews it until released."""
        if not self.store.pools.acquire_lease(pool, holder):
            return False
        self.leases.add((pool, holder))
        return True

    def release_lease(self, pool: str, holder: str) -> None:
        self.leases.discard((pool, holder))
        self.store.pools.release_lease(pool, holder)

    def _heartbeat(self) -> None:
        while not self.done.wait(HEARTBEAT_SECONDS):
            if os.getppid() != self.parent_pid:
                self._orphaned()
            try:
                os.utime(self.private_dir)  # alive: not the oldest run for another job's prune_runs
            except OSError:
                pass
            try:
                self._beat()
                self.store.pools.renew_leases(holder for _, holder in list(self.leases))
            except Exception as exc:  # the store away for a moment: try again next beat
                log.warning('job %s heartbeat failed: %s', self.job_id, exc)

    def _beat(self) -> None:
        """Tell the store the job's worker is alive (and where its play runs); pick up cancels."""
        pid = self.writer.runner_pid
        running = self.store.jobs.heartbeat(self.job_id, runner_host=self.runtime.hostname if pid else None,
                                            runner_pid=pid if pid != self.reported_pid else None)
        self.reported_pid = pid
        if not running and self.stop_reason is None:
            self.stop_reason = 'canceled'  # someone else ended it (the reaper, an admin)
        job = self.store.jobs.get(self.job_id)
        if job and job['cancel_requested'] and self.stop_reason is None:
            self.stop_reason = 'canceled'

    def _orphaned(self) -> None:
        """The worker that forked us is gone (killed): nobody would report this run, so kill the
        play, record the loss (and the retry) ourselves, and leave."""
        self._kill_play()
        try:
            self.writer.close()
            job = self.store.jobs.get(self.job_id)
            if job is not None:
                lifecycle.lose(self.runtime, job, 'worker process %d died while the job ran' % self.parent_pid)
        finally:
            shutil.rmtree(self.private_dir / PROJECT_COPY, ignore_errors=True)
            os._exit(1)

    def _kill_play(self) -> None:
        """Every process of the play: those that kept the job's environment marker, and, in a work
        horse (a child subreaper, see runner_service.worker.fleet_worker), everything below it, wherever it went."""
        lifecycle.kill_job_processes(self.marker)
        if process_tree.is_subreaper():
            process_tree.kill_descendants()

    def _scrub(self) -> None:
        """Leave no secret on disk: the extra vars and credential files go, and saved output is redacted.
        The job's copy of its git project goes too."""
        shutil.rmtree(self.private_dir / PROJECT_COPY, ignore_errors=True)
        self.credentials.close()
        remove_private_data(self.private_dir)
        if self.redactor:
            for path in (self.private_dir / 'artifacts').rglob('*'):
                if path.is_file():
                    text = path.read_text(errors='replace')
                    cleaned = self.redactor.text(text)
                    if cleaned != text:
                        path.write_text(cleaned)
        prune_runs(self.settings.runs_dir, self.settings.keep_runs, self.settings.keep_runs_days)


def worker_name(runtime: Runtime) -> str:
    """host/pid of the RQ worker whose work horse this is: recorded with the job and each host it runs."""
    return '%s/%d' % (runtime.hostname, os.getppid())


def effective_deadline(job: dict) -> dt.datetime | None:
    """The earlier of the job's deadline and its start plus its timeout."""
    candidates = [job['deadline']] if job.get('deadline') else []
    if job.get('timeout_seconds') and job.get('started_at'):
        candidates.append(job['started_at'] + dt.timedelta(seconds=job['timeout_seconds']))
    return min(candidates) if candidates else None


def unmask(extra_vars: dict, secret: dict) -> dict:
    """The extra vars the play gets: the stored (masked) ones with the real secret values back."""
    return {**(extra_vars or {}), **secret}


def untemplated(value):
    """Extra vars as Ansible must read them: every string marked unsafe (2.19's legacy JSON form),
    so that what a caller sent, or crontab had in a command, is used as written and never
    templated: `{{ lookup('pipe', ...) }}` in a value would otherwise run on this machine.
    Keys are not templated by Ansible; keys that are Ansible's own markers never get here
    (runner_service.extra_vars)."""
    if isinstance(value, str):
        return {'__ansible_unsafe': value}
    if isinstance(value, dict):
        return {key: untemplated(item) for key, item in value.items()}
    if isinstance(value, list):
        return [untemplated(item) for item in value]
    return value


def prune_runs(runs_dir: Path, keep: int, keep_days: float | None = None, now: float | None = None) -> list[Path]:
    """Remove the job run directories beyond the newest `keep`, and those older than `keep_days`
    (DBFLEET_KEEP_RUNS, DBFLEET_KEEP_RUNS_DAYS). A directory's age is its modification time, which
    a running job's heartbeat renews (JobRun._heartbeat): a long job is never the oldest. `now`
    is a time.time() value. Returns what was removed."""
    try:
        runs = sorted(((path.stat().st_mtime, path) for path in runs_dir.iterdir()), reverse=True)
    except FileNotFoundError:
        return []
    cutoff = None if keep_days is None else (time.time() if now is None else now) - keep_days * 86400
    removed = [path for index, (mtime, path) in enumerate(runs)
               if index >= keep or (cutoff is not None and mtime < cutoff)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat(timespec='seconds').replace('+00:00', 'Z') if value else '?'


def _names(hosts: list[str], most: int = 10) -> str:
    return ', '.join(hosts[:most]) + (' and %d more' % (len(hosts) - most) if len(hosts) > most else '')
