"""Each host's backups at a glance: its last successful backup (when, how, how big), its age,
the sizes of its recent successful backups oldest first (the trend), and its recent failures.
The portal's Backups page shows this."""

from __future__ import annotations

import datetime as dt

from dbfleet.clock import utc
from dbfleet.store import Store

# Attempts looked at per host: two weeks of nightly backups.
RECENT = 14
# A host whose last successful backup is older than this is flagged: a nightly one plus slack.
STALE_AFTER = dt.timedelta(hours=26)


def host_summary(host: str, attempts: list[dict], now: dt.datetime) -> dict:
    """attempts: the host's recent attempts, newest first."""
    successes = [attempt for attempt in attempts if attempt['status'] == 'ok']
    last_ok = successes[0] if successes else None
    finished = utc(last_ok['finished_at'] or last_ok['started_at']) if last_ok else None
    age = (now - finished) if finished else None
    return {'host': host, 'last': attempts[0] if attempts else None, 'last_ok': last_ok, 'last_ok_at': finished,
            'age_seconds': age.total_seconds() if age is not None else None,
            'stale': age is None or age > STALE_AFTER,
            'failures': [attempt for attempt in attempts if attempt['status'] == 'failed'],
            'sizes': [attempt['bytes'] for attempt in reversed(successes) if attempt['bytes'] is not None],
            'attempts': len(attempts)}


def by_host(store: Store, now: dt.datetime, recent: int = RECENT) -> list[dict]:
    """Every host with a backup attempt, by name."""
    return [host_summary(host, attempts, now) for host, attempts in sorted(store.backups.recent_by_host(recent).items())]
