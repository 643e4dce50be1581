"""`dbfleet templates ...`: job templates through the API. Admins create, edit and delete them;
operators launch them (`--wait` follows the job as `dbfleet jobs launch --wait` does).

A template can come from a YAML (or JSON) file, `--from-file template.yml`, holding the fields of
POST /api/v1/templates (playbook, inventory or tags, limit, allow_limit, survey, plan...); the
options given on the command line win over the file's fields.
"""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.inputs import parse_extra_vars, parse_rolling, parse_seconds, parse_subscriptions, request_model
from runner_service.cli.job_view import show_launched
from runner_service.cli.options import JSON_OPTION, WAIT_OPTION, optional, shared_options
from runner_service.cli.output import api_answer, api_client, console, fail, fields_table, print_json, print_wide, \
    subscriptions_text, table

templates_app = typer.Typer(help='Job templates (what operators may launch), through the API: list, show, create, '
                                 'edit, delete, launch.', no_args_is_help=True)

NAME_ARGUMENT = typer.Argument(..., help='A template name, e.g. nightly-backup.')
FROM_FILE = typer.Option(None, '--from-file', '-f', help='A YAML or JSON file with the template\'s fields; options '
                                                         'given here win.')


def _from_file(path: str | None) -> dict:
    """The template fields in a YAML or JSON file the user gave (their own file, read here)."""
    if path is None:
        return {}
    import yaml
    try:
        with open(path, encoding='utf-8') as handle:
            fields = yaml.safe_load(handle)
    except OSError as exc:
        fail('--from-file %s: %s' % (path, exc.strerror or exc))
    except yaml.YAMLError as exc:
        fail('--from-file %s: not valid YAML: %s' % (path, ' '.join(str(exc).split())[:200]))
    if not isinstance(fields, dict):
        fail('--from-file %s: not a mapping of template fields' % path)
    return fields


def _fields(playbook: str | None, options: dict) -> dict:
    """Template fields from the command's options; those not given left out."""
    fields = {key: options[key] for key in ('description', 'inventory', 'tags', 'limit', 'forks', 'queue',
                                            'priority', 'allow_limit', 'credentials') if options.get(key)
              is not None}
    if playbook is not None:
        fields['playbook'] = playbook
    for key, option in (('timeout', '--timeout'), ('deadline_after', '--deadline-after')):
        if options.get(key) is not None:
            fields[key] = parse_seconds(options[key], option)
    plan = {}
    if options.get('lanes') is not None:
        plan['lanes'] = options['lanes']
    if options.get('rolling') is not None:
        plan['rolling'] = parse_rolling(options['rolling'])
    if options.get('window_end_after') is not None:
        plan['window_end_after'] = parse_seconds(options['window_end_after'], '--window-end-after')
    for key in ('pool', 'window_end_at', 'window_timezone'):
        if options.get(key) is not None:
            plan[key] = options[key]
    if plan:
        fields['plan'] = plan
    if options.get('notify'):
        fields['notify'] = parse_subscriptions(options['notify'])
    if options.get('approval') is not None or options.get('approval_timeout') is not None:
        fields['approval'] = {'required': bool(options.get('approval', True))}
        if options.get('approval_timeout') is not None:
            fields['approval']['timeout'] = options['approval_timeout']
    return fields


def _show(template: dict) -> None:
    target = template['inventory'] or 'tags: %s' % template['tags']
    fields_table({
        'name': template['name'], 'description': template.get('description'), 'playbook': template['playbook'],
        'hosts': target + (' --limit %s' % template['limit'] if template.get('limit') else ''),
        'launch may limit': 'yes' if template['allow_limit'] else 'no',
        'forks': template.get('forks'), 'timeout s': template.get('timeout'),
        'deadline after s': template.get('deadline_after'), 'queue': template.get('queue'),
        'priority': template.get('priority'),
        'credentials': ', '.join(template.get('credentials') or []) or None,
        'plan': json.dumps(template['plan'], sort_keys=True) if template.get('plan') else None,
        'notify': subscriptions_text(template.get('notify')),
        'approval': ('required, within %s' % template['approval'].get('timeout', '4h')
                     if (template.get('approval') or {}).get('required') else None),
        'created': template['created_at'], 'created by': template.get('created_by'),
        'updated': template['updated_at'], 'updated by': template.get('updated_by'),
    })
    if template['survey']:
        rows = table('variable', 'type', 'required', 'default', 'rules')
        for variable in template['survey']:
            rules = ', '.join('%s %s' % (key, json.dumps(variable[key])) for key in
                              ('min', 'max', 'min_length', 'max_length', 'choices', 'pattern')
                              if variable.get(key) is not None)
            rows.add_row(Text(variable['name']), variable['type'], 'yes' if variable['required'] else 'no',
                         Text(json.dumps(variable['default']) if variable.get('default') is not None else '-'),
                         Text(rules or '-'))
        print_wide(rows)
    else:
        console.print('survey: none (a launch sets no extra vars)')


# The fields of a template that `create` and `edit` both take, after their own options.
DEFINITION_OPTIONS = {
    'description': optional(str, '--description', help='What it is for, for people.'),
    'inventory': optional(str, '--inventory', '-i', help='An inventory file or directory under the project.'),
    'tags': optional(str, '--tags', help="The store's hosts matching a tag expression."),
    'limit': optional(str, '--limit', '-l', help='Every launch runs within these hosts (a host pattern).'),
    'allow_limit': optional(bool, '--allow-limit/--no-allow-limit', help='A launch may narrow the hosts with its '
                                                                          'own --limit.'),
    'forks': optional(int, '--forks', help='Parallel hosts.'),
    'timeout': optional(str, '--timeout', help='Seconds a run may take (or 30m, 2h).'),
    'deadline_after': optional(str, '--deadline-after', help='Kill each run this long after its launch (2h).'),
    'queue': optional(str, '--queue', help='The queue (default: default).'),
    'priority': optional(int, '--priority', help='-100..100; above 0 jumps its queue.'),
    'lanes': optional(int, '--lanes', help='Split the hosts into N lanes.'),
    'rolling': optional(str, '--rolling', help='Rolling batches, e.g. 1,5,20%.'),
    'pool': optional(str, '--pool', help='Each host run holds a slot of this pool.'),
    'window_end_after': optional(str, '--window-end-after', help='No host of a run starts this long after its '
                                                                 'launch (2h); those running finish.'),
    'approval': optional(bool, '--require-approval/--no-approval', help='Each job waits awaiting_approval until '
                         'an admin other than its launcher approves it (dbfleet jobs approve).'),
    'approval_timeout': optional(str, '--approval-timeout', help='How long a job waits for approval before it '
                                 'ends expired (30m, 4h, 2d; default 4h).'),
    'window_end_at': optional(str, '--window-end-at', help='No host of a run starts after this time of day (HH:MM, '
                                                           'in --window-tz); those running finish.'),
    'window_timezone': optional(str, '--window-tz', help='IANA zone of --window-end-at (default UTC).'),
    'credentials': optional(list[str], '--credential', help='A credential its runs get (repeat; at most one of '
                                                            'each kind). On edit, the list replaces the old one.'),
    'notify': optional(list[str], '--notify', help='EVENT=NOTIFIER: who hears of its jobs\' (and its schedules\' '
                                                   'slots\') events: failed, recovered, timed_out, window_overrun, '
                                                   'window_overrun_predicted, slot_missed, slot_skipped (repeat). '
                                                   'On edit, the whole set replaces the old one.'),
}


@templates_app.command('list')
def templates_list(as_json: bool = JSON_OPTION) -> None:
    """Templates with their playbook, hosts and survey."""
    templates = api_answer(lambda client: client.templates(), as_json)
    rows = table('name', 'playbook', 'hosts', 'limit', 'survey')
    for template in templates:
        rows.add_row(Text(template['name']), Text(template['playbook']),
                     Text(template['inventory'] or 'tags: %s' % template['tags']),
                     Text((template.get('limit') or 'all') + (' (launch may narrow)' if template['allow_limit']
                                                              else '')),
                     Text(', '.join(variable['name'] for variable in template['survey']) or '-'))
    print_wide(rows)
    console.print(Text('%d template(s)' % len(templates)))


@templates_app.command('show')
def templates_show(name: str = NAME_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """A template's playbook, hosts, defaults and survey."""
    _show(api_answer(lambda client: client.template(name), as_json))


@templates_app.command('create', short_help='Define what operators may launch (needs an admin token).')
@shared_options(DEFINITION_OPTIONS, last=True)
def templates_create(name: str = NAME_ARGUMENT,
                     playbook: Optional[str] = typer.Argument(None, help='A playbook under the project (or in '
                                                              '--from-file).'),
                     from_file: Optional[str] = FROM_FILE, as_json: bool = JSON_OPTION, **options) -> None:
    """Create a template: PLAYBOOK on --inventory or --tags, with defaults; its survey (the extra
    vars a launch may set, with their types and rules) comes from --from-file."""
    from runner_service.schemas import TemplateCreate
    fields = {**_from_file(from_file), **_fields(playbook, options)}
    fields.pop('name', None)
    for given, other in (('inventory', 'tags'), ('tags', 'inventory')):
        if options.get(given) is not None:
            fields.pop(other, None)
    request = request_model(TemplateCreate, name=name, **fields)
    created = api_answer(lambda client: client.create_template(request), as_json)
    _show(created)


@templates_app.command('edit', short_help='Change a template: only the options given change.')
@shared_options(DEFINITION_OPTIONS, last=True)
def templates_edit(name: str = NAME_ARGUMENT,
                   playbook: Optional[str] = typer.Option(None, '--playbook', help='Run this playbook instead.'),
                   from_file: Optional[str] = FROM_FILE, as_json: bool = JSON_OPTION, **options) -> None:
    """Change a template: the fields of --from-file and the options given replace its own (a plan
    option replaces its whole plan; --from-file with `survey:` its whole survey)."""
    from runner_service.schemas import TemplateUpdate
    changes = {**_from_file(from_file), **_fields(playbook, options)}
    changes.pop('name', None)
    if not changes:
        fail('nothing to change: give the options to change (dbfleet templates edit --help)')
    request = request_model(TemplateUpdate, **changes)
    _show(api_answer(lambda client: client.update_template(name, request), as_json))


@templates_app.command('delete')
def templates_delete(name: str = NAME_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Delete a template (the jobs it launched stay, with its name)."""
    typer.echo('template %s deleted' % api_answer(lambda client: client.delete_template(name), as_json)['name'])


@templates_app.command('launch', short_help='Run a template; with --wait, follow the job to its end.')
def templates_launch(name: str = NAME_ARGUMENT,
                     extra_vars: Optional[list[str]] = typer.Option(None, '--extra-vars', '-e', help='key=value (the '
                                                                    'value read as JSON when it is JSON) or '
                                                                    '@file.json / @file.yml; repeat.'),
                     limit: Optional[str] = typer.Option(None, '--limit', '-l', help='Narrow the template\'s hosts '
                                                         '(where it allows it).'),
                     idempotency_key: Optional[str] = typer.Option(None, '--idempotency-key',
                                                                   help='The same key gives back the same job.'),
                     wait: bool = WAIT_OPTION,
                     as_json: bool = JSON_OPTION) -> None:
    """Queue a run of the template with values for its survey (-e) and print the job's id and
    status. Exit code: as `dbfleet jobs launch` (with --wait: 0 successful, 1 otherwise; 2 refused)."""
    from runner_service.schemas import TemplateLaunch
    request = request_model(TemplateLaunch, extra_vars=parse_extra_vars(extra_vars) if extra_vars else None,
                            limit=limit, idempotency_key=idempotency_key)
    with api_client() as client:
        job = client.launch_template(name, request)
        if as_json and not wait:
            print_json(job)
            return
        show_launched(client, job, wait, as_json)
