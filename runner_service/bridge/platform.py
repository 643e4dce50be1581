"""The crontab bridge, platform side: crontab entries as schedules, their modes, the runs their
wrapper reports, and which slot a run belongs to.

An imported entry is a schedule whose `source` says where it came from:

    {'origin': 'crontab', 'host': 'db1', 'file': {'kind': 'user', 'name': 'root', 'system': False},
     'line': 12, 'original': '<the line, exactly>', 'mode': 'observe', 'command': ..., 'stdin': ...,
     'user': None, 'env': {...}, 'imported_at': ...}

and whose job runs the command on its host (playbooks/run_command.yml). Modes:
- observe: crontab fires the command through `dbfleet cron exec`; the scheduler only checks,
  at each slot plus the grace, that a run was reported, and records the slot missed if not;
- takeover: the scheduler fires it as a job; the crontab line is commented out on the host;
- reverted: the line is back as it was; the schedule is paused and crontab owns the entry.
The platform stores the state; each host's agent (runner_service.bridge.agent: `dbfleet cron
sync`, the watchdog) makes its crontab files match it, so an edit made here reaches the host
the next time the agent runs, and nothing here needs to reach into a host.

Exactly once between crontab and the platform: a crontab run and the scheduler both claim a
slot through the slot's record (its primary key) before running it, the record saying who
(`claimed_by`: 'crontab' or 'platform'); whoever comes second stands down.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Callable

from pydantic import ValidationError

from dbfleet.clock import utcnow
from dbfleet.store import UnknownSchedule
from runner_service.bridge.crontab import as_cron_runs_it, edit, parse
from runner_service.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from runner_service.runtime import Runtime
from runner_service.schedules.provenance import CRONTAB_ORIGIN, crontab_mode, is_bridged
from runner_service.schedules.service import ScheduleService
from runner_service.schedules.triggers import TriggerError, parse_trigger, trigger_of
from runner_service.schemas import CronImport, CronReport, JobTemplate, ScheduleCreate
from runner_service.secret_box import looks_secret

MODES = ('observe', 'takeover', 'reverted')
COMMAND_PLAYBOOK = 'dbfleet.mysql.run_command'
# A crontab run starts within a few seconds of its minute; a report this much earlier than a
# slot still belongs to it (clocks of host and platform disagree a little).
CLOCK_SKEW = dt.timedelta(seconds=5)
OUTPUT_TAIL = 8192


# Passwords written into crontab lines, as DBAs write them: `mysqldump -uroot -pS3cret`,
# `--password=S3cret`, MYSQL_PWD=S3cret (a prefix or an environment line), a URL's user:pass@.
_MYSQL_TOOL = r'(?:mysql\w*|mariadb[\w-]*|mariabackup|xtrabackup|innobackupex|mydumper|myloader|pt-[\w-]+)'
PASSWORD_PATTERNS = (
    (re.compile(r'(?:^|[\s;&|(/])%s\b[^;&|\n]*?\s-p(?!\s|$)\S' % _MYSQL_TOOL), '-p<password> given to a MySQL tool'),
    (re.compile(r'--password[= ](?!\s|$)\S', re.IGNORECASE), '--password=<password>'),
    (re.compile(r'\b(?:MYSQL_PWD|PGPASSWORD|[A-Z_]*PASSWORD)=\S'), 'a ...PASSWORD=<password> variable'),
    (re.compile(r'://[^/\s:@]+:[^/\s@]+@'), 'a URL with user:password@'),
)


def password_in(command: str, env: dict[str, str]) -> str | None:
    """Why the entry looks like it holds a password, or None."""
    for pattern, what in PASSWORD_PATTERNS:
        if pattern.search(command):
            return 'its command holds a password (%s)' % what
    for name, value in env.items():
        if value and (name in ('MYSQL_PWD', 'PGPASSWORD') or looks_secret(name)):
            return 'the crontab sets %s for it' % name
    return None


def schedule_name(host: str, file: dict, line: int) -> str:
    where = {'user': 'user-%s' % file['name'], 'system': 'etc-crontab'}.get(
        file['kind'], re.sub(r'[^A-Za-z0-9_.-]+', '-', file['name'].rsplit('/', 1)[-1]) or 'file')
    return re.sub(r'[^A-Za-z0-9_.:@-]+', '-', 'cron@%s:%s:%d' % (host, where, line))


def _without_line_end(command: str, stdin: str | None, crlf: bool) -> tuple[str, str | None]:
    """The command and stdin to write in a line; a CRLF line's ending gives cron the last \\r back,
    so there the command (or stdin) must end with it. ValueError when it does not."""
    if not crlf:
        return command, stdin
    if stdin is None and command.endswith('\r'):
        return command[:-1], stdin
    if stdin is not None and stdin.endswith('\r\n'):
        return command, stdin[:-2] + '\n'
    raise ValueError('the line ends in CRLF, so cron runs its command with a \\r at the end (after a %, at the '
                     'end of stdin): keep it there, or give the host a crontab with LF line endings')


class CronBridge:
    def __init__(self, runtime: Runtime, clock: Callable[[], dt.datetime] = utcnow):
        self.runtime = runtime
        self.store = runtime.store
        self.clock = clock  # tests pass their own time
        # Edits of a bridged schedule through this service become its crontab line.
        self.schedules = ScheduleService(runtime, clock, crontab=self)

    # -- import ----------------------------------------------------------------------------

    def import_file(self, request: CronImport, actor: str) -> dict:
        """Each entry of the crontab text becomes a schedule in mode observe (an entry imported
        before, same host, file and line text, is found again, not duplicated). @reboot entries
        are recorded in the answer and the audit log, not scheduled; lines that do not parse
        are reported with their number and left alone."""
        file = request.file.model_dump()
        crontab = parse(request.text, source='%s:%s' % (request.host, file['name']), system=file['system'])
        known = {(schedule['source']['file']['kind'], schedule['source']['file']['name'],
                  schedule['source']['original']): schedule
                 for schedule in self.bridged(host=request.host)}
        entries, reboot, unscheduled = [], [], []
        for entry in crontab.entries:
            if entry.reboot:
                reboot.append({'line': entry.number, 'text': entry.text})
                continue
            if entry.expression is None or not entry.exact:
                # Never fires (5-1 selects nothing), or cron's day rule for these fields has no
                # cron expression that means the same: watching it would flag false misses.
                unscheduled.append({'line': entry.number, 'text': entry.text,
                                    'reason': 'not imported: %s' % (entry.note or 'it never fires')})
                continue
            secret = password_in(entry.observed_command or entry.command, entry.env)
            if secret is not None:
                # The store never holds a password: the entry stays crontab's until it is gone.
                unscheduled.append({'line': entry.number, 'text': '(not shown: it holds a password)',
                                    'reason': 'not imported: %s; move the password to ~/.my.cnf (or a login path) '
                                              'and import again' % secret})
                continue
            original = edit.unwrapped_line(entry) if entry.observed else entry.text
            existing = known.get((file['kind'], file['name'], original))
            if existing is None and entry.observed:
                existing = self._find(entry.observed)
            if existing is not None:
                entries.append({'line': entry.number, 'schedule': existing, 'created': False})
                continue
            schedule = self._create(request, file, entry, original, actor)
            entries.append({'line': entry.number, 'schedule': schedule, 'created': True})
        self.store.audit.record(actor, 'cron.import', request.host, {
            'file': file['name'], 'created': [item['schedule']['name'] for item in entries if item['created']],
            'found': len([item for item in entries if not item['created']]), 'left_alone': len(unscheduled)})
        if reboot:
            self.store.audit.record(actor, 'cron.import.reboot', request.host, {'file': file, 'lines': reboot})
        errors = [{'line': error.number, 'text': error.text, 'reason': error.reason} for error in crontab.errors]
        warnings = [{'line': warning.number, 'text': warning.text, 'reason': warning.reason}
                    for warning in crontab.warnings] + unscheduled
        if crontab.ignored:
            warnings.insert(0, {'line': 0, 'text': '', 'reason': 'cron ignores this whole file: %s'
                                % crontab.ignored})
        return {'host': request.host, 'file': file, 'entries': entries, 'reboot': reboot, 'errors': errors,
                'warnings': warnings}

    def _create(self, request: CronImport, file: dict, entry, original: str, actor: str) -> dict:
        # CRON_TZ: cronie reads the times in it; Debian's cron ignores it (the importer says which).
        timezone = entry.timezone if entry.timezone and request.cron_tz else request.timezone
        try:
            parse_trigger('cron', entry.expression, timezone)
        except TriggerError as exc:
            raise BadRequest('line %d (%s): %s' % (entry.number, entry.text, exc)) from None
        # What cron runs: a CRLF line's \r is the command's last character (or stdin's), and a
        # taken-over entry must run the same way it ran under cron.
        command_text, stdin = as_cron_runs_it(entry)
        command = {'command': command_text, 'stdin': stdin, 'user': entry.user,
                   'shell': entry.env.get('SHELL', '/bin/sh'),
                   'env': {name: value for name, value in entry.env.items() if name not in ('CRON_TZ', 'MAILTO')}}
        try:
            job = JobTemplate(playbook=COMMAND_PLAYBOOK, inventory=request.inventory,
                              limit=request.inventory_host or request.host, extra_vars={'dbfleet_command': command})
        except ValidationError as exc:  # e.g. an environment name that is one of Ansible's markers
            raise Unprocessable('line %d: %s' % (entry.number, '; '.join(error['msg'] for error in exc.errors()[:3]))) from None
        create = ScheduleCreate(name=schedule_name(request.host, file, entry.number), kind='cron',
                                expression=entry.expression, timezone=timezone, overlap='allow',
                                misfire_grace_seconds=request.grace_seconds, catch_up='skip', job=job)
        schedule = self.schedules.create(create, actor)
        source = {'origin': CRONTAB_ORIGIN, 'host': request.host, 'file': file, 'line': entry.number, 'original': original,
                  'mode': 'observe', 'timing': entry.timing, 'command': command_text, 'stdin': stdin,
                  'crlf': entry.crlf, 'user': entry.user, 'env': entry.env, 'imported_at': utcnow().isoformat(),
                  'imported_by': actor}
        return self.store.schedules.update(schedule['id'], source=source)

    # -- reading ---------------------------------------------------------------------------

    def bridged(self, host: str | None = None) -> list[dict]:
        return [schedule for schedule in self.store.schedules.list(source_host=host) if is_bridged(schedule)]

    def get(self, ref: str) -> dict:
        schedule = self._find(ref)
        if schedule is None:
            raise NotFound('no crontab entry %r: `dbfleet cron list` shows them' % ref)
        return schedule

    def _find(self, ref: str) -> dict | None:
        try:
            schedule = self.store.schedules.get(ref)
        except UnknownSchedule:
            return None
        return schedule if is_bridged(schedule) else None

    def history(self, ref: str, limit: int = 50) -> list[dict]:
        """Each recent slot with what happened: ok, failed, running, missed (no report by the
        slot plus the grace), or the platform's job; newest first."""
        schedule = self.get(ref)
        runs = {run['slot_at']: run for run in self.store.cron.list_runs(schedule['id'], limit=limit * 2)
                if run['slot_at'] is not None and run['status'] != 'skipped'}
        history = []
        for slot in self.store.schedules.slots(schedule['id'], limit):
            run = runs.get(slot['slot_at'])
            if run is not None:
                state = run['status']
            elif slot['outcome'] == 'missed':
                state = 'missed'
            elif slot['job_id']:
                state = 'job'
            else:
                state = slot['outcome']
            history.append({'slot_at': slot['slot_at'], 'state': state, 'claimed_by': slot['claimed_by'],
                            'reason': slot['reason'],
                            'job_id': slot['job_id'], 'run': run})
        return history

    # -- modes and edits -------------------------------------------------------------------

    def set_mode(self, ref: str, mode: str, actor: str) -> dict:
        schedule = self.get(ref)
        if mode not in MODES:
            raise BadRequest('mode must be observe, takeover or reverted, not %r' % mode)
        source = dict(schedule['source'], mode=mode)
        fields: dict = {'source': source}
        if mode == 'reverted':
            fields['paused'] = True
        else:
            if mode == 'observe' and not self._cron_expressible(schedule):
                raise Conflict('%s: %s %r cannot be written in a crontab line; change the schedule back to a '
                               '5-field cron expression first' % (schedule['name'], schedule['kind'],
                                                                  schedule['expression']))
            fields['paused'] = False
            fields['next_fire_at'] = trigger_of(schedule).next_after(self.clock())
        updated = self.store.schedules.update(schedule['id'], **fields)
        self.store.audit.record(actor, 'cron.%s' % mode, updated['name'], {'host': source['host'],
                                                                    'file': source['file']['name']})
        return updated

    @staticmethod
    def source_after_update(current: dict, fields: dict) -> dict | None:
        """CrontabLines for ScheduleService.update, before it writes: a bridged schedule's new timing or command
        becomes its crontab line (the host's agent writes it), as cron will read it back; the new
        source, or None when the crontab line stays. Conflict when crontab could not follow."""
        if not is_bridged(current):
            return None
        source = current['source']
        if source['mode'] == 'reverted' and set(fields) & {'kind', 'expression', 'timezone', 'job'}:
            raise Conflict('%s was reverted: crontab owns it now; observe it again (`dbfleet cron observe`) '
                           'before changing it here' % current['name'])
        after = dict(current, **fields)
        command = (after['job'].get('extra_vars') or {}).get('dbfleet_command') or {}
        timing_changed = (current['kind'], current['expression']) != (after['kind'], after['expression'])
        if not timing_changed and command.get('command', source['command']) == source['command'] and \
                command.get('stdin', source['stdin']) == source['stdin']:
            return None
        if not CronBridge._cron_expressible(after):
            if source['mode'] != 'takeover':
                raise Conflict('%s is in mode %s: crontab cannot express %s %r (seconds, intervals and one-shots '
                               'need the platform); take it over first' % (after['name'], source['mode'],
                                                                          after['kind'], after['expression']))
            return None
        timing = after['expression'] if timing_changed else source['timing']
        command_text = command.get('command', source['command'])
        stdin = command.get('stdin', source['stdin'])
        try:
            written_command, written_stdin = _without_line_end(command_text, stdin, source.get('crlf'))
            line = edit.entry_line(timing, written_command, written_stdin, source['user'])
        except ValueError as exc:
            raise BadRequest('%s: its crontab line cannot hold this: %s' % (current['name'], str(exc)[:200])) from None
        return dict(source, original=line, timing=timing, command=command_text, stdin=stdin,
                    edited_at=utcnow().isoformat())

    @staticmethod
    def _cron_expressible(schedule: dict) -> bool:
        if schedule['kind'] != 'cron':
            return False
        expression = schedule['expression'].strip()
        return expression.startswith('@') or len(expression.split()) == 5

    # -- runs reported by the wrapper --------------------------------------------------------

    def report(self, report: CronReport, actor: str, host: str | None = None) -> tuple[dict, str]:
        """Record a start or end report; (the run, 'run' | 'skip'). A start report of an entry the
        platform has taken over (crontab fired it because its watchdog put the line back while
        the platform was away) claims the slot: 'skip' when the scheduler claimed it first.
        With `host` (an agent's), only an entry of that host may be reported (else Forbidden)."""
        schedule = self._find(report.schedule_id)
        if schedule is None:
            raise NotFound('no crontab entry %r (deleted on the platform?)' % report.schedule_id)
        if host is not None and schedule['source']['host'] != host:
            raise Forbidden('crontab entry %s belongs to host %s, not to %s: each host reports its own entries'
                            % (schedule['name'], schedule['source']['host'], host))
        slot = self.slot_of(schedule, report.started_at)
        tail = report.output_tail[-OUTPUT_TAIL:] if report.output_tail else None
        existing = self.store.cron.get_run(report.id)
        action = 'run'
        status = 'running' if report.phase == 'start' else ('ok' if report.exit_code == 0 else 'failed')
        if existing is not None:
            action = 'skip' if existing['status'] == 'skipped' else 'run'
            if existing['status'] == 'skipped':
                status = 'skipped'
        elif crontab_mode(schedule) == 'takeover' and slot is not None:
            record, mine = self.store.schedules.record_slot(schedule['id'], slot, 'fired', claimed_by='crontab',
                                                            reason='crontab ran it: run %s (fallback)' % report.id)
            if not mine and record['claimed_by'] != 'crontab':
                action, status = 'skip', 'skipped'
        via = 'fallback' if report.fallback or crontab_mode(schedule) == 'takeover' else 'observe'
        run, _ = self.store.cron.save_run(
            report.id, schedule_id=schedule['id'], host=report.host, via=via, status=status, slot_at=slot,
            started_at=report.started_at, finished_at=report.finished_at if status != 'skipped' else None,
            exit_code=report.exit_code, duration_seconds=report.duration_seconds, output_tail=tail)
        return run, action

    def slot_of(self, schedule: dict, started: dt.datetime) -> dt.datetime | None:
        """The slot a run that started at `started` was fired for: the latest fire time at or
        before it (allowing for clock skew) within the schedule's grace; None for a run at no
        slot (started by hand)."""
        try:
            trigger = trigger_of(schedule)
        except TriggerError:
            return None
        grace = dt.timedelta(seconds=max(schedule['misfire_grace_seconds'], 60))
        moment = trigger.next_after(started - grace - dt.timedelta(microseconds=1))
        slot = None
        while moment is not None and moment <= started + CLOCK_SKEW:
            slot = moment
            moment = trigger.next_after(moment)
        return slot
