"""Restore drills as jobs: `POST /api/v1/backups/drills` and `dbfleet backups drill --tags ... --lanes N`.

A drill restores each host's newest backup into a sandbox, replayed to the newest archived event of
its restorable window (or, with point `inside`, to an instant drawn inside the window from the backup
before it), verifies it and records the measured recovery time (dbfleet.mysql.restore_drill,
playbooks/drill.yml). It runs as a job of the template `drill` (seeded here when missing, like the
`restore` template: every host of the store, a limit allowed, a survey of one variable - the point -
so nothing a launch sets can aim it at a server), in lanes balanced by backup size. Any operator may launch it; a schedule naming the
template runs it every night (`dbfleet backups drill --schedule NAME --window 02:00-05:00`). The drills
recorded are listed here too, newest first.
"""

from __future__ import annotations

import datetime as dt

from pydantic import ValidationError

from dbfleet.clock import utcnow
from dbfleet.store import UnknownTemplate
from runner_service.errors import BadRequest, Unprocessable
from runner_service.jobs.service import JobService
from runner_service.runtime import Runtime
from runner_service.schedules.service import ScheduleService
from runner_service.schemas import BatchPlan, JobCreate, ScheduleCreate, TemplateCreate, TemplateUpdate
from runner_service.templates.service import DEFAULTS, TemplateService, check_scope, required_approval

TEMPLATE = 'drill'
PLAYBOOK = 'playbooks/drill.yml'
POINT_VARIABLE = dict(name='dbfleet_drill_point', type='string', default='end', max_length=19,
                      pattern=r'end|inside|\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}',
                      description='end (the newest backup to the newest archived event), inside (an instant drawn '
                                  'inside the restorable window) or an instant YYYY-MM-DD HH:MM:SS UTC')
FROM_VARIABLE = dict(name='dbfleet_drill_from', type='string', pattern=r'[A-Za-z0-9_.-]{1,64}',
                     description='drill the copies in this repository (one of dbfleet_backup_repositories) '
                                 'instead of the host\'s own backups')
# Added to a template seeded before drills had them.
SURVEY = [POINT_VARIABLE, FROM_VARIABLE]
TEMPLATE_DEFINITION = dict(
    description='restore drills: each host\'s newest backup restored into a sandbox, replayed to the newest '
                'archived event, verified; RTO and RPO recorded (dbfleet backups drill)',
    playbook=PLAYBOOK,
    inventory='inventories/fleet.fleet.yml',
    allow_limit=True,
    timeout=12 * 3600,
    plan={'lanes': 1},
    survey=SURVEY,
)


def _values(point: str | None, repository: str | None) -> dict:
    """The survey values of a drill: its point and repository when given."""
    values = {POINT_VARIABLE['name']: point, FROM_VARIABLE['name']: repository}
    return {name: value for name, value in values.items() if value is not None}


class DrillService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store

    def template(self, actor: str) -> dict:
        """The template `drill`, seeded when missing; one seeded before drills had a point or a repository gets
        those variables."""
        templates = TemplateService(self.runtime)
        try:
            template = self.store.templates.get(TEMPLATE)
        except UnknownTemplate:
            return templates.create(TemplateCreate(name=TEMPLATE, **TEMPLATE_DEFINITION), actor)
        survey = template['definition'].get('survey') or []
        names = {variable.get('name') for variable in survey}
        missing = [variable for variable in SURVEY if variable['name'] not in names]
        if missing:
            template = templates.update(TEMPLATE, TemplateUpdate(survey=survey + missing), actor)
        return template

    def launch(self, token: dict, tags: str | None = None, limit: str | None = None, lanes: int | None = None,
               window_end: dt.datetime | None = None, idempotency_key: str | None = None,
               point: str | None = None, repository: str | None = None) -> tuple[dict, bool]:
        """(job, created): a job of the `drill` template over the hosts matching `tags` (else the template's),
        narrowed by `limit`, in `lanes` (else the template's), starting no host after `window_end`, each
        drilled to `point` (else the template's default, the window's end), from its copy in `repository`
        when given."""
        now = utcnow()
        if window_end is not None and window_end <= now:
            raise BadRequest('window_end %s is already past' % window_end.isoformat())
        templates = TemplateService(self.runtime)
        self.template(token['name'])
        check_scope(token, TEMPLATE)
        definition = {**DEFAULTS, **templates.get(TEMPLATE)['definition']}
        values = _values(point, repository)
        request, secret = templates.job_request(TEMPLATE, definition, values, limit, now,
                                                idempotency_key=idempotency_key)
        plan = request.plan.model_dump() if request.plan is not None else {}
        if lanes is not None:
            plan.update(lanes=lanes, rolling=None, max_fail_percentage=None)
        if window_end is not None:
            plan['window_end'] = window_end
        fields = request.model_dump(exclude={'plan'})
        if tags is not None:
            fields.update(tags=tags, inventory=None)
        try:
            request = JobCreate(**fields, plan=BatchPlan(**plan) if plan else None)
        except ValidationError as exc:
            raise Unprocessable('drill: %s' % '; '.join(error['msg'] for error in exc.errors()[:3])) from None
        job, created = JobService(self.runtime).launch(request, token['name'], template=TEMPLATE,
                                                       sealed_secrets=self.runtime.secrets.seal(secret),
                                                       credentials=definition.get('credentials'),
                                                       approval_seconds=required_approval(definition))
        if created:
            self.store.audit.record(token['name'], 'backup.drill', TEMPLATE,
                                    {'job': job['id'], 'tags': (tags or '')[:200] or None,
                                     'limit': (limit or '')[:200] or None, 'lanes': plan.get('lanes'),
                                     'point': point, 'from': repository})
        return job, created

    def schedule(self, token: dict, name: str, start: str, end: str, timezone: str = 'UTC',
                 limit: str | None = None, paused: bool = False, point: str | None = None,
                 repository: str | None = None) -> dict:
        """A daily schedule of the `drill` template: a slot at `start` (HH:MM in `timezone`), no host starting
        after the next `end`; a slot is skipped while the previous drill still runs, none caught up."""
        if start == end:
            raise Unprocessable('drill schedule %s: start and end are both %s: give a window (02:00-05:00)'
                                % (name, start))
        self.template(token['name'])
        check_scope(token, TEMPLATE)
        hour, minute = (int(part) for part in start.split(':'))
        try:
            request = ScheduleCreate(name=name, kind='cron', expression='%d %d * * *' % (minute, hour),
                                     timezone=timezone, template=TEMPLATE, limit=limit, paused=paused,
                                     window_end_at=end, overlap='forbid', catch_up='skip',
                                     extra_vars=_values(point, repository) or None)
        except ValidationError as exc:
            raise Unprocessable('drill schedule: %s' % '; '.join(error['msg'] for error in exc.errors()[:3])) \
                from None
        return ScheduleService(self.runtime).create(request, token['name'])

    def list(self, host: str | None = None, status: str | None = None, limit: int = 50) -> list[dict]:
        try:
            return self.store.drills.list(host=host, status=status, limit=limit)
        except ValueError as exc:
            raise BadRequest('drills: %s' % str(exc)[:300]) from None
