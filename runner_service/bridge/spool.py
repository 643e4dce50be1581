"""What the host agent keeps between runs, in the spool directory (DBFLEET_CRON_SPOOL):
reports the API did not take yet, and the watchdog's state. Standard library only: the wrapper
crontab runs every minute reads both and must start in a few hundredths of a second."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dbfleet.clock import utcnow

STATE_FILE = 'watchdog.state'  # JSON, named apart from the reports


def is_unreachable(exc) -> bool:
    """An answer worth retrying later (`exc.status`: the HTTP status, None for no answer): no
    answer at all, a server error, or the token refused (a rotated token in the config file is
    fixed and the spool then delivers)."""
    return exc.status is None or exc.status >= 500 or exc.status in (401, 403, 408, 429)


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

    def deliver(self, send: Callable[[dict], dict]) -> tuple[int, int]:
        """(delivered, rejected), each report handed to `send` (which raises an exception with
        a `status` when the API does not take it). Stops at the first report the API cannot
        take now; one deliverer at a time (a lock file), the others leave it to that one."""
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
                    send(report)
                    delivered += 1
                except Exception as exc:  # noqa: BLE001 - sorted by its status just below
                    if not hasattr(exc, 'status'):
                        raise
                    if is_unreachable(exc):
                        break
                    rejected += 1  # the API will never take it (entry deleted): keep it aside
                    rejected_dir = self.directory / 'rejected'
                    rejected_dir.mkdir(exist_ok=True)
                    path.replace(rejected_dir / path.name)
                    continue
                path.unlink(missing_ok=True)
            return delivered, rejected


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
