"""How a launched job is shown: its id and status, or, with --wait, its live progress (a bar on
a terminal, a line a finished task elsewhere), then its per-host results, the timeline of a
planned job, and how it ended (the exit code: 0 successful, 1 otherwise)."""

from __future__ import annotations

import datetime as dt

import typer
from rich.text import Text

from runner_service.cli.output import console, fail, print_json, print_wide, seconds_text, table, when

HOST_COLUMNS = ('ok', 'changed', 'failed', 'unreachable', 'skipped')
TASK_START_EVENTS = ('playbook_on_task_start', 'playbook_on_handler_task_start')
RESULT_EVENTS = ('runner_on_ok', 'runner_on_failed', 'runner_on_skipped', 'runner_on_unreachable')
HOST_FAILED_EVENTS = ('runner_on_failed', 'runner_on_unreachable')


class TaskProgress:
    """A live job as its events tell it: the current task, its hosts done of the hosts seen so far,
    and the hosts that failed or were unreachable (a failure ignored by the play does not count)."""

    def __init__(self) -> None:
        self.task: str | None = None
        self.hosts: set[str] = set()
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.task_failed: set[str] = set()

    def feed(self, event: dict) -> str | None:
        """Take one event; returns a line for the task it ended, if it ended one."""
        name, host = event['event'], event.get('host')
        if name in TASK_START_EVENTS or name == 'playbook_on_stats':
            ended = self.end_task()
            self.task = (event.get('task') or '(unnamed task)') if name != 'playbook_on_stats' else None
            return ended
        if host and name == 'runner_on_start':
            self.hosts.add(host)
        elif host and name in RESULT_EVENTS:
            self.hosts.add(host)
            self.done.add(host)
            if name in HOST_FAILED_EVENTS and event.get('failed') is not False:
                self.failed.add(host)
                self.task_failed.add(host)
        return None

    def end_task(self) -> str | None:
        if self.task is None:
            return None
        line = 'task %s: %d/%d hosts done' % (self.task, len(self.done), len(self.hosts))
        if self.task_failed:
            line += ', failed: %s' % ', '.join(sorted(self.task_failed))
        self.task, self.done, self.task_failed = None, set(), set()
        return line

    @property
    def failures(self) -> str:
        return 'failed: %s' % ', '.join(sorted(self.failed)) if self.failed else ''


def host_table(job: dict) -> None:
    if not job['hosts']:
        console.print('no per-host results (yet)')
        return
    rows = table('host', *HOST_COLUMNS)
    for host, counts in sorted(job['hosts'].items()):
        rows.add_row(Text(host), *(str(counts[column]) for column in HOST_COLUMNS),
                     style='red' if counts['failed'] or counts['unreachable'] else None)
    console.print(rows)


def timeline(client, job: dict) -> None:
    """A planned job's host runs: per lane (or batch), host, status, start, end, how long it took
    and what was estimated."""
    if not job.get('plan'):
        return
    runs = client.runs(job['id'])
    if not runs:
        console.print('no timeline (yet)')
        return
    group = 'lane' if any(run['lane'] is not None for run in runs) else 'batch'
    rows = table(group, 'host', 'status', 'worker', 'start', 'end', 'took s', 'estimate s')
    for run in sorted(runs, key=lambda run: (run[group] if run[group] is not None else -1,
                                             run['started_at'] or '~', run['host'])):
        took = None
        if run['started_at'] and run['finished_at']:
            took = (dt.datetime.fromisoformat(run['finished_at'])
                    - dt.datetime.fromisoformat(run['started_at'])).total_seconds()
        rows.add_row('-' if run[group] is None else str(run[group]), Text(run['host']), run['status'],
                     Text(run.get('worker') or '-'),
                     when(run['started_at']).replace('T', ' '), when(run['finished_at']).replace('T', ' '),
                     seconds_text(took) or '-', seconds_text(run['estimate_seconds']) or '-',
                     style='red' if run['status'] in ('failed', 'worker_lost') else None)
    print_wide(rows)


def ended_line(job_id: str, status: str, reason: str | None) -> str:
    return 'job %s %s%s' % (job_id, status, ': %s' % reason if reason else '')


def follow_progress(client, job_id: str) -> None:
    """Follow a job's events to its end with a live bar, or a line a finished task off a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
    tracker = TaskProgress()
    if not console.is_terminal:
        for name, event in client.follow(job_id):
            line = tracker.end_task() if name == 'end' else tracker.feed(event)
            if line:
                typer.echo(line)
        return
    columns = (SpinnerColumn(), TextColumn('{task.description}', markup=False), BarColumn(), MofNCompleteColumn(),
               TextColumn('hosts'), TextColumn('{task.fields[failures]}', style='red', markup=False))
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task('waiting for job %s to start' % job_id, total=None, failures='')
        for name, event in client.follow(job_id):
            line = tracker.end_task() if name == 'end' else tracker.feed(event)
            if line:
                progress.console.print(Text(line))
            progress.update(bar, description=tracker.task or 'between tasks', completed=len(tracker.done),
                            total=len(tracker.hosts) or None, failures=tracker.failures)


def wait_for_end(client, job: dict, as_json: bool) -> int:
    """Follow a job to its end, then print its per-host results and how it ended: 0 if successful, else 1."""
    try:
        if as_json:
            for _ in client.follow(job['id']):
                pass
        else:
            typer.echo('job %s %s: %s on %s' % (job['id'], job['status'], job['playbook'],
                                                job['inventory'] or 'tags %s' % job['tags']))
            follow_progress(client, job['id'])
    except KeyboardInterrupt:
        fail('stopped waiting; job %s goes on (dbfleet jobs logs -f %s)' % (job['id'], job['id']), 130)
    final = client.get(job['id'])
    if as_json:
        print_json(final)
    else:
        host_table(final)
        timeline(client, final)
        typer.echo(ended_line(final['id'], final['status'], final['status_reason']))
    return 0 if final['status'] == 'successful' else 1


def show_launched(client, job: dict, wait: bool, as_json: bool) -> None:
    if job.get('waiting_for_worker') and not as_json:
        typer.echo('warning: no worker listens to queue %s: job %s waits until one does (dbfleet worker --queue %s)'
                   % (job['queue'], job['id'], job['queue']), err=True)
    if job['status'] == 'awaiting_approval' and not as_json:
        typer.echo('job %s awaits approval by a second admin until %s: dbfleet jobs approve|reject %s'
                   % (job['id'], (job.get('approval') or {}).get('expires_at'), job['id']), err=wait)
    if wait:
        raise typer.Exit(wait_for_end(client, job, as_json))
    if as_json:
        print_json(job)
    else:
        typer.echo('%s %s' % (job['id'], job['status']))
