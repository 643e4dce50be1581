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
                  template: Optional[str] = typer.Option(None, '--template', help='A job template: its hosts, '
                                                         'lanes and window end.'),
                  schedule: Optional[str] = typer.Option(None, '--schedule', help='A schedule: its hosts, lanes and '
                                                         'window end, from its next fire.'),
                  lanes: Optional[int] = typer.Option(None, '--lanes', help='How many lanes (default: the '
                                                      'template\'s or schedule\'s).'),
                  start: Optional[str] = typer.Option(None, '--start', help='When it would start (ISO; default now).'),
                  window_end: Optional[str] = typer.Option(None, '--window-end', help='When it must be over: ISO, or '
                                                           'HH:MM (local, the next one after the start).'),
                  as_json: bool = JSON_OPTION, **options) -> None:
    """Split the hosts (--hosts, --tags, PLAYBOOK with --inventory, --template or --schedule) into
    --lanes balanced by their estimated durations (each host's start-up cost included): each lane's
    hosts and times, the predicted finish, the lower bound, how the estimates of the same
    template, schedule or playbook held in their last 10 runs, and a warning when it overruns
    --window-end (the exit code stays 0)."""
    from runner_service.schemas import PlanPreviewRequest
    begin = parse_time(start, '--start') if start else None
    request = request_model(PlanPreviewRequest, '--hosts/--tags/PLAYBOOK/--template/--schedule', playbook=playbook,
                            lanes=lanes, start=begin, template=template, schedule=schedule,
                            hosts=[host.strip() for host in hosts.split(',') if host.strip()] if hosts else None,
                            window_end=parse_time(window_end, '--window-end', begin) if window_end else None,
                            **options)
    with api_client() as client:
        preview = client.preview_plan(request)
    if as_json:
        print_json(preview)
    else:
        rows = table('lane', 'hosts', 'estimate s', 'of it start-up s', 'start', 'end')
        for lane in preview['lanes']:
            planned = lane['hosts']
            rows.add_row(str(lane['lane']), Text(', '.join(host['host'] for host in planned)),
                         '%.0f' % lane['seconds'], '%.1f' % sum(host['overhead_seconds'] for host in planned),
                         zoned(planned[0]['start'] if planned else None),
                         zoned(planned[-1]['end'] if planned else None))
        print_wide(rows)
        took = (dt.datetime.fromisoformat(preview['finish']) - dt.datetime.fromisoformat(preview['start']))
        typer.echo('predicted finish: %s (%.0f s)' % (zoned(preview['finish']), took.total_seconds()))
        typer.echo('lower bound: %.0f s (no plan of %d lanes can be shorter)' % (preview['lower_bound_seconds'], lanes))
        if preview['window_end'] is not None:
            typer.echo('window ends: %s: %s' % (zoned(preview['window_end']),
                                                'fits' if preview['fits'] else 'overruns'))
        _print_accuracy(preview.get('accuracy'))
    if preview['warning']:
        if not as_json:
            typer.echo('warning: %s' % preview['warning'])
        typer.echo('dbfleet: warning: %s' % preview['warning'], err=True)


def _print_accuracy(accuracy: dict | None) -> None:
    """Past estimates against what happened (actual / estimated: above 1 is slower than estimated)."""
    if accuracy is None:
        return
    if not accuracy['runs']:
        typer.echo('past accuracy (%s): no run in lanes yet' % accuracy['of'])
        return
    typer.echo('past accuracy (%s, last %d runs; actual / estimated): total median %.2f, lanes %.2f to %.2f '
               '(median %.2f)' % (accuracy['of'], len(accuracy['runs']), accuracy['median_ratio'] or 0,
                                  accuracy['lane_ratio_min'] or 0, accuracy['lane_ratio_max'] or 0,
                                  accuracy['lane_ratio_median'] or 0))
    rows = table('job', 'started', 'estimated s', 'took s', 'ratio', 'lane ratios')
    for run in accuracy['runs']:
        rows.add_row(run['job_id'][:12], zoned(run['started_at']), '%.1f' % run['estimated_seconds'],
                     '%.1f' % run['actual_seconds'], '%.2f' % (run['ratio'] or 0),
                     ' '.join('%d:%.2f' % (lane['lane'], lane['ratio'] or 0) for lane in run['lanes']))
    print_wide(rows)
