"""`dbfleet backups list|show|check|show-id|keep|unkeep`: the backup catalog, newest first, each host's
restorable window, a Nagios-style check and pins, through the API when DBFLEET_API_URL is set (and --store
is not), else from the store. `dbfleet backups restore`: a restore as a job; `dbfleet backups drill|drills`:
restore drills as a job (or a daily schedule) and their results - through the API."""

from __future__ import annotations

from typing import Optional

import typer

from runner_service.cli.fleet import DIRECT_STORE_OPTION, fleet
from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import api_client, console, fail, print_json, print_wide, table, when
from runner_service.cli.time_points import point_in_time

backups_app = typer.Typer(help='The backup catalog.', no_args_is_help=True)


@backups_app.command('list')
def backups_list(host: Optional[str] = typer.Option(None, '--host', help='Only this host.'),
                 method: Optional[str] = typer.Option(None, '--method', help='logical or physical.'),
                 status: Optional[str] = typer.Option(None, '--status', help='ok or failed.'),
                 since: Optional[str] = typer.Option(None, '--since', help='Started at or after: 7d (ago), 2026-12-01.'),
                 until: Optional[str] = typer.Option(None, '--until', help='Started before: 1d (ago), 2026-12-31.'),
                 limit: int = typer.Option(50, '--limit', min=1, max=1000, help='At most this many, newest first.'),
                 cursor: Optional[str] = typer.Option(None, '--cursor', help='The next page (as the last one said).'),
                 pinned: Optional[bool] = typer.Option(None, '--pinned/--unpinned', help='Only pinned or unpinned.',
                                                       show_default=False),
                 include_removed: bool = typer.Option(False, '--include-removed',
                                                      help='Also backups retention removed.'),
                 as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Backup attempts, newest first: id, host, method, status, start, duration, size, flags, where."""
    from dbfleet.profiles import human_bytes
    filters = dict(host=host, method=method, status=status, since=point_in_time(since, '--since'),
                   until=point_in_time(until, '--until'), limit=limit, cursor=cursor, pinned=pinned,
                   include_removed=include_removed or None)
    with fleet(store) as reach:
        page = reach.backups(**filters)
    if as_json:
        print_json(page)
        return
    rows = table('id', 'started', 'host', 'method', 'status', 'seconds', 'size', 'copies', 'flags', 'path')
    for backup in page['backups']:
        rows.add_row(str(backup['id']), when(backup['started_at']), backup['host'], backup['method'], backup['status'],
                     '%.1f' % backup['duration_seconds'] if backup['duration_seconds'] is not None else '-',
                     human_bytes(backup['bytes']), copies_cell(backup.get('copies') or []), flags(backup) or '-',
                     backup['error'] or backup['path'] or '-')
    print_wide(rows)
    if page['next_cursor'] is not None:
        console.print('older attempts: --cursor %s' % page['next_cursor'])


def _window_line(window: dict) -> str:
    if window['start'] is None:
        return 'restorable window: none (no successful backup)'
    reach = 'point in time, binlog chain unbroken' if window['chain'] else 'the backup instant only'
    return 'restorable window: %s .. %s UTC (%s, from backup %s)' % (when(window['start']), when(window['end']),
                                                                     reach, window['from_backup'])


@backups_app.command('show')
def backups_show(host: str = typer.Argument(..., help='The host.'),
                 limit: int = typer.Option(20, '--limit', min=1, max=1000, help='At most this many backups.'),
                 as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """A host's backups, its restorable window and the gaps in its binlog archive."""
    from dbfleet.profiles import human_bytes
    with fleet(store) as reach:
        page = reach.backups(host=host, limit=limit)
        (window,) = reach.backup_windows(host=host)['windows']
    if as_json:
        print_json(dict(host=host, backups=page['backups'], window=window))
        return
    typer.echo(_window_line(window))
    lag = window['lag_seconds']
    typer.echo('binlog archive: %d file(s), newest event %s, lag %s' % (
        window['archived'], when(window['newest_archived_event']), '-' if lag is None else '%.0f s' % lag))
    for gap in window['gaps']:
        typer.echo('gap before %s (%s, after %s): %s' % (gap['file'], gap['kind'], when(gap['at']), gap['detail']))
    rows = table('id', 'started', 'method', 'status', 'size', 'binlog', 'gtid', 'path')
    for backup in page['backups']:
        position = '%s:%s' % (backup['binlog_file'], backup['binlog_position']) if backup['binlog_file'] else '-'
        rows.add_row(str(backup['id']), when(backup['started_at']), backup['method'], backup['status'],
                     human_bytes(backup['bytes']), position, backup['gtid'] or '-',
                     backup['error'] or backup['path'] or '-')
    print_wide(rows)


@backups_app.command('check')
def backups_check(max_age: str = typer.Option('26h', '--max-age', help='Policy: the newest backup is at most this '
                                              'old (s, m, h, d, w).'),
                  now: Optional[str] = typer.Option(None, '--now', help='Judge at this instant (default: now; '
                                                    'ISO date or datetime, UTC).'),
                  store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Nagios-style: a summary line (OK, WARNING, CRITICAL) then one line per problem host (newest backup older
    than --max-age, a gap in the binlog chain, a failed restore drill); exit 0, 1 or 2."""
    from dbfleet import restorable
    from dbfleet.clock import utcnow
    from dbfleet.durations import TimeSpecError, parse_duration
    try:
        policy = parse_duration(max_age)
    except TimeSpecError as exc:
        fail('--max-age: %s' % exc)
    instant = point_in_time(now, '--now') if now else utcnow()
    with fleet(store) as reach:
        windows = reach.backup_windows()['windows']
    for window in windows:
        for name in ('start', 'end', 'newest_archived_event'):
            window[name] = _aware(window[name])
        if window['newest_backup']:
            for name in ('started_at', 'finished_at'):
                window['newest_backup'][name] = _aware(window['newest_backup'][name])
    state, lines = restorable.check(windows, instant, policy)
    for line in lines:
        typer.echo(line)
    raise typer.Exit(state)


def _aware(value):
    import datetime as dt
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value.replace('Z', '+00:00'))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def flags(backup: dict) -> str:
    """pinned, removed, partial kept, restore-tested: what the catalog says beyond the attempt."""
    found = []
    if backup.get('pinned'):
        found.append('pinned')
    if backup.get('removed_at'):
        found.append('removed %s' % when(backup['removed_at']))
    if backup.get('kept_partial'):
        found.append('partial kept')
    if backup.get('restore_test_status'):
        found.append('restore %s %s' % (backup['restore_test_status'], when(backup['restore_tested_at'])))
    return ', '.join(found)


@backups_app.command('show-id')
def backups_show_id(backup_id: int = typer.Argument(..., min=1, help='The id `dbfleet backups list` shows.'),
                    as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """One backup attempt, every field."""
    with fleet(store) as reach:
        backup = reach.backup(backup_id)
    show_backup(backup, as_json)


@backups_app.command('keep')
def backups_keep(backup_id: int = typer.Argument(..., min=1, help='The id `dbfleet backups list` shows.'),
                 as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Pin a backup: retention never removes it (operator; audited)."""
    set_pin(backup_id, True, as_json, store)


@backups_app.command('unkeep')
def backups_unkeep(backup_id: int = typer.Argument(..., min=1, help='The id `dbfleet backups list` shows.'),
                   as_json: bool = JSON_OPTION, store: Optional[str] = DIRECT_STORE_OPTION) -> None:
    """Unpin a backup: retention may remove it again (admin; audited)."""
    set_pin(backup_id, False, as_json, store)


def set_pin(backup_id: int, pinned: bool, as_json: bool, store: str | None) -> None:
    with fleet(store) as reach:
        backup = reach.keep_backup(backup_id, pinned)
    show_backup(backup, as_json)


def show_backup(backup: dict, as_json: bool) -> None:
    if as_json:
        print_json(backup)
        return
    rows = table('field', 'value')
    for name, value in backup.items():
        rows.add_row(name, '-' if value is None else str(value))
    print_wide(rows)


@backups_app.command('restore', short_help='Restore a host\'s backup to an instant or a GTID, as a job.')
def backups_restore(host: str = typer.Argument(..., help='The backed-up host.'),
                    to: Optional[str] = typer.Option(None, '--to', help="The instant, UTC: '2026-12-04 03:12:00'."),
                    to_gtid: Optional[str] = typer.Option(None, '--to-gtid', help='Up to and including this GTID.'),
                    backup: Optional[int] = typer.Option(None, '--backup', help='Start from this backup id.'),
                    into: str = typer.Option('scratch', '--into', help='scratch (a sandbox) or an inventory host '
                                             '(admin).'),
                    schema: Optional[str] = typer.Option(None, '--schema', help='One database (logical backups).'),
                    force: bool = typer.Option(False, '--force', help='Restore over a server with the databases, a '
                                               'binary log or replicas.'),
                    repository: Optional[str] = typer.Option(None, '--from', help='Restore from the verified copy in '
                                                             'this repository (the host\'s own backups lost).'),
                    wait: bool = typer.Option(False, '--wait', help='Follow the job to its end.'),
                    as_json: bool = JSON_OPTION) -> None:
    """Launch a restore through the API: the newest successful backup of HOST started before the target, its
    archived binlogs replayed up to --to or --to-gtid, then verified. Prints the job id (with --wait, its
    result). Exit code: 2 refused; with --wait 0 successful, 1 otherwise."""
    from runner_service.cli.inputs import request_model
    from runner_service.cli.job_view import show_launched
    from runner_service.fleet.schemas import RestoreRequest
    if (to is None) == (to_gtid is None):
        fail('give --to TIME or --to-gtid GTID (exactly one)')
    request = request_model(RestoreRequest, whole='restore', host=host, to=restore_instant(to) if to else None,
                            to_gtid=to_gtid, backup=backup, into=into, schema=schema, force=force,
                            **{'from': repository})
    with api_client() as client:
        launched = client.restore_backup(request)
        job, used = launched['job'], launched['backup']
        if as_json and not wait:
            print_json(launched)
            return
        if not as_json:
            typer.echo('restoring %s from backup %d (%s, started %s%s) into %s' % (
                host, used['id'], used['method'], when(used['started_at']),
                ', its copy in %s' % repository if repository else '', into), err=True)
        show_launched(client, job, wait, as_json)


@backups_app.command('drill', short_help='Restore drills of the hosts matching --tags, in lanes, as a job.')
def backups_drill(tags: Optional[str] = typer.Option(None, '--tags', help="A tag expression: 'large and not "
                                                     "maintenance' (default: every host of the drill template)."),
                  limit: Optional[str] = typer.Option(None, '--limit', help='Narrow further: an Ansible host pattern '
                                                      '(tag groups: tag_large:&tag_primary).'),
                  lanes: Optional[int] = typer.Option(None, '--lanes', min=1, max=200, help='Lanes side by side, '
                                                      'balanced by backup size (default: the template\'s, 1).'),
                  window: Optional[str] = typer.Option(None, '--window', help='HH:MM-HH:MM: no host starts after the '
                                                       'end; now must be inside it (or give --schedule).'),
                  timezone: str = typer.Option('UTC', '--timezone', help='IANA zone of --window.'),
                  schedule: Optional[str] = typer.Option(None, '--schedule', help='Instead of now: a schedule of '
                                                         'this name, every day in --window.'),
                  point: Optional[str] = typer.Option(None, '--point', help="Which instant of each host's "
                                                      'restorable window: end (the newest archived event, the '
                                                      'default), inside (one drawn at random inside it, from the '
                                                      "backup before it) or 'YYYY-MM-DD HH:MM:SS' (UTC)."),
                  repository: Optional[str] = typer.Option(None, '--from', help='Drill the copies in this repository '
                                                           'instead of the hosts\' own backups (fetched, checked, '
                                                           'restored): proof that the off-host copy restores.'),
                  wait: bool = typer.Option(False, '--wait', help='Follow the job to its end.'),
                  as_json: bool = JSON_OPTION) -> None:
    """Restore drills through the API: each host's newest backup restored into a sandbox, replayed to its newest
    archived event (or --point inside: an instant drawn inside its window, from the backup before it) and verified; the recovery time (RTO) and the data's age (RPO) recorded, the backup marked
    restore-tested. Now as one job (prints its id; with --wait its result), or with --schedule every day in
    --window. Exit code: 2 refused; with --wait 0 successful, 1 otherwise."""
    import datetime as dt

    from runner_service.cli.inputs import request_model
    from runner_service.cli.job_view import show_launched
    from runner_service.fleet.schemas import DrillRequest, DrillSchedule
    span = drill_window(window, timezone) if window else None
    if schedule is not None:
        if span is None:
            fail('--schedule needs --window HH:MM-HH:MM: when the drills start, and after when no host starts')
        if tags is not None:
            fail('a schedule narrows the drill template\'s hosts with --limit (tag groups: tag_large:&tag_primary); '
                 '--tags is for a drill now')
        if lanes is not None:
            fail('the lanes of a scheduled drill are the drill template\'s plan (an admin: dbfleet templates edit '
                 'drill --lanes N); --lanes is for a drill now')
        request = request_model(DrillSchedule, whole='drill schedule', name=schedule, start=span[0], end=span[1],
                                timezone=timezone, limit=limit, point=point, **{'from': repository})
        with api_client() as client:
            made = client.schedule_drills(request)
        if as_json:
            print_json(made)
        else:
            typer.echo('%s: drills every day at %s %s, no host starting after %s; next %s' % (
                made['name'], span[0], timezone, span[1], when(made.get('next_fire_at'))))
        return
    window_end = None
    if span is not None:
        window_end = window_end_now(dt.datetime.now(dt.timezone.utc), span, timezone)
        if window_end is None:
            fail('now is outside the window %s-%s (%s): drill now without --window, or every day with --schedule NAME'
                 % (span[0], span[1], timezone))
    request = request_model(DrillRequest, whole='drill', tags=tags, limit=limit, lanes=lanes, window_end=window_end,
                            point=point, **{'from': repository})
    with api_client() as client:
        launched = client.drill_backups(request)
        if as_json and not wait:
            print_json(launched)
            return
        show_launched(client, launched['job'], wait, as_json)


@backups_app.command('drills')
def backups_drills(host: Optional[str] = typer.Option(None, '--host', help='Only this host.'),
                   status: Optional[str] = typer.Option(None, '--status', help='ok or failed.'),
                   limit: int = typer.Option(50, '--limit', min=1, max=1000, help='At most this many, newest first.'),
                   as_json: bool = JSON_OPTION) -> None:
    """Restore drills, newest first: host, backup, status, recovery time (RTO), the data's age (RPO)."""
    with api_client() as client:
        found = client.drills(host=host, status=status, limit=limit)
    if as_json:
        print_json(found)
        return
    rows = table('id', 'started', 'host', 'backup', 'from', 'status', 'RTO s', 'restored to', 'RPO s', 'error')
    for drill in found:
        rows.add_row(str(drill['id']), when(drill['started_at']), drill['host'], str(drill['backup_id'] or '-'),
                     (drill['detail'] or {}).get('repository') or 'host',
                     drill['status'], '%.1f' % drill['rto_seconds'] if drill['rto_seconds'] is not None else '-',
                     when(drill['restored_to']) if drill['restored_to'] else '-',
                     '%.0f' % drill['rpo_seconds'] if drill['rpo_seconds'] is not None else '-',
                     (drill['error'] or '-')[:200])
    print_wide(rows)


def drill_window(text: str, timezone: str) -> tuple[str, str]:
    """--window 'HH:MM-HH:MM' as (start, end); exit 2 otherwise (the zone too)."""
    import re

    from runner_service.schedules.triggers import TriggerError, zone
    match = re.fullmatch(r'\s*(([01][0-9]|2[0-3]):[0-5][0-9])\s*-\s*(([01][0-9]|2[0-3]):[0-5][0-9])\s*', text)
    if not match:
        fail('--window %r is not HH:MM-HH:MM (02:00-05:00)' % text[:100])
    if match.group(1) == match.group(3):
        fail('--window %s: start and end are the same' % text.strip())
    try:
        zone(timezone)
    except TriggerError as exc:
        fail('--timezone: %s' % exc)
    return match.group(1), match.group(3)


def window_end_now(now, span: tuple[str, str], timezone: str):
    """The end (aware UTC) of the daily window `span` (HH:MM, HH:MM in `timezone`) that `now` is in, or None
    when `now` is outside it. A window may cross midnight (22:00-02:00)."""
    import datetime as dt

    from runner_service.schedules.triggers import zone
    tz = zone(timezone)
    local = now.astimezone(tz)
    start, end = (dt.time(*(int(part) for part in text.split(':'))) for text in span)
    for day in (local.date() - dt.timedelta(days=1), local.date()):
        opens = dt.datetime.combine(day, start, tzinfo=tz)
        closes = dt.datetime.combine(day + dt.timedelta(days=1) if end <= start else day, end, tzinfo=tz)
        if opens <= local < closes:
            return closes.astimezone(dt.timezone.utc)
    return None


def restore_instant(text: str):
    """--to as an aware UTC datetime: 'YYYY-MM-DD HH:MM:SS' (UTC) or ISO 8601 with a zone; exit 2 otherwise."""
    import datetime as dt
    value = text.strip()
    try:
        moment = dt.datetime.fromisoformat(value[:-1] + '+00:00' if value.endswith('Z') else value)
    except ValueError:
        fail("--to %r is not a time: give 'YYYY-MM-DD HH:MM:SS' (UTC)" % text[:100])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def copies_cell(copies: list[dict]) -> str:
    """'offsite ok, s3 FAILED': each repository's latest copy of the backup."""
    latest = {copy['repository']: copy['status'] for copy in copies}
    return ', '.join('%s %s' % (name, 'ok' if status == 'ok' else 'FAILED') for name, status in latest.items()) or '-'
