"""`dbfleet plans preview`: which host would run in which lane and when the run would end, asked
of the API before anything runs."""

from __future__ import annotations

import datetime as dt
from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.inputs import parse_time, request_model
from runner_service.cli.options import JSON_OPTION, TARGET_OPTIONS, shared_options
from runner_service.cli.output import api_client, print_json, print_wide, table, zoned

plans_app = typer.Typer(help='Batch plans, through the API: preview lanes and the finish before anything runs.',
                        no_args_is_help=True)


@plans_app.command('preview', short_help='Which host in which lane, and when the run would end.')
@shared_options(TARGET_OPTIONS)
def plans_preview(playbook: Optional[str] = typer.Argument(None, help='A playbook, with --inventory (and --limit): '
                                                                      'the hosts it would run on.'),
                  hosts: Optional[str] = typer.Option(None, '--hosts', help='The hosts: h1,h2,...'),
                  lanes: int = typer.Option(..., '--lanes', help='How many lanes.'),
                  start: Optional[str] = typer.Option(None, '--start', help='When it would start (ISO; default now).'),
                  window_end: Optional[str] = typer.Option(None, '--window-end', help='When it must be over: ISO, or '
                                                           'HH:MM (local, the next one after the start).'),
                  as_json: bool = JSON_OPTION, **options) -> None:
    """Split the hosts (--hosts, --tags, or PLAYBOOK with --inventory) into --lanes balanced by
    their estimated durations: each lane's hosts and times, the predicted finish, the lower bound,
    and a warning when it overruns --window-end (the exit code stays 0)."""
    from runner_service.schemas import PlanPreviewRequest
    begin = parse_time(start, '--start') if start else None
    request = request_model(PlanPreviewRequest, '--hosts/--tags/PLAYBOOK', playbook=playbook, lanes=lanes,
                            start=begin,
                            hosts=[host.strip() for host in hosts.split(',') if host.strip()] if hosts else None,
                            window_end=parse_time(window_end, '--window-end', begin) if window_end else None,
                            **options)
    with api_client() as client:
        preview = client.preview_plan(request)
    if as_json:
        print_json(preview)
    else:
        rows = table('lane', 'hosts', 'estimate s', 'start', 'end')
        for lane in preview['lanes']:
            planned = lane['hosts']
            rows.add_row(str(lane['lane']), Text(', '.join(host['host'] for host in planned)),
                         '%.0f' % lane['seconds'], zoned(planned[0]['start'] if planned else None),
                         zoned(planned[-1]['end'] if planned else None))
        print_wide(rows)
        took = (dt.datetime.fromisoformat(preview['finish']) - dt.datetime.fromisoformat(preview['start']))
        typer.echo('predicted finish: %s (%.0f s)' % (zoned(preview['finish']), took.total_seconds()))
        typer.echo('lower bound: %.0f s (no plan of %d lanes can be shorter)' % (preview['lower_bound_seconds'], lanes))
        if preview['window_end'] is not None:
            typer.echo('window ends: %s: %s' % (zoned(preview['window_end']),
                                                'fits' if preview['fits'] else 'overruns'))
    if preview['warning']:
        if not as_json:
            typer.echo('warning: %s' % preview['warning'])
        typer.echo('dbfleet: warning: %s' % preview['warning'], err=True)
