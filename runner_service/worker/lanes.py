"""Running a job that has a batch plan (runner_service.jobs.planner): lanes, rolling batches, a pool.

The play's hosts come from `ansible-playbook --list-hosts` (the job's inventory and limit, as
Ansible resolves them), in inventory order. Every host gets a row in job_host_runs: lane or
batch, estimate, the worker that ran it, start, end, status.

Lanes are spread over the workers of the job's queue. The worker that took the job (the
coordinator) plans the lanes and posts each as a piece on the job's lane board in Redis
(runner_service.worker.lane_board); it runs its share of them at once (lanes / workers listening
to the queue, or DBFLEET_LANES_PER_WORKER) and asks as many helper runs as the rest needs
(runner_service.worker.lane_share), which other workers take ahead of waiting jobs. Each of
them claims the next piece, runs its hosts one after another (one ansible-runner run per host,
so a lane never runs two hosts at once), and claims again until none waits; a busy queue's
lanes end up run by the coordinator itself. The coordinator writes the helpers' events with
its own, and takes back the piece of a worker that stopped renewing its claim (its host died):
the host it was running is worker_lost, run again on another worker when the job's retries
allow, and the lane's other hosts go on elsewhere.

Rolling batches run one after another in the coordinator, one run per batch, and stop when a
batch fails more than the plan allows.

A plan's window_end is when the run's window closes: after it no host (or batch) starts, those
running finish, and the hosts not started are recorded `skipped` with the reason (the job fails
naming them). A deadline is another thing: it kills what runs. With a pool, every host run first takes a slot of the
pool, which the store keeps for the whole fleet (waiting while it is full, as long as the job
is not canceled or past its deadline), and gives it back after.

The lanes runner sees the job run it belongs to (runner_service.worker.run.JobRun, or a helper's
LaneShare) only through RunControl.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from dbfleet.clock import utcnow
from runner_service.bounded import run_bounded
from runner_service.jobs import planner
from runner_service.worker.lane_board import EVENT_BATCH, LaneBoard, Piece

log = logging.getLogger(__name__)

POOL_WAIT_SECONDS = 0.5
# How often the coordinator relays helpers' events, looks for lost pieces and checks the job.
COORDINATE_SECONDS = 0.5
# How often a worker renews its claims on the pieces it runs (lane_board.CLAIM_SECONDS is the limit).
RENEW_SECONDS = 2.0
INIT_LOCK = threading.Lock()


@dataclass
class PlanResult:
    rc: int
    status: str  # successful | failed
    lost: list[str]  # hosts whose worker was lost while running them and that were not run again
    skipped: list[str] = field(default_factory=list)  # hosts not started: the plan's window had ended
    window_end: dt.datetime | None = None


class PlanError(Exception):
    """The plan cannot run (no hosts, an unknown pool): the job fails with this message."""


class RunControl(Protocol):
    """What a lanes runner needs from the job run it belongs to."""

    stop_reason: str | None  # 'canceled', 'timed_out', 'worker_stopped' (or a helper's 'job_ended') once it must stop
    worker: str  # this run's worker, host/pid: recorded with the hosts it runs, and its claims

    def abandoning(self) -> bool:
        """True when this run stops without recording its hosts' ends: a lanes helper whose worker is
        stopping or whose job attempt ended leaves its piece for the coordinator to take back."""

    def should_stop(self) -> bool:
        """Checks the deadline and cancel requests now (waiting for a pool slot lets time pass);
        True once the job must stop."""

    def add_event(self, event: dict) -> bool:
        """An ansible-runner event of one of the plan's runs, for the job's event stream."""

    def add_row(self, row: dict) -> None:
        """An event row a lanes helper relayed (the coordinator writes them with its own)."""

    def flush_events(self) -> None:
        """Return once the events added so far are on their way (written, or relayed)."""

    def hold_lease(self, pool: str, holder: str) -> bool:
        """Take a slot of `pool` for `holder` if one is free, kept while the job runs; False when full."""

    def release_lease(self, pool: str, holder: str) -> None:
        """Give the slot back."""


@dataclass
class LaneSpread:
    """How a job's lanes reach other workers: its board, the workers listening to its queue, how
    to ask them for help, and the most lanes one worker runs at once (DBFLEET_LANES_PER_WORKER)."""

    board: LaneBoard
    workers: int = 1
    ask_helpers: Callable[[int, int], None] | None = None  # (helpers, share)
    most: int | None = None


class PlanRunner:
    def __init__(self, control: RunControl, job: dict, store, kwargs: dict, spread: LaneSpread | None = None,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.control = control
        self.job = job
        self.store = store
        self.plan = job['plan']
        self.clock = clock  # tests pass their own time: the window end is read against it
        self.window_end = _instant(self.plan.get('window_end'))
        self.spread = spread
        self.kwargs = dict(kwargs, rotate_artifacts=0)  # concurrent runs must not rotate each other away
        self.failures = 0
        self.lock = threading.Lock()
        self.rcs: list[int] = []
        self.lost: list[str] = []
        self.claims: dict[str, threading.Event] = {}  # piece id -> set when the claim was taken back
        self.retried = 0

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
        # Helpers on other workers record their skipped hosts too: the store has them all.
        skipped = sorted(run['host'] for run in self.store.jobs.host_runs(self.job['id']) if run['status'] == 'skipped')
        return PlanResult(rc=rc, status='successful' if rc == 0 and not self.failures and not skipped else 'failed',
                          lost=sorted(self.lost), skipped=skipped, window_end=self.window_end)

    # -- hosts and estimates ---------------------------------------------------------------

    def hosts(self) -> list[str]:
        return _list_hosts(self.kwargs['project_dir'], self.kwargs['playbook'], self.kwargs['inventory'],
                           self.kwargs.get('limit'), self.kwargs['envvars'])

    def estimates(self, hosts: list[str]) -> list[planner.Estimate]:
        return estimate_hosts(self.store, hosts)

    def _pool_slots(self) -> int | None:
        pool = self.plan.get('pool')
        return self.store.pools.get(pool)['slots'] if pool else None

    # -- lanes: the coordinator ------------------------------------------------------------

    def _lanes(self, hosts: list[str], count: int) -> None:
        plan = [lane for lane in planner.lanes(self.estimates(hosts), min(count, len(hosts))) if lane.hosts]
        self.store.jobs.set_host_runs(self.job['id'], [
            {'host': item.host, 'lane': lane.index, 'status': 'pending', 'estimate_seconds': item.seconds}
            for lane in plan for item in lane.hosts])
        pieces = [Piece(id=str(lane.index), lane=lane.index, hosts=[[item.host, item.seconds] for item in lane.hosts])
                  for lane in plan]
        share = planner.lane_share(len(pieces), self.spread.workers, self.spread.most)
        self.spread.board.post(pieces)
        helpers = -(-len(pieces) // share) - 1
        if helpers and self.spread.ask_helpers is not None:
            try:
                self.spread.ask_helpers(helpers, share)
            except Exception as exc:  # Redis refused: this worker runs every lane itself
                log.warning('job %s: could not ask other workers for lanes: %s', self.job['id'], exc)
        try:
            self._coordinate(share)
        finally:
            self.spread.board.clear()

    def _coordinate(self, share: int) -> None:
        """Run up to `share` pieces here at once, relay the helpers' events, take back lost pieces,
        until every piece is done (or this worker is stopping: the job is lost, retried as a whole)."""
        board = self.spread.board
        threads: list[threading.Thread] = []
        renewing = self._start_renewing()
        try:
            while True:
                self.control.should_stop()
                try:
                    self._relay()
                    self._recover()
                    threads = [thread for thread in threads if thread.is_alive()]
                    more = min(share - len(threads), board.waiting())
                    for _ in range(max(0, more)):
                        thread = threading.Thread(target=self.work_pieces, name='dbfleet-lane', daemon=True)
                        thread.start()
                        threads.append(thread)
                    if not threads and board.outstanding() <= 0:
                        break
                except Exception as exc:  # Redis away for a moment (a failover): look again
                    log.warning('job %s: the lane board could not be read: %s', self.job['id'], exc)
                if self.control.stop_reason == 'worker_stopped':
                    break
                time.sleep(COORDINATE_SECONDS)
            for thread in threads:
                thread.join()
            self._relay()
        finally:
            renewing.set()
        for result in board.results():
            if 'rc' in result:
                with self.lock:
                    self.rcs.append(result['rc'])
                    self.failures += result['failures']

    def _relay(self) -> None:
        while True:
            rows = self.spread.board.pop_events()
            for row in rows:
                self.control.add_row(row)
            if len(rows) < EVENT_BATCH:  # the list is empty now
                return

    def _recover(self) -> None:
        """Take back the pieces of workers that stopped renewing their claims: the host each was
        running is worker_lost (run again, first in what is left of its lane, while the job's
        max_retries allow), the lane's hosts not yet run go back to wait for a worker."""
        board = self.spread.board
        for piece, worker in board.lost():
            runs = {run['host']: run for run in self.store.jobs.host_runs(self.job['id'])}
            lost = [item for item in piece.hosts if runs.get(item[0], {}).get('status') == 'running']
            rest = [item for item in piece.hosts if runs.get(item[0], {}).get('status') == 'pending']
            when = utcnow().isoformat(timespec='seconds').replace('+00:00', 'Z')
            names = ', '.join(host for host, _ in lost) or 'no host'
            stopping = self.control.stop_reason is not None
            retry = bool(lost) and not stopping and piece.retries < self.job.get('max_retries', 0)
            note = 'its run on %s was lost at %s: the worker stopped answering' % (worker, when)
            notes = dict(piece.notes)
            for host, seconds in lost:
                where = {'lane': piece.lane, 'estimate_seconds': seconds}
                if retry:
                    notes[host] = note + '; run again'
                    self._mark([host], where, 'pending', worker=None, detail=notes[host])
                else:
                    self._mark([host], where, 'worker_lost', worker=worker, finished_at=utcnow(), detail=note)
            if not retry:
                with self.lock:
                    self.failures += len(lost)
                    self.lost.extend(host for host, _ in lost)
            if stopping:
                for host, seconds in rest:
                    self._mark([host], {'lane': piece.lane, 'estimate_seconds': seconds}, 'not_run',
                               detail='the job was %s first' % self.control.stop_reason)
            what = ('lane %d: worker %s stopped answering while it ran %s; ' % (piece.lane, worker, names)
                    + ('run again on another worker' if retry else
                       'not run again (the job was %s)' % self.control.stop_reason if stopping and lost else
                       'not run again (max_retries %d)' % self.job.get('max_retries', 0) if lost else 'nothing was lost'))
            if rest and not stopping:
                what += '; its %d other host(s) go to another worker' % len(rest)
            self.control.add_event({'event': 'verbose', 'created': utcnow().isoformat(),
                                    'stdout': 'dbfleet: %s' % what, 'event_data': {}})
            log.warning('job %s: %s', self.job['id'], what)
            hosts = (lost if retry else []) + (rest if not stopping else [])
            if hosts:
                self.retried += 1
                board.post([Piece(id='%s.%d' % (piece.id.split('.')[0], self.retried), lane=piece.lane, hosts=hosts,
                                  retries=piece.retries + (1 if retry else 0), notes=notes)])

    # -- lanes: every worker that runs some ------------------------------------------------

    def work(self, share: int) -> None:
        """A helper's part: run up to `share` pieces at once until none waits."""
        renewing = self._start_renewing()
        try:
            threads = [threading.Thread(target=self.work_pieces, name='dbfleet-lane', daemon=True)
                       for _ in range(share)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            renewing.set()

    def work_pieces(self) -> None:
        """Claim a waiting piece and run it, again, until none waits or this run must stop."""
        board = self.spread.board
        while not self.control.abandoning():
            try:
                piece = board.claim(self.control.worker)
            except Exception as exc:  # Redis away: the coordinator, or a later look, takes the piece
                log.warning('job %s: could not claim a lane: %s', self.job['id'], exc)
                return
            if piece is None:
                return
            self._piece(piece)

    def _piece(self, piece: Piece) -> None:
        board = self.spread.board
        taken_back = threading.Event()
        self.claims[piece.id] = taken_back
        rc = failures = 0
        try:
            for position, (host, seconds) in enumerate(piece.hosts):
                if taken_back.is_set() or self.control.abandoning():
                    break
                where = {'lane': piece.lane, 'estimate_seconds': seconds}
                try:
                    failed, host_rc = self._host(host, host, where, note=piece.notes.get(host), taken_back=taken_back)
                except Exception as exc:  # the lane cannot go on: its remaining hosts fail with the reason
                    log.exception('job %s lane %d failed', self.job['id'], piece.lane)
                    rest = piece.host_names()[position:]
                    self._mark(rest, where, 'failed', detail='dbfleet could not run this host: %s' % exc)
                    failures += len(rest)
                    break
                rc, failures = max(rc, host_rc), failures + failed
        finally:
            self.claims.pop(piece.id, None)
        if taken_back.is_set() or self.control.abandoning():
            board.abandon(piece.id, self.control.worker)
            return
        self.control.flush_events()  # the piece's events are on their way before it is done
        board.finish(piece.id, self.control.worker, rc, failures)

    def _start_renewing(self) -> threading.Event:
        """A thread that renews this worker's claims every RENEW_SECONDS until the event is set;
        a claim the coordinator took back is flagged, and its piece stops."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(RENEW_SECONDS):
                for piece_id, taken_back in list(self.claims.items()):
                    try:
                        if not self.spread.board.renew(piece_id, self.control.worker):
                            taken_back.set()
                    except Exception as exc:  # Redis away for a moment: the claim lasts CLAIM_SECONDS
                        log.warning('job %s: could not renew lane %s: %s', self.job['id'], piece_id, exc)

        threading.Thread(target=renew, name='dbfleet-lane-claims', daemon=True).start()
        return stop

    # -- rolling -------------------------------------------------------------------------

    def _rolling(self, hosts: list[str]) -> None:
        groups = planner.batches(hosts, self.plan['rolling'])
        self.store.jobs.set_host_runs(self.job['id'], [{'host': host, 'batch': index, 'status': 'pending'}
                                                  for index, group in enumerate(groups) for host in group])
        for index, group in enumerate(groups):
            failed, rc = self._host(','.join(group), None, {'batch': index}, group=group)
            with self.lock:
                self.rcs.append(rc)
                self.failures += failed
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

    def _host(self, limit: str, host: str | None, where: dict, group: list[str] | None = None,
              note: str | None = None, taken_back: threading.Event | None = None) -> tuple[int, int]:
        """Run the play on `limit` (one host, or a batch); returns (how many of its hosts failed, rc)."""
        names = group or [host]
        if self.control.stop_reason is not None:
            if not self.control.abandoning():
                self._mark(names, where, 'not_run', detail='the job was %s first' % self.control.stop_reason)
            return 0, 0
        if self._window_closed(names, where):
            return 0, 0
        holder = '%s:%s' % (self.job['id'], limit)[:255]
        pool = self.plan.get('pool')
        if pool and not self._take_slot(pool, holder):
            if not self.control.abandoning():
                self._mark(names, where, 'not_run', detail='the job was %s while waiting for pool %s'
                           % (self.control.stop_reason, pool))
            return 0, 0
        if pool and self._window_closed(names, where, waited=pool):
            self.control.release_lease(pool, holder)
            return 0, 0
        started = utcnow()
        self._mark(names, where, 'running', started_at=started, detail=note)
        stats: dict = {}

        def handler(event: dict) -> bool:
            if event.get('event') == 'playbook_on_stats':
                stats.update(event.get('event_data') or {})
            return self.control.add_event(event)

        def stop() -> bool:
            return self.control.should_stop() or bool(taken_back and taken_back.is_set())

        try:
            from ansible_runner.interface import init_runner
            options = dict(self.kwargs, limit=limit, event_handler=handler, cancel_callback=stop, ident='%s-%s' % (
                self.job['attempt'], host or 'batch%d' % where.get('batch', 0)))
            # Setting up writes the shared env/ files of the private data dir: one lane at a time.
            with INIT_LOCK:
                runner = init_runner(**options)
            runner.run()
        finally:
            finished = utcnow()  # before the slot is given back: a host's recorded run lies inside its lease
            if pool:
                self.control.release_lease(pool, holder)
        if self.control.abandoning() or (taken_back and taken_back.is_set()):
            return 0, 0  # left as running: the coordinator takes the piece back
        failed_hosts = {name for key in ('failures', 'dark') for name, count in stats.get(key, {}).items() if count}
        if runner.rc not in (0, None) and not failed_hosts and self.control.stop_reason is None:
            failed_hosts = set(names)  # the run failed before any task (syntax, connection to nothing)
        for name in names:
            status = 'failed' if name in failed_hosts else (
                'not_run' if self.control.stop_reason is not None and runner.rc not in (0, None) else 'ok')
            detail = ('ansible-playbook exited %s' % runner.rc if status == 'failed' else
                      'stopped while it ran: the job was %s' % self.control.stop_reason if status == 'not_run' else None)
            self._mark([name], where, status, started_at=started, finished_at=finished,
                       detail='; '.join(filter(None, [detail, note])) or None)
        return len(failed_hosts & set(names)), runner.rc or 0

    def _window_closed(self, names: list[str], where: dict, waited: str | None = None) -> bool:
        """True (and `names` recorded skipped) once the plan's window has ended: no host starts after it."""
        if self.window_end is None or self.clock() < self.window_end:
            return False
        self._mark(names, where, 'skipped', detail='not started: the window ended at %s%s (the plan\'s window_end: '
                   'no host starts after it, those running finish)' % (
                       _iso(self.window_end), ' while it waited for pool %s' % waited if waited else ''))
        return True

    def _take_slot(self, pool: str, holder: str) -> bool:
        while self.control.stop_reason is None:
            if self.control.hold_lease(pool, holder):
                return True
            time.sleep(POOL_WAIT_SECONDS)
            self.control.should_stop()  # deadlines pass while waiting too
        return False

    def _mark(self, names: list[str], where: dict, status: str, **fields) -> None:
        if not names:
            return
        fields.setdefault('worker', self.control.worker if status not in ('pending', 'not_run', 'skipped') else None)
        estimate = where.get('estimate_seconds')
        self.store.jobs.set_host_runs(self.job['id'], [
            dict({'host': name, 'lane': where.get('lane'), 'batch': where.get('batch'), 'status': status,
                  'estimate_seconds': estimate}, **fields) for name in names])


# The fleet's recent runs whose start-up overhead stands in for a host without its own.
FLEET_OVERHEAD_RUNS = 100


def _instant(value) -> dt.datetime | None:
    """A plan's time as stored (ISO text in the job's JSON), aware UTC."""
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(value.replace('Z', '+00:00'))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec='seconds').replace('+00:00', 'Z')


def estimate_hosts(store, hosts: list[str]) -> list[planner.Estimate]:
    """Estimates from the store: recent backup durations, data sizes from facts, the fleet's
    throughput, and each host's start-up overhead (its recent runs', else the fleet's)."""
    durations = store.backups.durations(hosts)
    overheads = store.backups.overheads(hosts)
    fleet_overheads = store.backups.overheads(last=FLEET_OVERHEAD_RUNS)['']
    history: dict[str, list[tuple[float, float]]] = {}
    for backup in store.backups.list(limit=500):
        if backup.get('status') == 'ok' and backup.get('bytes') and backup.get('duration_seconds'):
            history.setdefault(backup['host'], []).append((backup['bytes'], backup['duration_seconds']))
    wanted = set(hosts)
    sizes = {record['name']: record['facts'].get('schemas.totals.total_bytes')
             for record in store.hosts.inventory(fact_paths=['schemas.totals.total_bytes']) if record['name'] in wanted}
    return planner.estimate(hosts, durations, {host: size for host, size in sizes.items() if size},
                            planner.throughput(history), overheads=overheads, fleet_overheads=fleet_overheads)


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
