"""The crontab bridge, host side: what `dbfleet cron sync|diff|watchdog` do on the host whose
crontab is bridged (the wrapper, `dbfleet cron exec`, is runner_service.bridge.cron_exec).

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
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dbfleet.clock import utcnow
from runner_service.bridge.crontab import edit, files, parse
from runner_service.bridge.host_api import AgentConfig, HostApi, HostApiError
from runner_service.bridge.spool import Spool, WatchdogState, is_unreachable


def wrapper_path() -> str:
    """The dbfleet executable crontab lines call (absolute: cron's PATH is short)."""
    beside = Path(sys.executable).parent / 'dbfleet'
    if beside.is_file():
        return str(beside)
    found = shutil.which('dbfleet')
    if found:
        return os.path.abspath(found)
    raise RuntimeError('cannot find the dbfleet executable beside %s or on PATH' % sys.executable)


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

def watchdog(config: AgentConfig, threshold: float | None = None, wrapper: str | None = None) -> dict:
    """One watchdog pass for config.host; what it saw and did. `threshold`: seconds without the
    platform before the taken-over entries go back to crontab (default: config.fallback_seconds)."""
    threshold = config.fallback_seconds if threshold is None else threshold
    spool = Spool(config.spool)
    state = WatchdogState.load(spool.directory)
    now = utcnow()
    api = HostApi(config, agent='dbfleet-watchdog')
    try:
        entries = api.entries(config.host)
    except HostApiError as exc:
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
    delivered, rejected = spool.deliver(api.report)
    changes = plan_sync(entries, set(), wrapper)
    written = apply(changes)
    state.save(spool.directory)
    return {'platform': 'ok', 'fallback': False, 'handed_back': handed_back, 'reports_delivered': delivered,
            'reports_rejected': rejected, 'files_written': len(written),
            'notes': [note for change in changes for note in change.notes]}
