"""Is a backup far from its host's recent history? The classic is an empty dump that "finished
too fast": a size or a duration under a quarter of the median of the host's last successful
backups by the same method, or over four times it. Needs a few of them to judge."""

from __future__ import annotations

import statistics

HISTORY = 5  # the host's last successful backups that make its history
MINIMUM_HISTORY = 3
FACTOR = 4.0


def anomalies(backup: dict, history: list[dict]) -> list[str]:
    """Why `backup` is far from `history` (each {bytes, duration_seconds}); [] when it is not, or
    when the history is too short to tell."""
    reasons = []
    for field, what, unit in (('bytes', 'size', 'bytes'), ('duration_seconds', 'duration', 's')):
        past = [item[field] for item in history if item[field] is not None]
        value = backup[field]
        if value is None or len(past) < MINIMUM_HISTORY:
            continue
        median = statistics.median(past)
        if value * FACTOR < median:
            reasons.append('%s %g %s is under a quarter of the host\'s median %g %s' % (what, value, unit, median,
                                                                                        unit))
        elif median > 0 and value > median * FACTOR:
            reasons.append('%s %g %s is over %g times the host\'s median %g %s' % (what, value, unit, FACTOR, median,
                                                                                  unit))
    return reasons
