"""The crontab bridge, host side: what `dbfleet cron exec|sync|diff|watchdog` do on the host
whose crontab is bridged.

- The wrapper (`dbfleet cron exec ID -- COMMAND`) runs the command exactly as crontab would
  have (its shell, stdin, output, exit code), and reports the start and the end of the run to
  the API. When the API cannot be reached it runs the command anyway and spools the reports
  under the spool directory; they are delivered, in order, by the next wrapper or watchdog
  run. The run id travels with the report, so a report delivered twice is stored once.
- `sync` makes the host's crontab files match the platform: an entry in mode observe has its
  command wrapped, one taken over is commented out with a marker naming its schedule, a
  reverted one is back exactly as it was; an entry edited on the platform gets its new line.
  Only those lines change; each file is written atomically, and only if nobody changed it
  since it was read.
- The watchdog (run from crontab every minute) syncs while the platform answers, and when it
  has not answered for longer than a threshold, puts the taken-over entries back into crontab
  (wrapped, so their runs are reported later); when the platform answers again it hands them
  back. A run claims its slot through the API, so a slot is never run by both sides.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from dbfleet.settings import Settings
from runner_service.bridge.crontab import edit, files, parse

REPORT_TIMEOUT = 5.0  # seconds the wrapper waits for the API before it spools and goes on
TAIL_BYTES = 8192  # the end of the output that goes into the report
STATE_FILE = 'watchdog.state'  # JSON, named apart from the reports


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def wrapper_path() -> str:
    """The dbfleet executable crontab lines call (absolute: cron's PATH is short)."""
    beside = Path(sys.executable).parent / 'dbfleet'
    if beside.is_file():
        return str(beside)
    found = shutil.which('dbfleet')
    if found:
        return os.path.abspath(found)
    raise RuntimeError('cannot find the dbfleet executable beside %s or on PATH' % sys.executable)


def client_for(settings: Settings, timeout: float = REPORT_TIMEOUT):
    from runner_service.client import ApiClient
    return ApiClient(settings.api_url, settings.token or '', timeout=timeout)


def is_unreachable(exc) -> bool:
    """An answer worth retrying later: no answer at all, a server error, or the token refused
    (a rotated token in the config file is fixed and the spool then delivers)."""
    return exc.status is None or exc.status >= 500 or exc.status in (401, 403, 408, 429)


# -- the spool ---------------------------------------------------------------------------------

class Spool:
    """Reports that could not be delivered yet, one JSON file each, delivered oldest first."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def put(self, report: dict) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = '%s-%s-%s.json' % (utcnow().strftime('%Y%m%dT%H%M%S%f'), report['id'], report['phase'])
        temporary = self.directory / ('.' + name)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, 'w') as handle:
            json.dump(report, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.directory / name)
        return self.directory / name

    def pending(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(path for path in self.directory.glob('*.json') if not path.name.startswith('.'))

    def deliver(self, client) -> tuple[int, int]:
        """(delivered, rejected). Stops at the first report the API cannot take now; one
        deliverer at a time (a lock file), the others leave it to that one."""
        from runner_service.client import ApiError
        if not self.pending():
            return 0, 0
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / '.lock', 'w') as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0, 0
            delivered = rejected = 0
            for path in self.pending():
                try:
                    report = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue  # removed by a deliverer that had the lock before us, or half-written
                try:
                    client.cron_report(report)
                    delivered += 1
                except ApiError as exc:
                    if is_unreachable(exc):
                        break
                    rejected += 1  # the API will never take it (entry deleted): keep it aside
                    rejected_dir = self.directory / 'rejected'
                    rejected_dir.mkdir(exist_ok=True)
                    path.replace(rejected_dir / path.name)
                    continue
                path.unlink(missing_ok=True)
            return delivered, rejected


# -- the wrapper -------------------------------------------------------------------------------

def run_wrapped(schedule_id: str, command: list[str], settings: Settings, host: str) -> int:
    """Run `command` for crontab entry `schedule_id`, reporting to the API; the command's exit
    code (128 + N when a signal N ended it)."""
    spool = Spool(settings.cron_spool)
    fallback = schedule_id in WatchdogState.load(spool.directory).fallback_ids
    report = {'id': uuid.uuid4().hex, 'schedule_id': schedule_id, 'host': host, 'phase': 'start',
              'fallback': fallback, 'started_at': utcnow().isoformat()}
    client = client_for(settings) if settings.token else None
    try:
        if _send(client, spool, report) == 'skip':
            return 0  # the platform runs this slot itself
        started = time.monotonic()
        code, tail = _run(command)
        report.update(phase='end', finished_at=utcnow().isoformat(), exit_code=max(-255, min(255, code)),
                      duration_seconds=round(time.monotonic() - started, 3),
                      output_tail=tail.decode('utf-8', 'replace'))
        _send(client, spool, report)
        return code
    finally:
        if client is not None:
            client.close()


def _send(client, spool: Spool, report: dict) -> str:
    """'run' or 'skip' as the API says; 'run' (and the report spooled) when it cannot say."""
    from runner_service.client import ApiError
    if client is None:
        spool.put(report)
        return 'run'
    try:
        spool.deliver(client)
        return client.cron_report(report)['action']
    except ApiError as exc:
        if is_unreachable(exc):
            spool.put(report)
        else:  # refused for good (the entry was deleted on the platform): crontab still runs it
            print('dbfleet cron exec: report refused: %s' % exc.detail, file=sys.stderr)
        return 'run'


def _run(command: list[str]) -> tuple[int, bytes]:
    """Run it with our stdin, passing its output through as it comes; (exit code, output tail)."""
    argv = [os.environ.get('SHELL') or '/bin/sh', '-c', command[0]] if len(command) == 1 else command
    try:
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        message = ('dbfleet cron exec: cannot run %s: %s\n' % (argv[0], exc)).encode()
        sys.stderr.buffer.write(message)
        return 127, message
    tail: deque[bytes] = deque()
    size = [0]
    lock = threading.Lock()

    def pump(source, target) -> None:
        for chunk in iter(lambda: source.read1(65536), b''):
            target.write(chunk)
            target.flush()
            with lock:
                tail.append(chunk)
                size[0] += len(chunk)
                while size[0] - len(tail[0]) >= TAIL_BYTES:
                    size[0] -= len(tail.popleft())

    pumps = [threading.Thread(target=pump, args=(child.stdout, sys.stdout.buffer), daemon=True),
             threading.Thread(target=pump, args=(child.stderr, sys.stderr.buffer), daemon=True)]
    for thread in pumps:
        thread.start()
    previous = {number: signal.signal(number, lambda received, frame: child.send_signal(received))
                for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        code = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    for thread in pumps:
        thread.join()
    return (128 - code if code < 0 else code), b''.join(tail)[-TAIL_BYTES:]


# -- making the crontab files match the platform -------------------------------------------------

@dataclass
class FileChange:
    source: files.Source
    old: str
    new: str
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        return edit.diff(self.old, self.new, self.source.describe())


def source_of(file: dict) -> files.Source:
    if file['kind'] == 'user':
        return files.source_for(user=file['name'])
    if file['kind'] == 'system':
        return files.source_for(system=True)
    if file['kind'] == 'crond':
        return files.source_for(crond=file['name'].rsplit('/', 1)[-1])
    return files.source_for(path=file['name'], path_system=file['system'])


def plan_sync(entries: list[dict], fallback_ids: set[str] = frozenset(), wrapper: str | None = None
              ) -> list[FileChange]:
    """What each crontab file of these entries (the platform's view of one host) should become."""
    wrapper = wrapper or wrapper_path()
    by_file: dict[tuple, list[dict]] = {}
    for entry in entries:
        by_file.setdefault((entry['file']['kind'], entry['file']['name'], entry['file']['system']), []).append(entry)
    changes = []
    for (kind, name, system), group in sorted(by_file.items()):
        source = source_of({'kind': kind, 'name': name, 'system': system})
        old = files.read(source)
        change = FileChange(source, old, old)
        for entry in sorted(group, key=lambda item: item['line']):
            crontab = parse(change.new, source=source.describe(), system=system)
            number = _locate(crontab, entry)
            if number is None:
                change.notes.append('%s: its line is no longer in %s (changed by hand?); left alone: %s'
                                    % (entry['name'], source.describe(), entry['original']))
                continue
            wanted = desired_line(entry, system, entry['schedule_id'] in fallback_ids, wrapper)
            current = crontab.lines[number - 1].rstrip('\r\n')
            if current != wanted:
                change.new = edit.replace_line(crontab, number, wanted)
        changes.append(change)
    return changes


def desired_line(entry: dict, system: bool, fallback: bool, wrapper: str) -> str:
    original = entry['original']
    if entry['mode'] == 'reverted':
        return original
    if entry['mode'] == 'takeover' and not fallback:
        return edit.taken_line(original, entry['schedule_id'])
    parsed = parse(original + '\n', source='platform', system=system).entries
    if not parsed:
        raise ValueError('%s: the platform\'s line does not parse as a crontab entry: %s' % (entry['name'], original))
    return edit.wrapped_line(parsed[0], entry['schedule_id'], wrapper)


def _locate(crontab, entry: dict) -> int | None:
    """The line holding this entry now: wrapped or commented out under its id, else the
    original text (the line the import saw, when the same text appears more than once)."""
    found = crontab.find_observed(entry['schedule_id'])
    if found is not None:
        return found.number
    taken = crontab.find_taken(entry['schedule_id'])
    if taken is not None:
        return taken.number
    same = [candidate.number for candidate in crontab.entries
            if candidate.text == entry['original'] and candidate.observed is None]
    if not same:
        return None
    return entry['line'] if entry['line'] in same else same[0]


def apply(changes: list[FileChange]) -> list[FileChange]:
    """Write the changed files (each only if it is still as read); the ones written."""
    written = []
    for change in changes:
        if change.changed and files.write(change.source, change.new, expected=change.old):
            written.append(change)
    return written


# -- the watchdog --------------------------------------------------------------------------------

@dataclass
class WatchdogState:
    """What the watchdog remembers between runs (in the spool directory): when the platform last
    answered, what it said this host's entries are, and whether crontab runs the taken-over
    ones now (fallback)."""

    last_ok: str | None = None
    down_since: str | None = None
    fallback: bool = False
    entries: list[dict] = field(default_factory=list)

    @property
    def fallback_ids(self) -> set[str]:
        if not self.fallback:
            return set()
        return {entry['schedule_id'] for entry in self.entries if entry['mode'] == 'takeover'}

    @classmethod
    def load(cls, directory: Path) -> 'WatchdogState':
        try:
            return cls(**json.loads((Path(directory) / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = directory / ('.' + STATE_FILE)
        temporary.write_text(json.dumps(self.__dict__, default=str))
        os.replace(temporary, directory / STATE_FILE)


def watchdog(settings: Settings, host: str, threshold: float, wrapper: str | None = None) -> dict:
    """One watchdog pass; what it saw and did."""
    from runner_service.client import ApiError
    spool = Spool(settings.cron_spool)
    state = WatchdogState.load(spool.directory)
    now = utcnow()
    client = client_for(settings)
    try:
        try:
            entries = client.cron_entries(host)
        except ApiError as exc:
            if not is_unreachable(exc):
                raise
            state.down_since = state.down_since or now.isoformat()
            down = (now - dt.datetime.fromisoformat(state.down_since)).total_seconds()
            took_back = not state.fallback and down >= threshold
            if took_back:
                state.fallback = True
            written = apply(plan_sync(state.entries, state.fallback_ids, wrapper)) if state.fallback else []
            state.save(spool.directory)
            return {'platform': 'unreachable', 'detail': exc.detail, 'down_seconds': round(down, 1),
                    'fallback': state.fallback, 'fallback_started': took_back,
                    'fallback_entries': sorted(state.fallback_ids), 'files_written': len(written),
                    'spooled': len(spool.pending())}
        handed_back = state.fallback
        state.fallback, state.down_since, state.last_ok = False, None, now.isoformat()
        state.entries = [{key: entry[key] for key in ('schedule_id', 'name', 'mode', 'file', 'line', 'original')}
                         for entry in entries]
        delivered, rejected = spool.deliver(client)
        changes = plan_sync(entries, set(), wrapper)
        written = apply(changes)
        state.save(spool.directory)
        return {'platform': 'ok', 'fallback': False, 'handed_back': handed_back, 'reports_delivered': delivered,
                'reports_rejected': rejected, 'files_written': len(written),
                'notes': [note for change in changes for note in change.notes]}
    finally:
        client.close()
