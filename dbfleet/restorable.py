"""The restorable window of a host: to which instants can it be brought back, from its successful
backups (each with the binlog file and position of its snapshot) and its archived binary logs.

The archive's files, in binlog order, form chains split at every gap (a purged log never fetched, a GTID
discontinuity, a server id change: store.binlogs keeps the gap before the file it precedes). A backup
starts a point-in-time restore when the newest chain holds its binlog file (or the file right after
the chain's newest, which the server was still writing): the window runs from the oldest such backup's
consistent point (a logical dump's start, a physical copy's end) to the newest archived event. Without
such a backup the window is the newest backup's own instant alone; without backups there is none.

`check` turns windows into the problems `dbfleet backups check` reports, Nagios-style. Pure functions:
the caller passes the rows and the time.
"""

from __future__ import annotations

import datetime as dt
import re

OK, WARNING, CRITICAL = 0, 1, 2
STATE_NAMES = {OK: 'OK', WARNING: 'WARNING', CRITICAL: 'CRITICAL'}
# The column the backup catalog's restore drills fill ('ok' | 'failed'); until it exists nothing reads it.
DRILL_RESULT_FIELD = 'restore_test_status'  # the catalog's column (store.backups)

_BINLOG_NAME = re.compile(r'^(.+)\.(\d+)$')


def _order(name: str | None) -> tuple[str, int] | None:
    match = _BINLOG_NAME.match(name or '')
    return (match.group(1), int(match.group(2))) if match else None


def consistent_point(backup: dict) -> dt.datetime:
    """The instant a backup holds: a logical dump's snapshot is taken as it starts, a physical copy is
    consistent as it ends."""
    if backup.get('method') == 'physical' and backup.get('finished_at') is not None:
        return backup['finished_at']
    return backup['started_at']


def verified_in(backup: dict) -> set[str]:
    """The repositories where the catalog has a verified copy of the backup."""
    return {copy['repository'] for copy in backup.get('copies') or [] if copy.get('status') == 'ok'}


def chains(binlogs: list[dict]) -> list[list[dict]]:
    """The archive's files in binlog order, split before every file that follows a gap."""
    ordered = sorted((row for row in binlogs if _order(row['file'])), key=lambda row: _order(row['file']))
    found: list[list[dict]] = []
    for row in ordered:
        if not found or row.get('gap') or _order(row['file'])[0] != _order(found[-1][-1]['file'])[0]:
            found.append([])
        found[-1].append(row)
    return found


def window(host: str, backups: list[dict], binlogs: list[dict], reported_gaps: list[dict] = ()) -> dict:
    """{host, start, end, from_backup, chain (bool: binlogs reach from start to end), open_gap (the archive
    reported a gap after its newest file: no restore past it until a new backup), newest_backup, replayable
    (the ids of the backups the newest chain can replay from),
    archived: number of archived files, newest_archived_event, gaps}. `reported_gaps` are those the
    archive's last pass saw before any file after them was archived (store.binlogs.state)."""
    # A backup retention removed (removed_at) is no longer there to restore from.
    good = sorted((backup for backup in backups if backup.get('status') == 'ok' and not backup.get('removed_at')),
                  key=consistent_point)
    newest_backup = good[-1] if good else None
    runs = chains(binlogs)
    newest_chain = runs[-1] if runs else []
    gaps = [dict(row['gap'], file=row['file']) for run in runs[1:] for row in run[:1] if row.get('gap')]
    known = {(gap['kind'], gap['file']) for gap in gaps}
    gaps += [dict(gap) for gap in reported_gaps if (gap.get('kind'), gap.get('file')) not in known]
    result = dict(host=host, start=None, end=None, from_backup=None, chain=False, open_gap=False, replayable=[],
                  newest_backup=newest_backup,
                  archived=sum(len(run) for run in runs),
                  newest_archived_event=newest_chain[-1]['last_event_at'] if newest_chain else None, gaps=gaps)
    # A gap past the newest archived file: the chain ends there until a new backup starts another.
    result['open_gap'] = any(bool(_order(gap.get('file')) and newest_chain
                                  and _order(gap['file']) > _order(newest_chain[-1]['file'])) for gap in reported_gaps)
    if newest_chain:
        first, last = _order(newest_chain[0]['file']), _order(newest_chain[-1]['file'])
        eligible = [backup for backup in good if _order(backup.get('binlog_file'))
                    and _order(backup['binlog_file'])[0] == first[0]
                    and first[1] <= _order(backup['binlog_file'])[1] <= last[1] + 1]
        if eligible:
            end = max(newest_chain[-1]['last_event_at'], consistent_point(eligible[-1]))
            result.update(start=consistent_point(eligible[0]), end=end, from_backup=eligible[0]['id'], chain=True,
                          replayable=[backup['id'] for backup in eligible])
            return result
    if newest_backup is not None:
        point = consistent_point(newest_backup)
        result.update(start=point, end=point, from_backup=newest_backup['id'])
    return result


def drill_point(host_window: dict) -> tuple[dict | None, dt.datetime | None]:
    """(backup, stop instant) a restore drill of the host restores: its newest backup, replayed to the
    window's end (the newest archived event, to the second) when the chain replays from that backup and
    the archive goes past its consistent point; else the backup alone (stop None). (None, None) without
    a backup that has a path to restore from."""
    newest = host_window.get('newest_backup')
    if newest is None or not newest.get('path'):
        return None, None
    end = host_window.get('end')
    if host_window.get('chain') and newest['id'] in host_window.get('replayable', ()) and end is not None:
        end = _time(end).replace(microsecond=0)
        if end > consistent_point(newest):
            return newest, end
    return newest, None


DRILL_POINTS = ('end', 'inside')


def drill_target(host_window: dict, backups: list[dict], point='end', draw=None) -> tuple[dict | None,
                                                                                        dt.datetime | None]:
    """(backup, stop instant) a drill to `point` restores: 'end' - drill_point (the newest backup to the
    window's end); 'inside' - an instant drawn uniformly between the window's start and its end, to the
    second (`draw()` gives a number in [0, 1), random.random by default); or an aware datetime inside the
    window. The base is the newest backup the chain replays from whose consistent point falls before the
    instant's second ends (the instant means its whole second, as for a restore). A window that is one
    backup's instant (no chain) drills that backup as it is for 'inside'; ValueError for a datetime
    outside the window, or with no chain to reach it."""
    if isinstance(point, str) and point == 'end':
        return drill_point(host_window)
    if isinstance(point, str) and point != 'inside':
        raise ValueError('a drill point is end, inside or an instant, got %r' % point[:40])
    start, end = host_window.get('start'), host_window.get('end')
    if not host_window.get('chain') or start is None or end is None:
        if point == 'inside':
            return drill_point(host_window)
        raise ValueError('%s has no binlog chain from a backup: a drill can restore its newest backup as it is, '
                         'not an instant' % host_window.get('host'))
    first, last = _time(start).replace(microsecond=0), _time(end).replace(microsecond=0)
    if point == 'inside':
        import random
        span = int((last - first).total_seconds())
        offset = min(int((draw or random.random)() * (span + 1)), span) if span > 0 else 0
        instant = first + dt.timedelta(seconds=offset)
    else:
        instant = point.astimezone(dt.timezone.utc).replace(microsecond=0)
        if not first <= instant <= last:
            raise ValueError('%s is outside the restorable window of %s (%s .. %s)' % (
                instant.strftime('%Y-%m-%d %H:%M:%S'), host_window.get('host'), first.strftime('%Y-%m-%d %H:%M:%S'),
                last.strftime('%Y-%m-%d %H:%M:%S')))
    replayable = set(host_window.get('replayable') or ())
    bases = [backup for backup in backups if backup.get('id') in replayable and backup.get('path')
             and consistent_point(backup) < instant + dt.timedelta(seconds=1)]
    if not bases:
        return drill_point(host_window)
    return max(bases, key=consistent_point), instant


def problems(host_window: dict, now: dt.datetime, max_age: dt.timedelta) -> list[tuple[int, str]]:
    """[(WARNING | CRITICAL, what)] for one host's window: no successful backup, the newest older than
    `max_age`, a gap after the newest backup (no point-in-time restore to now), a gap that shortens the
    window, the newest backup's last restore drill failed."""
    found = []
    newest = host_window['newest_backup']
    if newest is None:
        return [(CRITICAL, 'no successful backup')]
    age = now - newest['finished_at' if newest.get('finished_at') else 'started_at']
    if age > max_age:
        found.append((CRITICAL, 'newest backup is %s old (policy %s)' % (_duration(age), _duration(max_age))))
    if host_window['archived'] or host_window['gaps']:
        if not host_window['chain'] or host_window['open_gap']:
            gap = host_window['gaps'][-1] if host_window['gaps'] else None
            found.append((CRITICAL, 'chain gap: no unbroken binlog chain from a backup to the newest archived '
                          'event%s' % (' (%s before %s: %s)' % (gap['kind'], gap['file'], gap['detail'])
                                       if gap else '')))
        else:
            start = host_window['start']
            shortening = [gap for gap in host_window['gaps'] if gap.get('at') and _time(gap['at']) > start - max_age]
            for gap in shortening[:1]:
                found.append((WARNING, 'chain gap before %s (%s) shortens the window' % (gap['file'], gap['kind'])))
    if newest.get(DRILL_RESULT_FIELD) == 'failed':
        found.append((CRITICAL, 'the last restore drill of the newest backup failed'))
    return found


def check(windows: list[dict], now: dt.datetime, max_age: dt.timedelta) -> tuple[int, list[str]]:
    """(exit code, lines): a summary line (OK / WARNING / CRITICAL, counts) then one line per problem host."""
    state, lines, counts = OK, [], {WARNING: 0, CRITICAL: 0}
    for host_window in sorted(windows, key=lambda item: item['host']):
        found = problems(host_window, now, max_age)
        if not found:
            continue
        worst = max(level for level, _what in found)
        counts[worst] += 1
        state = max(state, worst)
        lines.append('%s %s: %s' % (STATE_NAMES[worst], host_window['host'], '; '.join(what for _level, what in found)))
    summary = '%s: %d host(s) checked, %d critical, %d warning' % (STATE_NAMES[state], len(windows), counts[CRITICAL],
                                                                  counts[WARNING])
    return state, [summary] + lines


def _time(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.strptime(value, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=dt.timezone.utc)


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    return '%dh%02dm' % divmod(minutes, 60) if minutes >= 60 else '%dm' % minutes
