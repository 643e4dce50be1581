"""`dbfleet schedules ...`: schedules through the API (requests are ScheduleCreate and
ScheduleUpdate): a playbook or a job template run on a cron expression, an interval or once."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.inputs import one_trigger, parse_extra_vars, parse_seconds, parse_subscriptions, \
    request_model, template_fields
from runner_service.cli.options import JSON_OPTION, PLAN_OPTIONS, TARGET_OPTIONS, VARS_OPTIONS, optional, \
    shared_options
from runner_service.cli.output import api_answer, api_client, console, fail, fields_table, plan_text, print_json, \
    print_wide, subscriptions_text, table, zoned

schedules_app = typer.Typer(help='Schedules, through the API: list, show, create, update, pause, resume, delete, '
                                 'preview, slots.', no_args_is_help=True)

SCHEDULE_REF = typer.Argument(..., help='A schedule id or name.')
SCHEDULE_OPTIONS = {
    'cron': optional(str, '--cron', help='A cron expression: 5 fields, 6 with seconds first, or @daily...'),
    'every': optional(str, '--every', help='An interval: 90s, 15m, 2h, 1d.'),
    'at': optional(str, '--at', help='Once, at this ISO time (naive means in --tz).'),
    'tz': optional(str, '--tz', help='IANA time zone of the expression (default UTC).'),
    'overlap': optional(str, '--overlap', help='A slot while the last run still goes: allow, forbid (skip it, the '
                                               'default) or replace.'),
    'misfire_grace': optional(str, '--misfire-grace', help='Seconds (or 5m) a slot may be late and still fire '
                                                           '(default 60).'),
    'catch_up': optional(str, '--catch-up', help='After missed slots: once (the default) or skip.'),
    'jitter': optional(str, '--jitter', help='Delay each slot by up to this many seconds.'),
    'deadline_after': optional(str, '--deadline-after', help='Kill each run this long after its slot (seconds, or '
                                                             '2h).'),
    'window_end_after': optional(str, '--window-end-after', help='No host of a run starts this long after its slot '
                                 '(seconds, or 2h); those running finish. Needs a plan (--lanes, --rolling).'),
    'window_end_at': optional(str, '--window-end-at', help='No host of a run starts after this time of day (HH:MM in '
                              '--tz); those running finish. Needs a plan.'),
    'window_policy': optional(str, '--window-policy', help='A slot inside a maintenance window: skip (the default) '
                                                           'or defer.'),
    'after': (Optional[list[str]], typer.Option(None, '--after', metavar='SCHEDULE[:on]', help='Each run waits for the latest run of this '
                                                'schedule: NAME, or NAME:failure / NAME:always (repeatable).')),
    'notify': optional(list[str], '--notify', help='EVENT=NOTIFIER: who hears of its slots\' and its jobs\' events: '
                                                   'slot_missed, slot_skipped, failed, recovered, timed_out, '
                                                   'window_overrun, window_overrun_predicted (repeat). On update, the '
                                                   'whole set replaces the old one.'),
}


def _schedule_fields(options: dict, required: bool) -> dict:
    """ScheduleCreate/ScheduleUpdate fields from SCHEDULE_OPTIONS; those not given left out."""
    trigger = one_trigger({'cron': ('--cron EXPR', options.get('cron')), 'interval': ('--every DURATION',
                           options.get('every')), 'once': ('--at ISO', options.get('at'))}, required)
    fields = {'kind': trigger[0], 'expression': trigger[1]} if trigger else {}
    fields.update(timezone=options.get('tz'), overlap=options.get('overlap'), catch_up=options.get('catch_up'),
                  window_policy=options.get('window_policy'), window_end_at=options.get('window_end_at'))
    for field, name in (('misfire_grace_seconds', 'misfire_grace'), ('jitter_seconds', 'jitter'),
                        ('deadline_after', 'deadline_after'), ('window_end_after', 'window_end_after')):
        if options.get(name) is not None:
            fields[field] = parse_seconds(options[name], '--%s' % name.replace('_', '-'))
    if options.get('after'):
        fields['after'] = [_schedule_dependency(text) for text in options['after']]
    if options.get('notify'):
        fields['notify'] = parse_subscriptions(options['notify'])
    return {key: value for key, value in fields.items() if value is not None}


def _schedule_dependency(text: str) -> dict:
    name, _, on = text.rpartition(':') if text.rsplit(':', 1)[-1] in ('success', 'failure', 'always') else \
        (text, '', 'success')
    if not name:
        fail('--after %r: give a schedule name, optionally followed by :success, :failure or :always' % text)
    return {'schedule': name, 'on': on}


def _trigger_text(schedule: dict) -> str:
    kind = {'cron': 'cron', 'interval': 'every', 'once': 'once at'}[schedule['kind']]
    return '%s %s (%s)' % (kind, schedule['expression'], schedule['timezone'])


def _target_text(job: dict) -> str:
    if job.get('template'):
        return 'template %s%s' % (job['template'], ' --limit %s' % job['limit'] if job.get('limit') else '')
    return '%s on %s%s' % (job['playbook'], job.get('inventory') or 'tags: %s' % job.get('tags'),
                           ' --limit %s' % job['limit'] if job.get('limit') else '')


def _show_schedule(schedule: dict) -> None:
    job, zone = schedule['job'], schedule['timezone']
    fields_table({
        'id': schedule['id'], 'name': schedule['name'], 'trigger': _trigger_text(schedule),
        'interval start': zoned(schedule['start_at'], zone) if schedule.get('start_at') else None,
        'state': 'paused' if schedule['paused'] else 'active', 'job': _target_text(job),
        'extra vars': json.dumps(job['extra_vars'], sort_keys=True) if job.get('extra_vars') else None,
        'plan': plan_text(job.get('plan')),
        'overlap': schedule['overlap'], 'misfire grace s': schedule['misfire_grace_seconds'],
        'catch up': schedule['catch_up'], 'jitter s': schedule['jitter_seconds'] or None,
        'deadline after s': schedule['deadline_after'], 'window policy': schedule.get('window_policy'),
        'no host starts after': ('%s s after the slot' % schedule['window_end_after'] if schedule.get('window_end_after')
                                 else schedule.get('window_end_at')),
        'after': ', '.join('%s (%s)' % (item['schedule'], item['on']) for item in schedule.get('after') or []) or None,
        'notify': subscriptions_text(schedule.get('notify')),
        'next fire': '-' if schedule['paused'] else zoned(schedule['next_fire_at'], zone),
        'last fire': zoned(schedule['last_fire_at'], zone),
        'last job': schedule['last_job_id'], 'created': schedule['created_at'], 'created by': schedule['created_by'],
        'updated': schedule['updated_at'],
    })


def _schedule_line(schedule: dict, did: str) -> None:
    typer.echo('schedule %s %s; next fire %s' % (schedule['name'], did, 'none (paused)' if schedule['paused']
                                                else zoned(schedule['next_fire_at'], schedule['timezone'])))


@schedules_app.command('list')
def schedules_list(as_json: bool = JSON_OPTION) -> None:
    """Schedules with their trigger, job, state and next fire (in each one's time zone)."""
    schedules = api_answer(lambda client: client.schedules(), as_json)
    rows = table('name', 'trigger', 'job', 'state', 'next fire', 'last job')
    for schedule in schedules:
        rows.add_row(Text(schedule['name']), Text(_trigger_text(schedule)), Text(_target_text(schedule['job'])),
                     'paused' if schedule['paused'] else 'active',
                     '-' if schedule['paused'] else zoned(schedule['next_fire_at'], schedule['timezone']),
                     schedule['last_job_id'] or '-')
    print_wide(rows)
    console.print(Text('%d schedule(s)' % len(schedules)))


@schedules_app.command('show')
def schedules_show(ref: str = SCHEDULE_REF, as_json: bool = JSON_OPTION) -> None:
    """A schedule's trigger, job, policies and fires."""
    _show_schedule(api_answer(lambda client: client.schedule(ref), as_json))


@schedules_app.command('create', short_help='Run a playbook on a cron expression, an interval or once.')
@shared_options(SCHEDULE_OPTIONS, TARGET_OPTIONS, VARS_OPTIONS, PLAN_OPTIONS)
def schedules_create(name: str = typer.Argument(..., help='A name for the schedule, e.g. nightly-backup.'),
                     playbook: Optional[str] = typer.Argument(None, help='A playbook under the project directory, '
                                                              'e.g. playbooks/inspect.yml (or --template).'),
                     template: Optional[str] = typer.Option(None, '--template', help='Launch this job template '
                                                            'instead of a playbook (-e, --limit: its survey, hosts).'),
                     paused: bool = typer.Option(False, '--paused', help='Create it paused (resume starts it).'),
                     as_json: bool = JSON_OPTION, **options) -> None:
    """Run PLAYBOOK on --inventory or --tags (needs an admin token), or launch --template with
    -e values for its survey (an operator token that may launch it will do), at each fire of
    --cron, --every or --at (one of them), in --tz."""
    from runner_service.schemas import JobTemplate, ScheduleCreate
    if (playbook is None) == (template is None):
        fail('give PLAYBOOK or --template, exactly one')
    if template is not None:
        target = {'template': template, 'limit': options.get('limit'),
                  'extra_vars': parse_extra_vars(options['extra_vars']) if options.get('extra_vars') else None}
    else:
        target = {'job': request_model(JobTemplate, playbook=playbook, **template_fields(options))}
    request = request_model(ScheduleCreate, '--cron/--every/--at', name=name, paused=paused, **target,
                            **_schedule_fields(options, required=True))
    _show_schedule(api_answer(lambda client: client.create_schedule(request), as_json))


@schedules_app.command('edit', hidden=True)  # the same command, named as `dbfleet templates edit` is
@schedules_app.command('update', short_help='Change a schedule: only the options given change.')
@shared_options(SCHEDULE_OPTIONS, TARGET_OPTIONS, VARS_OPTIONS, PLAN_OPTIONS)
def schedules_update(ref: str = SCHEDULE_REF,
                     playbook: Optional[str] = typer.Option(None, '--playbook', help='Run this playbook instead.'),
                     as_json: bool = JSON_OPTION, **options) -> None:
    """Change a schedule: only the options given change (-e replaces its extra vars; --lanes its
    rolling batches, --rolling its lanes). A new trigger or --tz fires from now on."""
    from runner_service.schemas import JobTemplate, ScheduleUpdate
    changes = _schedule_fields(options, required=False)
    with api_client() as client:
        shared = (*TARGET_OPTIONS, *VARS_OPTIONS, *PLAN_OPTIONS)
        if playbook is None and any(options.get(name) for name in shared) and \
                client.schedule(ref)['job'].get('template'):
            # A schedule of a job template: -e and --limit are values for the template's launch.
            if any(options.get(name) for name in shared if name not in ('extra_vars', 'limit')):
                fail('%s launches a job template: only -e and --limit change what it launches' % ref)
            if options.get('extra_vars'):
                changes['extra_vars'] = parse_extra_vars(options['extra_vars'])
            if options.get('limit'):
                changes['limit'] = options['limit']
        elif playbook is not None or any(options.get(name) for name in shared):
            job = client.schedule(ref)['job']
            template = template_fields(options, base_plan=job.get('plan'))
            if playbook is not None:
                template['playbook'] = playbook
            if 'inventory' in template or 'tags' in template:
                job = dict(job, inventory=None, tags=None)
            changes['job'] = request_model(JobTemplate, **{**job, **template})
        if not changes:
            fail('nothing to change: give the options to change (dbfleet schedules update --help)')
        changed = client.update_schedule(ref, request_model(ScheduleUpdate, **changes))
    if as_json:
        print_json(changed)
    else:
        _show_schedule(changed)


@schedules_app.command('pause')
def schedules_pause(ref: str = SCHEDULE_REF, as_json: bool = JSON_OPTION) -> None:
    """Stop firing until resumed."""
    _schedule_line(api_answer(lambda client: client.pause_schedule(ref), as_json), 'paused')


@schedules_app.command('resume')
def schedules_resume(ref: str = SCHEDULE_REF, as_json: bool = JSON_OPTION) -> None:
    """Fire again from the next slot after now (slots that fell in the pause are not caught up)."""
    _schedule_line(api_answer(lambda client: client.resume_schedule(ref), as_json), 'resumed')


@schedules_app.command('delete')
def schedules_delete(ref: str = SCHEDULE_REF, as_json: bool = JSON_OPTION) -> None:
    """Delete a schedule (its jobs stay)."""
    typer.echo('schedule %s deleted' % api_answer(lambda client: client.delete_schedule(ref), as_json)['name'])


@schedules_app.command('preview')
def schedules_preview(ref: str = SCHEDULE_REF,
                      count: int = typer.Option(10, '-n', help='How many fire times (1-100).'),
                      as_json: bool = JSON_OPTION) -> None:
    """The next fire times, in the schedule's time zone; those inside a maintenance window are
    marked: skipped, or deferred to the window's end."""
    preview = api_answer(lambda client: client.preview_schedule(ref, count), as_json)
    zone = preview['timezone']
    blocked = {entry['time']: entry for entry in preview.get('blocked') or []}
    rows = table('#', 'fire time (%s)' % zone, 'maintenance window')
    for index, time in enumerate(preview['times'], 1):
        entry = blocked.get(time)
        note = '' if entry is None else '%s: in %s until %s' % (
            'skipped' if entry['action'] == 'skip' else 'deferred', entry['window'], zoned(entry['until'], zone))
        rows.add_row(str(index), zoned(time, zone), Text(note), style='yellow' if entry else None)
    print_wide(rows)
    if not preview['times']:
        console.print(Text('schedule %s fires no more' % preview['schedule']))


@schedules_app.command('slots')
def schedules_slots(ref: str = SCHEDULE_REF,
                    limit: Optional[int] = typer.Option(None, '--limit', help='Slots to show (default 50).'),
                    as_json: bool = JSON_OPTION) -> None:
    """What each recent slot did, newest first: fired (with its job), skipped or missed, who took it
    (by: platform or crontab), and why."""
    slots = api_answer(lambda client: client.schedule_slots(ref, limit), as_json)
    zone = api_answer(lambda client: client.schedule(ref), False)['timezone'] if slots else 'UTC'
    rows = table('slot (%s)' % zone, 'outcome', 'by', 'job', 'reason')
    for slot in slots:
        rows.add_row(zoned(slot['slot_at'], zone), slot['outcome'], slot.get('claimed_by') or '-',
                     slot['job_id'] or '-', Text(slot['reason'] or ''),
                     style=None if slot['outcome'] == 'fired' else 'yellow')
    print_wide(rows)
    console.print(Text('%d slot(s)' % len(slots)))
