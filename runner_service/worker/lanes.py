"""Running a job that has a batch plan (runner_service.jobs.planner): lanes, rolling batches, a pool.

The play's hosts come from `ansible-playbook --list-hosts` (the job's inventory and limit, as
Ansible resolves them), in inventory order. Lanes run in threads of the work horse, each
running its hosts one after another, one ansible-runner run per host (per-host results and
timings, and a lane never runs two hosts at once); rolling batches run one after another, one
run per batch, and stop when a batch fails more than the plan allows. With a pool, every host
run first takes a slot of the pool (waiting while it is full, as long as the job is not
canceled or past its deadline) and gives it back after. Every host gets a row in job_host_runs: lane or batch,
estimate, start, end, status.

The lanes runner sees the job run it belongs to (runner_service.worker.run.JobRun) only through
RunControl: whether and why the job stops, where events go, and the pool slots it holds.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from dbfleet.clock import utcnow
from runner_service.bounded import run_bounded
from runner_service.jobs import planner

log = logging.getLogger(__name__)

POOL_WAIT_SECONDS = 0.5
INIT_LOCK = threading.Lock()


@dataclass
class PlanResult:
    rc: int
    status: str  # successful | failed


class PlanError(Exception):
    """The plan cannot run (no hosts, an unknown pool): the job fails with this message."""


class RunControl(Protocol):
    """What a lanes runner needs from the job run it belongs to."""

    stop_reason: str | None  # 'canceled', 'timed_out' or 'worker_stopped' once the job must stop, else None

    def should_stop(self) -> bool:
        """Checks the deadline and cancel requests now (waiting for a pool slot lets time pass);
        True once the job must stop."""

    def add_event(self, event: dict) -> bool:
        """An ansible-runner event of one of the plan's runs, for the job's event stream."""

    def hold_lease(self, pool: str, holder: str) -> bool:
        """Take a slot of `pool` for `holder` if one is free, kept while the job runs; False when full."""

    def release_lease(self, pool: str, holder: str) -> None:
        """Give the slot back."""


class PlanRunner:
    def __init__(self, control: RunControl, job: dict, store, kwargs: dict):
        self.control = control
        self.job = job
        self.store = store
        self.plan = job['plan']
        self.kwargs = dict(kwargs, rotate_artifacts=0)  # concurrent runs must not rotate each other away
        self.failures = 0
        self.lock = threading.Lock()
        self.rcs: list[int] = []

    def run(self) -> PlanResult:
        hosts = self.hosts()
        if not hosts:
            raise PlanError('the inventory and limit of this job match no host')
        if self.plan.get('rolling'):
            self._rolling(hosts)
        else:
            count = self.plan.get('lanes') or self._pool_slots() or 1
            self._lanes(hosts, count)
        rc = max(self.rcs, default=0)
        return PlanResult(rc=rc, status='successful' if rc == 0 and not self.failures else 'failed')

    # -- hosts and estimates ---------------------------------------------------------------

    def hosts(self) -> list[str]:
        return _list_hosts(self.kwargs['project_dir'], self.kwargs['playbook'], self.kwargs['inventory'],
                           self.kwargs.get('limit'), self.kwargs['envvars'])

    def estimates(self, hosts: list[str]) -> list[planner.Estimate]:
        return estimate_hosts(self.store, hosts)

    def _pool_slots(self) -> int | None:
        pool = self.plan.get('pool')
        return self.store.pools.get(pool)['slots'] if pool else None

    # -- lanes ---------------------------------------------------------------------------

    def _lanes(self, hosts: list[str], count: int) -> None:
        plan = planner.lanes(self.estimates(hosts), min(count, len(hosts)))
        self.store.jobs.set_host_runs(self.job['id'], [
            {'host': item.host, 'lane': lane.index, 'status': 'pending', 'estimate_seconds': item.seconds}
            for lane in plan for item in lane.hosts])
        threads = [threading.Thread(target=self._lane, args=(lane,), name='dbfleet-lane-%d' % lane.index, daemon=True)
                   for lane in plan if lane.hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _lane(self, lane: planner.Lane) -> None:
        for position, item in enumerate(lane.hosts):
            where = {'lane': lane.index, 'estimate_seconds': item.seconds}
            try:
                self._host(item.host, item.host, where)
            except Exception as exc:  # the lane cannot go on: its remaining hosts fail with the reason
                log.exception('job %s lane %d failed', self.job['id'], lane.index)
                self._mark([rest.host for rest in lane.hosts[position:]], where, 'failed',
                           detail='dbfleet could not run this host: %s' % exc)
                with self.lock:
                    self.failures += len(lane.hosts) - position
                return

    # -- rolling -------------------------------------------------------------------------

    def _rolling(self, hosts: list[str]) -> None:
        groups = planner.batches(hosts, self.plan['rolling'])
        self.store.jobs.set_host_runs(self.job['id'], [{'host': host, 'batch': index, 'status': 'pending'}
                                                  for index, group in enumerate(groups) for host in group])
        for index, group in enumerate(groups):
            failed = self._host(','.join(group), None, {'batch': index}, group=group)
            if planner.batch_failed_too_much(failed, len(group), self.plan.get('max_fail_percentage')):
                rest = [host for later in groups[index + 1:] for host in later]
                self.store.jobs.set_host_runs(self.job['id'], [
                    {'host': host, 'batch': position, 'status': 'not_run',
                     'detail': 'batch %d failed %d of %d hosts, beyond max_fail_percentage %s'
                               % (index, failed, len(group), self.plan.get('max_fail_percentage', '(all)'))}
                    for position, later in enumerate(groups[index + 1:], start=index + 1) for host in later])
                with self.lock:
                    self.failures += len(rest) or 1
                return

    # -- one run -------------------------------------------------------------------------

    def _host(self, limit: str, host: str | None, where: dict, group: list[str] | None = None) -> int:
        """Run the play on `limit` (one host, or a batch); returns how many of its hosts failed."""
        names = group or [host]
        if self.control.stop_reason is not None:
            self._mark(names, where, 'not_run', detail='the job was %s first' % self.control.stop_reason)
            return 0
        holder = '%s:%s' % (self.job['id'], limit)[:255]
        pool = self.plan.get('pool')
        if pool and not self._take_slot(pool, holder):
            self._mark(names, where, 'not_run', detail='the job was %s while waiting for pool %s'
                       % (self.control.stop_reason, pool))
            return 0
        started = utcnow()
        self._mark(names, where, 'running', started_at=started)
        stats: dict = {}

        def handler(event: dict) -> bool:
            if event.get('event') == 'playbook_on_stats':
                stats.update(event.get('event_data') or {})
            return self.control.add_event(event)

        try:
            from ansible_runner.interface import init_runner
            options = dict(self.kwargs, limit=limit, event_handler=handler, ident='%s-%s' % (
                self.job['attempt'], host or 'batch%d' % where.get('batch', 0)))
            # Setting up writes the shared env/ files of the private data dir: one lane at a time.
            with INIT_LOCK:
                runner = init_runner(**options)
            runner.run()
        finally:
            if pool:
                self.control.release_lease(pool, holder)
        failed_hosts = {name for key in ('failures', 'dark') for name, count in stats.get(key, {}).items() if count}
        if runner.rc not in (0, None) and not failed_hosts and self.control.stop_reason is None:
            failed_hosts = set(names)  # the run failed before any task (syntax, connection to nothing)
        finished = utcnow()
        for name in names:
            status = 'failed' if name in failed_hosts else (
                'not_run' if self.control.stop_reason is not None and runner.rc not in (0, None) else 'ok')
            self._mark([name], where, status, started_at=started, finished_at=finished,
                       detail='ansible-playbook exited %s' % runner.rc if status == 'failed' else None)
        with self.lock:
            self.rcs.append(runner.rc or 0)
            self.failures += len(failed_hosts & set(names))
        return len(failed_hosts & set(names))

    def _take_slot(self, pool: str, holder: str) -> bool:
        while self.control.stop_reason is None:
            if self.control.hold_lease(pool, holder):
                return True
            time.sleep(POOL_WAIT_SECONDS)
            self.control.should_stop()  # deadlines pass while waiting too
        return False

    def _mark(self, names: list[str], where: dict, status: str, **fields) -> None:
        estimate = where.get('estimate_seconds')
        self.store.jobs.set_host_runs(self.job['id'], [
            dict({'host': name, 'lane': where.get('lane'), 'batch': where.get('batch'), 'status': status,
                  'estimate_seconds': estimate}, **fields) for name in names])


def estimate_hosts(store, hosts: list[str]) -> list[planner.Estimate]:
    """Estimates from the store: recent backup durations, data sizes from facts, the fleet's throughput."""
    durations = store.backups.durations(hosts)
    history: dict[str, list[tuple[float, float]]] = {}
    for backup in store.backups.list(limit=500):
        if backup.get('status') == 'ok' and backup.get('bytes') and backup.get('duration_seconds'):
            history.setdefault(backup['host'], []).append((backup['bytes'], backup['duration_seconds']))
    wanted = set(hosts)
    sizes = {record['name']: record['facts'].get('schemas.totals.total_bytes')
             for record in store.hosts.inventory(fact_paths=['schemas.totals.total_bytes']) if record['name'] in wanted}
    return planner.estimate(hosts, durations, {host: size for host, size in sizes.items() if size},
                            planner.throughput(history))


def list_hosts(settings, playbook: str, inventory: str, limit: str | None) -> list[str]:
    """The hosts a playbook would run on (for plan previews of file inventories), within the time
    and memory an API call may give Ansible (bounded.TimeLimit, bounded.MemoryLimit)."""
    project = os.path.realpath(settings.project_dir)
    env = {'DBFLEET_STORE_URL': settings.store_url}
    if os.path.isfile(os.path.join(project, 'ansible.cfg')):
        env['ANSIBLE_CONFIG'] = os.path.join(project, 'ansible.cfg')
    return _list_hosts(project, playbook, os.path.join(project, inventory), limit, env,
                       seconds=settings.ansible_call_seconds, memory_bytes=settings.ansible_call_memory_bytes)


def _list_hosts(project_dir: str, playbook: str, inventory: str, limit: str | None, envvars: dict,
                seconds: float = 300.0, memory_bytes: int | None = None) -> list[str]:
    """The hosts of every play, once each, in inventory order: the order Ansible's own serial
    batches take, so that a rolling plan's first batch is the inventory's first hosts.

    `ansible-playbook --list-hosts` says which hosts the plays reach (patterns, templated hosts
    lines, --limit), but prints each play's hosts from a set, in a different order at every run;
    `ansible all --list-hosts` gives the inventory's order. Both run at once."""
    bin_dir = os.path.dirname(sys.executable)
    narrow = ['--limit', limit] if limit else []
    commands = [[os.path.join(bin_dir, 'ansible-playbook'), '--list-hosts', '-i', inventory, playbook] + narrow,
                [os.path.join(bin_dir, 'ansible'), 'all', '--list-hosts', '-i', inventory] + narrow]
    # An inventory Ansible cannot read is an error, not an empty list of hosts.
    env = dict(os.environ, **envvars, ANSIBLE_INVENTORY_UNPARSED_FAILED='1')
    outputs = []
    for finished in run_bounded(commands, project_dir, env, seconds, memory_bytes):
        if finished.returncode != 0:
            raise PlanError('listing the hosts failed: %s' % _first_error(finished.stderr or finished.stdout))
        outputs.append(finished.stdout)
    reached, inventory_order = set(_listed_hosts(outputs[0])), _listed_hosts(outputs[1])
    return [host for host in inventory_order if host in reached] + sorted(reached - set(inventory_order))


def _first_error(output: str) -> str:
    """Ansible's error line, cut short: the lines after it may quote the inventory's contents."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    line = next((line for line in lines if 'ERROR' in line), lines[-1] if lines else 'no output')
    return line if len(line) <= 200 else line[:200] + '...'


def _listed_hosts(output: str) -> list[str]:
    """Host names under the `hosts (N):` lines of an Ansible --list-hosts output, once each."""
    hosts: list[str] = []
    listing = False
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.startswith('hosts ('):
            listing = True
        elif listing and line.startswith('    ') and stripped:
            if stripped not in hosts:
                hosts.append(stripped)
        else:
            listing = False
    return hosts
