"""`dbfleet jobs ...`: jobs through the API (DBFLEET_API_URL, DBFLEET_TOKEN). Requests are the
API's own models (JobCreate, Dependency), answers are read with its response models
(runner_service.client)."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.inputs import invalid_message, parse_seconds, parse_time, request_model, template_fields
from runner_service.cli.job_view import ended_line, host_table, show_launched, timeline
from runner_service.cli.options import JSON_OPTION, PLAN_OPTIONS, TARGET_OPTIONS, VARS_OPTIONS, WAIT_OPTION, \
    shared_options
from runner_service.cli.output import api_client, console, fail, fields_table, plan_text, print_json, print_wide, \
    seconds_text, table, when

jobs_app = typer.Typer(help='Jobs, through the API (DBFLEET_API_URL, DBFLEET_TOKEN): launch, list, show, logs, '
                            'cancel, relaunch.', no_args_is_help=True)

JOB_ID_ARGUMENT = typer.Argument(..., help='A job id.')


def _job_request(playbook: str, after: list[str], deadline: str | None, timeout: str | None, options: dict,
                 window_end: str | None, **fields):
    """The JobCreate for `jobs launch`; options left out keep the model's defaults."""
    from pydantic import ValidationError

    from runner_service.schemas import Dependency, JobCreate
    if timeout is not None:
        fields['timeout'] = parse_seconds(timeout, '--timeout')
    if deadline is not None:
        fields['deadline'] = parse_time(deadline, '--deadline')
    depends_on = []
    for item in after:
        job_id, _, on = item.partition(':')
        try:
            depends_on.append(Dependency(job_id=job_id, on=on or 'success'))
        except ValidationError as exc:
            fail(invalid_message(exc, '--after %s' % item))
    return request_model(JobCreate, playbook=playbook, depends_on=depends_on,
                         **template_fields(options, window_end), **fields)


PLAYBOOK_ARGUMENT = typer.Argument(..., help='A playbook under the project directory, e.g. playbooks/inspect.yml.')


@jobs_app.command('launch', short_help='Queue a playbook run; with --wait, follow it to its end.')
@shared_options(TARGET_OPTIONS, VARS_OPTIONS, PLAN_OPTIONS)
def jobs_launch(
        playbook: str = PLAYBOOK_ARGUMENT,
        window_end: Optional[str] = typer.Option(None, '--window-end', help='When the run should be over (ISO, or '
                                                 'HH:MM local): warn when its estimate overruns it.'),
        check: Optional[bool] = typer.Option(None, '--check', help='Report what would change; change nothing.'),
        diff: Optional[bool] = typer.Option(None, '--diff', help='Show the differences of what changes.'),
        forks: Optional[int] = typer.Option(None, '--forks', help='Parallel hosts.'),
        timeout: Optional[str] = typer.Option(None, '--timeout', help='Seconds the run may take (or 30m, 2h).'),
        deadline: Optional[str] = typer.Option(None, '--deadline', help='Kill the run at this time: ISO (UTC '
                                                                        'unless it says, 2026-11-27T03:00:00Z) or 2h.'),
        after: Optional[list[str]] = typer.Option(None, '--after', help='JOB[:success|failure|always]: start once that '
                                                                        'job ended so (default success); repeat.'),
        queue: Optional[str] = typer.Option(None, '--queue', help='The queue (default: default).'),
        priority: Optional[int] = typer.Option(None, '--priority', help='-100..100; above 0 jumps its queue.'),
        retries: Optional[int] = typer.Option(None, '--retries', help='Retries if its worker is lost (0-10).'),
        idempotency_key: Optional[str] = typer.Option(None, '--idempotency-key',
                                                      help='The same key gives back the same job.'),
        wait: bool = WAIT_OPTION, as_json: bool = JSON_OPTION, **options) -> None:
    """Queue a playbook run on --inventory or --tags (one of them) and print its id and status.
    --lanes or --rolling (with --max-fail), --pool and --window-end make its batch plan.
    With --wait, follow it live (a line a task when stdout is not a terminal), then print the
    per-host results and how it ended. Exit code: 0 when the job ended successful, 1 when it
    ended otherwise (failed, canceled, timed out...), 2 when the request was refused."""
    request = _job_request(playbook, after or [], deadline, timeout, options, window_end, check=check, diff=diff,
                           forks=forks, queue=queue, priority=priority, max_retries=retries,
                           idempotency_key=idempotency_key)
    with api_client() as client:
        show_launched(client, client.launch(request), wait, as_json)


@jobs_app.command('list')
def jobs_list(status: Optional[list[str]] = typer.Option(None, '--status', help='Only jobs with this status; repeat.'),
              playbook: Optional[str] = typer.Option(None, '--playbook', help='Only runs of this playbook.'),
              tag: Optional[str] = typer.Option(None, '--tag', help='Only jobs whose tag expression names it.'),
              template: Optional[str] = typer.Option(None, '--template', help='Only jobs launched from this template.'),
              created_by: Optional[str] = typer.Option(None, '--created-by', help='Only jobs launched by this token.'),
              limit: Optional[int] = typer.Option(None, '--limit', help='Jobs a page (default 50).'),
              cursor: Optional[str] = typer.Option(None, '--cursor', help='The next page, from the previous one.'),
              as_json: bool = JSON_OPTION) -> None:
    """Jobs, newest first."""
    with api_client() as client:
        page = client.list(status=status, playbook=playbook, tag=tag, template=template, created_by=created_by,
                           limit=limit, cursor=cursor)
    if as_json:
        print_json(page)
        return
    rows = table('id', 'status', 'playbook', 'inventory or tags', 'created', 'run s', 'created by')
    rows.columns[0].no_wrap = True
    for job in page['jobs']:
        rows.add_row(job['id'], job['status'], Text(job['playbook']),
                     Text(job['inventory'] or 'tags: %s' % job['tags']), when(job['created_at']).replace('T', ' '),
                     seconds_text(job['timings']['run_seconds']) or '-', Text(job['created_by'] or '-'))
    print_wide(rows)
    more = '; next page: --cursor %s' % page['next_cursor'] if page['next_cursor'] else ''
    console.print(Text('%d job(s)%s' % (len(page['jobs']), more)))


@jobs_app.command('show')
def jobs_show(job_id: str = JOB_ID_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """A job's fields and per-host results; with a batch plan, its timeline too."""
    with api_client() as client:
        job = client.get(job_id)
        if as_json:
            print_json(job)
            return
        _show_job(client, job)


def _show_job(client, job: dict) -> None:
    timings = job['timings']
    fields = {
        'id': job['id'], 'status': job['status'], 'reason': job['status_reason'], 'playbook': job['playbook'],
        'inventory': job['inventory'], 'tags': job['tags'], 'limit': job['limit'],
        'extra vars': json.dumps(job['extra_vars'], sort_keys=True) if job['extra_vars'] else None,
        'mode': ' '.join(name for name in ('check', 'diff') if job[name]) or None, 'forks': job['forks'],
        'timeout s': job['timeout'], 'deadline': job['deadline'],
        'after': ', '.join('%s:%s' % (item['job_id'], item['on']) for item in job['depends_on']) or None,
        'queue': '%s (priority %d)%s' % (job['queue'], job['priority'],
                                         ': no worker listens to it' if job.get('waiting_for_worker') else ''),
        'attempt': '%d of %d' % (job['attempt'], job['max_retries'] + 1),
        'created': job['created_at'], 'started': job['started_at'], 'finished': job['finished_at'],
        'queued s': seconds_text(timings['queued_seconds']), 'run s': seconds_text(timings['run_seconds']),
        'worker': job['worker'], 'project revision': job.get('project_revision'),
        'return code': job['return_code'], 'created by': job['created_by'], 'relaunch of': job['relaunch_of'],
        'cancel requested': 'yes' if job['cancel_requested'] else None,
        'plan': plan_text(job['plan']),
    }
    fields_table(fields)
    host_table(job)
    timeline(client, job)


@jobs_app.command('logs', short_help="A job's output; -f follows it live to the job's end.")
def jobs_logs(job_id: str = JOB_ID_ARGUMENT,
              follow: bool = typer.Option(False, '--follow', '-f', help='Print the output as it comes, to the end.'),
              host: Optional[str] = typer.Option(None, '--host', help="Only this host's output.")) -> None:
    """A job's output as ansible printed it. With -f, follow it live until the job ends; then the
    exit code is 0 when the job ended successful, 1 when it ended otherwise."""
    with api_client() as client:
        if not follow and host is None:
            sys.stdout.write(client.stdout(job_id)['stdout'])
            return
        if not follow:
            after = None
            while True:
                page = client.events(job_id, after=after, host=host, limit=1000)
                for event in page['events']:
                    if event['stdout']:
                        typer.echo(event['stdout'])
                if page['next_cursor'] is None:
                    return
                after = page['next_cursor']
        try:
            for name, event in client.follow(job_id, host=host):
                if name == 'end':
                    typer.echo(ended_line(job_id, event['status'], event.get('status_reason')), err=True)
                    raise typer.Exit(0 if event['status'] == 'successful' else 1)
                if event['stdout']:
                    typer.echo(event['stdout'])
        except KeyboardInterrupt:
            raise typer.Exit(130)


@jobs_app.command('cancel')
def jobs_cancel(job_id: str = JOB_ID_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Cancel a job: a queued or waiting one at once, a running one within seconds."""
    with api_client() as client:
        job = client.cancel(job_id)
    if as_json:
        print_json(job)
    elif job['status'] == 'canceled':
        typer.echo('job %s canceled' % job_id)
    else:
        typer.echo('job %s %s: cancel requested, its processes are stopped within seconds' % (job_id, job['status']))


@jobs_app.command('approve', short_help='Let a job awaiting approval run (admin, not its launcher).')
def jobs_approve(job_id: str = JOB_ID_ARGUMENT,
                 reason: Optional[str] = typer.Option(None, '--reason', help='Why (kept in the audit log).'),
                 as_json: bool = JSON_OPTION) -> None:
    """Approve a job awaiting approval (its template requires it): it is queued, or waits for its
    dependencies. An admin token other than the launcher's."""
    _decide(job_id, True, reason, as_json)


@jobs_app.command('reject', short_help='End a job awaiting approval, rejected (admin, not its launcher).')
def jobs_reject(job_id: str = JOB_ID_ARGUMENT,
                reason: str = typer.Option(..., '--reason', help='Why: shown with the job and in the audit log.'),
                as_json: bool = JSON_OPTION) -> None:
    """Reject a job awaiting approval: it ends `rejected` with the reason."""
    _decide(job_id, False, reason, as_json)


def _decide(job_id: str, approve: bool, reason: str | None, as_json: bool) -> None:
    with api_client() as client:
        job = client.decide(job_id, approve, reason)
    if as_json:
        print_json(job)
    else:
        typer.echo('job %s %s: %s' % (job_id, 'approved' if approve else 'rejected', job['status']))


@jobs_app.command('relaunch', short_help='Run a job again, on all its hosts or the failed ones.')
def jobs_relaunch(job_id: str = JOB_ID_ARGUMENT,
                  failed: bool = typer.Option(False, '--failed', help='Only its failed and unreachable hosts.'),
                  wait: bool = WAIT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Run a job again as a new job, on all its hosts or only the failed ones. With --wait, exit
    code 0 when the new job ended successful, 1 when it ended otherwise."""
    with api_client() as client:
        show_launched(client, client.relaunch(job_id, 'failed' if failed else 'all'), wait, as_json)
