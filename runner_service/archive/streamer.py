"""`dbfleet archive run`: a supervised binary log stream per primary into its archive directory.

For each host, one `mariadb-binlog --read-from-remote-server --raw --stop-never` (mysqlbinlog on MySQL)
writes the server's logs into `<dest>/<host>/binlogs/` as the server writes them. mariadb-binlog does not
reconnect: when the stream ends (the server restarted, the connection was killed, the network dropped)
it is started again after a backoff, from the first file that has no manifest yet, which it rewrites from
its start. Every few seconds the supervisor looks for files the server has rotated past (a later file is
being streamed): each gets its `.json` manifest (the same reading and manifest as the binlog_archive
module: the collection's module_utils.binlog_archive), is recorded in the store with the gap before it,
and the archive's lag is updated (0 while the stream holds everything the server has written).

Login options come from a MySQL option file (--defaults-file, 0600: user, password, socket or TLS
options), included by a per-host option file that adds the host's address and port from the store;
nothing secret is ever on a command line.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field

from dbfleet.clock import utcnow
from dbfleet.paths import checkout_collections
from dbfleet.store import Store, StoreError

log = logging.getLogger('dbfleet.archive')

POLL_SECONDS = 2.0
# How often `--tags` is matched against the store again (a failover's new primary is picked up).
REFRESH_SECONDS = 60.0
BACKOFF_SECONDS = (1, 2, 4, 8, 15, 30, 60)
STDERR_TAIL = 1500


def archive_logic():
    """The collection's module_utils.binlog_archive (what the binlog_archive module runs), from the
    checkout's collections path or an installed collection on Ansible's paths."""
    roots = [str(checkout_collections())] if checkout_collections() is not None else []
    try:
        from ansible import constants
        roots += list(constants.COLLECTIONS_PATHS)
    except ImportError:
        pass
    for root in roots:
        if root not in sys.path and os.path.isdir(os.path.join(root, 'ansible_collections', 'dbfleet')):
            sys.path.append(root)
    return importlib.import_module('ansible_collections.dbfleet.mysql.plugins.module_utils.binlog_archive')


@dataclass
class Target:
    """One primary: its name (the archive directory and the store's host), where to reach it."""
    name: str
    address: str | None = None
    port: int | None = None


@dataclass
class StreamState:
    restarts: int = 0
    last_error: str | None = None
    archived: list[str] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    lag_seconds: float | None = None
    connected: bool = False


class HostStreamer:
    """The stream of one host and the files it completes."""

    def __init__(self, target: Target, dest: str, defaults_file: str, store: Store, stop: threading.Event,
                 tool: str | None = None, poll_seconds: float = POLL_SECONDS, backoff=BACKOFF_SECONDS):
        self.logic = archive_logic()
        self.target = target
        self.directory = self.logic.ensure_dir(self.logic.archive_dir(dest, target.name))
        self.store = store
        self.stop = stop
        self.poll_seconds = poll_seconds
        self.backoff = backoff
        self.state = StreamState()
        self.tool = tool or self.logic.find_tool(_which)
        self.client = _which('mariadb') or _which('mysql')
        self._private = tempfile.mkdtemp(prefix='dbfleet-archive-')
        os.chmod(self._private, 0o700)
        self.defaults_file = os.path.join(self._private, 'client.cnf')
        lines = ['!include %s' % os.path.abspath(defaults_file), '[client]']
        if target.address:
            lines += ['host=%s' % target.address, 'port=%d' % int(target.port or 3306), 'protocol=tcp']
        descriptor = os.open(self.defaults_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        self.process: subprocess.Popen | None = None

    # -- the server ------------------------------------------------------------------------

    def server_logs(self) -> list[tuple[str, int]]:
        """SHOW BINARY LOGS through the command-line client and the same option file."""
        result = subprocess.run([self.client, '--defaults-file=%s' % self.defaults_file, '-N', '-B', '-e',
                                 'SHOW BINARY LOGS'], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError('SHOW BINARY LOGS on %s failed: %s' % (self.target.name, result.stderr.strip()[-300:]))
        return [(line.split('\t')[0], int(line.split('\t')[1])) for line in result.stdout.splitlines() if line]

    # -- the files -------------------------------------------------------------------------

    def local_files(self) -> list[str]:
        names = [entry for entry in os.listdir(self.directory) if self.logic.binlog_number(entry)]
        return sorted(names, key=self.logic.binlog_number)

    def start_file(self, server_names: list[str]) -> str | None:
        """The first file without a manifest (rewritten from its start), else the one after the newest
        archived; the server's oldest when that one is gone (a gap) or nothing is archived yet."""
        complete = {manifest['file'] for manifest in self.logic.load_manifests(self.directory)}
        pending = [name for name in self.local_files() if name not in complete]
        if pending and pending[0] in server_names:
            return pending[0]
        for name in pending:
            # Cut short and gone from the server: never to be completed, kept aside for a person to look at.
            os.rename(os.path.join(self.directory, name), os.path.join(self.directory, '.%s.incomplete' % name))
        newest = max(complete, key=self.logic.binlog_number) if complete else None
        later = [name for name in server_names
                 if newest is None or self.logic.binlog_number(name) > self.logic.binlog_number(newest)]
        return later[0] if later else (server_names[-1] if server_names else None)

    def complete_rotated(self, server: list[tuple[str, int]]) -> None:
        """Manifests for files a later file follows (the server rotated past them), then the store."""
        manifests = self.logic.load_manifests(self.directory)
        complete = {manifest['file'] for manifest in manifests}
        local = self.local_files()
        archived = []
        for name in local[:-1]:
            if name in complete:
                continue
            path = os.path.join(self.directory, name)
            os.chmod(path, 0o600)
            manifest = self.logic.manifest_for(path, self.tool, utcnow())
            self.logic.write_json_atomically(path + '.json', manifest)
            manifests.append(manifest)
            archived.append(manifest)
        manifests.sort(key=lambda manifest: self.logic.binlog_number(manifest['file']))
        names = [name for name, _size in server]
        gaps = self.logic.detect_gaps(manifests, names)
        current = names[-1] if names else None
        self.state.lag_seconds = self.lag(manifests, server, local)
        self.state.gaps = gaps
        self.state.archived += [manifest['file'] for manifest in archived]
        self.store.binlogs.record_pass(self.target.name, dict(archived=archived, gaps=gaps, current_file=current,
                                                              lag_seconds=self.state.lag_seconds,
                                                              path=self.directory), utcnow())
        for manifest in archived:
            log.info('%s: archived %s (%s .. %s)', self.target.name, manifest['file'], manifest['first_gtid'],
                     manifest['last_gtid'])

    def lag(self, manifests, server, local) -> float | None:
        """0 when the streamed copy of the server's current file is as long as the server's; else now
        minus the newest archived event."""
        if server and local and local[-1] == server[-1][0] and \
                os.path.getsize(os.path.join(self.directory, local[-1])) >= server[-1][1]:
            return 0.0
        current = server[-1][0] if server else None
        return self.logic.lag_seconds(manifests, current, utcnow())

    # -- the stream ------------------------------------------------------------------------

    def run(self) -> None:
        failures = 0
        lock = None
        try:
            # One writer per archive directory: a pass (binlog_archive.yml) or another stream holding it
            # is waited for, never written beside.
            while lock is None and not self.stop.is_set():
                try:
                    lock = self.logic.hold_archive(self.directory)
                except self.logic.ArchiveBusy as exc:
                    self.state.last_error = str(exc)
                    log.warning('%s: %s; waiting for it', self.target.name, exc)
                    self.stop.wait(self.backoff[-1])
            while not self.stop.is_set():
                try:
                    server = self.server_logs()
                    start = self.start_file([name for name, _size in server])
                    if start is None:
                        raise RuntimeError('the server lists no binary log')
                    self.stream_from(start)
                    # A stream that ran is restarted at once; one that never got going waits longer each time.
                    failures = 0 if self.state.connected else failures + 1
                except Exception as exc:  # a supervisor outlives every failure of what it supervises
                    self.state.last_error = str(exc)[-STDERR_TAIL:]
                    log.warning('%s: %s', self.target.name, self.state.last_error)
                    failures += 1
                if self.stop.is_set():
                    break
                self.state.restarts += 1
                self.stop.wait(self.backoff[min(failures, len(self.backoff) - 1)])
        finally:
            self._terminate()
            if lock is not None:
                os.close(lock)
            for name in os.listdir(self._private):
                os.unlink(os.path.join(self._private, name))
            os.rmdir(self._private)

    def stream_from(self, start: str) -> None:
        command = self.logic.fetch_command(self.tool, self.defaults_file, self.directory, [start], stop_never=True)
        stderr = tempfile.TemporaryFile(dir=self._private)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        self.state.connected = False
        log.info('%s: streaming from %s', self.target.name, start)
        try:
            while not self.stop.is_set() and self.process.poll() is None:
                self.stop.wait(self.poll_seconds)
                self.state.connected = True
                self.complete_rotated(self.server_logs())
            if self.process.poll() is not None:
                stderr.seek(0)
                self.state.last_error = 'the stream ended (exit %s): %s' % (
                    self.process.returncode, stderr.read().decode('utf-8', 'replace').strip()[-STDERR_TAIL:])
                log.warning('%s: %s', self.target.name, self.state.last_error)
                self.complete_rotated(self.server_logs())
        finally:
            self._terminate()
            stderr.close()

    def _terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


def _which(name: str) -> str | None:
    import shutil
    return shutil.which(name)


def run_archive(store: Store, dest: str, defaults_file: str, hosts: list[str], stop: threading.Event,
                poll_seconds: float = POLL_SECONDS, tags=None, refresh_seconds: float = REFRESH_SECONDS,
                streamer=None) -> dict[str, HostStreamer]:
    """Stream every host named (by name; address and port from the store when it has them) and every host of
    the store the tag expression `tags` matches, until `stop` is set. The tag expression is read again every
    `refresh_seconds`: a host that comes to match it (the new primary after a failover, once inspected) gets
    a stream; one that no longer does has its stream stopped, its archive kept. Returns every streamer
    started. `streamer` builds one (HostStreamer)."""
    make = streamer or HostStreamer
    started: dict[str, HostStreamer] = {}
    running: dict[str, tuple[threading.Thread, threading.Event]] = {}

    def wanted() -> set[str]:
        names = set(hosts)
        if tags is not None:
            try:
                names |= {host['name'] for host in store.hosts.inventory(fact_paths=()) if tags.matches(host['tags'])}
            except (StoreError, ValueError) as exc:  # the store is away: keep what runs, look again later
                log.warning('archive: the hosts matching %s could not be read (%s): keeping %s', tags,
                            exc, ', '.join(sorted(running)) or 'none')
                names |= set(running)
        return names

    def start(name: str) -> None:
        record = store.hosts.get(name)
        target = Target(name, record.get('address') if record else None, record.get('port') if record else None)
        own_stop = threading.Event()
        started[name] = make(target, dest, defaults_file, store, own_stop, poll_seconds=poll_seconds)
        thread = threading.Thread(target=started[name].run, name='archive-%s' % name, daemon=True)
        running[name] = (thread, own_stop)
        thread.start()
        log.info('archive: streaming %s', name)

    def finish(name: str) -> None:
        thread, own_stop = running.pop(name)
        own_stop.set()
        thread.join()

    while True:
        names = wanted()
        for name in sorted(names - set(running)):
            start(name)
        for name in sorted(set(running) - names):
            log.info('archive: %s no longer matches %s: its stream stops, its archive stays', name, tags)
            finish(name)
        if stop.wait(refresh_seconds if tags is not None else None):
            break
    for name in sorted(running):
        finish(name)
    return started
