"""The events of a job's play on their way to the store: ansible-runner hands each event to
`EventWriter.add` on its own thread; a writer thread redacts them into rows and writes them in
batches (a batch is whatever arrived within BATCH_SECONDS of the last write, or while it was
written: one event when the play is quiet, many when it is busy), each batch announced on
Redis for live followers. The writer also keeps the play's recap (`stats`), which becomes the
job's per-host results (`host_results`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from runner_service.runtime import Runtime
from runner_service.secret_box import Redactor

log = logging.getLogger(__name__)

BATCH_LIMIT = 1000
# A busy play's events are written at most this often: what arrives meanwhile joins the next
# batch (one transaction and one announcement for many events). An event after a quiet spell
# is written at once.
BATCH_SECONDS = 0.1
STATS_KEYS = {'ok': 'ok', 'changed': 'changed', 'failures': 'failed', 'dark': 'unreachable', 'skipped': 'skipped',
              'rescued': 'rescued', 'ignored': 'ignored'}
FAILED_EVENTS = ('runner_on_failed', 'runner_on_unreachable', 'runner_item_on_failed')


class EventWriter:
    """Takes ansible-runner events on its thread, writes them to the store on its own."""

    def __init__(self, runtime: Runtime, job_id: str, redactor: Redactor, offset: int = 0):
        self.runtime = runtime
        self.job_id = job_id
        self.redactor = redactor
        self.offset = offset
        self.runner_pid: int | None = None
        self.stats: dict = {}  # the recap of every run so far (ansible-runner's own needs events on disk)
        self.lock = threading.Lock()
        self.count = 0
        self.pending: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._write, name='dbfleet-events', daemon=True)
        self.thread.start()
        self.written = 0

    def add(self, event: dict) -> bool:
        if self.runner_pid is None and event.get('pid'):
            self.runner_pid = int(event['pid'])
        self.add_row(self._row(event))
        return False  # the store keeps events: ansible-runner need not write them to disk

    def add_row(self, row: dict) -> None:
        """An event already made a row (redacted): this run's own, or one a lanes helper relayed."""
        with self.lock:
            if row['event'] == 'playbook_on_stats':
                for key in STATS_KEYS:
                    for host, count in ((row.get('data') or {}).get(key) or {}).items():
                        self.stats.setdefault(key, {})[host] = self.stats.get(key, {}).get(host, 0) + int(count)
            # Numbered here, in arrival order: a plan's concurrent runs each count from 1.
            self.count += 1
            row['seq'] = self.offset + self.count
            self.pending.put(row)

    def flush(self) -> None:
        """Return once every event added so far is written."""
        if self.thread.is_alive():
            written = threading.Event()
            self.pending.put(written)
            written.wait()

    def close(self) -> None:
        if self.thread.is_alive():
            self.pending.put(None)
            self.thread.join()

    def _row(self, event: dict) -> dict:
        data = self.redactor.data(event.get('event_data') or {})
        name = event.get('event') or 'verbose'
        result = data.get('res') if isinstance(data.get('res'), dict) else {}
        return {
            'seq': None, 'uuid': event.get('uuid'), 'event': name,
            'host': data.get('host') or None, 'task': data.get('task') or None, 'play': data.get('play') or None,
            'changed': bool(result.get('changed')) if name.startswith('runner_on_') else None,
            'failed': (name in FAILED_EVENTS and not data.get('ignore_errors')) if name.startswith('runner_') else None,
            'created': event.get('created'), 'stdout': self.redactor.text(event.get('stdout') or ''), 'data': data,
        }

    def _write(self) -> None:
        finished = False
        written_at = float('-inf')
        while not finished:
            batch = [self.pending.get()]
            # Gather until BATCH_SECONDS after the last write (nothing to wait for after a quiet
            # spell); the end of the run (None) is written at once.
            gather_until = written_at + BATCH_SECONDS
            while len(batch) < BATCH_LIMIT and batch[-1] is not None:
                remaining = gather_until - time.monotonic()
                try:
                    batch.append(self.pending.get(timeout=remaining) if remaining > 0 else self.pending.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is None:
                finished = True
            rows = [row for row in batch if isinstance(row, dict)]
            if rows:
                self._store(rows)
                written_at = time.monotonic()
            for marker in batch:
                if isinstance(marker, threading.Event):
                    marker.set()

    def _store(self, rows: list[dict]) -> None:
        for attempt in range(5):
            try:
                self.written += self.runtime.store.events.add(self.job_id, rows)
                break
            except Exception as exc:
                log.warning('job %s: storing %d events failed (%s), trying again', self.job_id, len(rows), exc)
                time.sleep(0.5 * (attempt + 1))
        try:
            self.runtime.queue.publish_events(self.job_id, rows[-1]['seq'])
        except Exception:  # followers fall back to polling the store
            pass


class RelayWriter(EventWriter):
    """A lanes helper's writer: its rows go to the lane board, where the job's coordinator takes
    them and writes them with its own (one sequence per job, one writer to the store)."""

    def __init__(self, runtime: Runtime, job_id: str, redactor: Redactor, board):
        self.board = board
        super().__init__(runtime, job_id, redactor)

    def _store(self, rows: list[dict]) -> None:
        for attempt in range(5):
            try:
                self.board.push_events(rows)
                self.written += len(rows)
                return
            except Exception as exc:
                log.warning('job %s: relaying %d events failed (%s), trying again', self.job_id, len(rows), exc)
                time.sleep(0.5 * (attempt + 1))


def host_results(stats: dict | None) -> dict[str, dict]:
    """ansible-runner's recap ({ok: {host: n}, dark: {...}, ...}) as {host: {ok, unreachable, ...}}."""
    results: dict[str, dict] = {}
    for key, column in STATS_KEYS.items():
        for host, count in ((stats or {}).get(key) or {}).items():
            results.setdefault(host, {})[column] = int(count)
    return results
