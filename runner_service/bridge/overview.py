"""The bridged crontab entries as a fleet overview: each host's entries with their mode, their
last reported run and the recent slots that went wrong (missed: no report by the slot plus the
grace; failed: crontab ran it and it exited non-zero). The portal's Crontab page shows this."""

from __future__ import annotations

from itertools import groupby

from runner_service.bridge.platform import CronBridge

# Slots and runs looked at per entry: enough for a week of an hourly-or-slower entry.
RECENT = 50
# Entries summarised on one page: each reads its history on its own (three short queries).
MOST_ENTRIES = 200


def entry_summary(bridge: CronBridge, schedule: dict, recent: int = RECENT) -> dict:
    history = bridge.history(schedule['id'], recent)
    runs = bridge.store.cron.list_runs(schedule['id'], limit=recent)
    return {'schedule': schedule, 'source': schedule['source'], 'mode': schedule['source']['mode'],
            'last_run': runs[0] if runs else None,
            'missed': [item for item in history if item['state'] == 'missed'],
            'failed': [run for run in runs if run['status'] == 'failed'],
            'history': history, 'runs': runs}


def by_host(bridge: CronBridge, host: str | None = None, recent: int = RECENT,
            most: int = MOST_ENTRIES) -> tuple[list[tuple[str, list[dict]]], int]:
    """([(host, its entries' summaries by name)] by host, how many entries were left out past `most`)."""
    schedules = sorted(bridge.bridged(host), key=lambda schedule: (schedule['source']['host'], schedule['name']))
    entries = [entry_summary(bridge, schedule, recent) for schedule in schedules[:most]]
    grouped = [(name, list(group)) for name, group in groupby(entries, key=lambda entry: entry['source']['host'])]
    return grouped, max(len(schedules) - most, 0)
