"""The front door for job templates: what an operator may launch.

An admin defines a template: a playbook, an inventory (file or tag expression), defaults for
the run (limit, forks, timeout, deadline and window end relative to the launch, queue,
priority, plan) and a survey of the extra vars a launch may set (runner_service.templates.survey). An
operator launches it with values for the survey and, where the template allows it, a limit
that only narrows the template's hosts (runner_service.host_patterns). The launch becomes a
job through JobService.launch like any other, recording the template's name; password survey
values are sealed like every secret extra var.

A token may be limited to some templates (`templates` on the token): it may launch those and
nothing else, not even a bare playbook (`check_scope`).
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import ValidationError

from dbfleet.clock import utcnow
from dbfleet.store import UnknownTemplate
from dbfleet.tags import TagExpressionError, parse_tag_expression
from runner_service import tokens
from runner_service.credentials.service import CredentialService
from runner_service.errors import Conflict, Forbidden, NotFound, Unprocessable
from runner_service.host_patterns import HostPatternError, narrow, terms
from runner_service.jobs.service import JobService
from runner_service.notify.service import NotifierService
from runner_service.runtime import Runtime
from runner_service.schedules.triggers import TriggerError, zone
from runner_service.schemas import JobCreate, TemplateCreate, TemplateLaunch, TemplateUpdate, approval_seconds
from runner_service.secret_box import MASK, split_extra_vars
from runner_service.templates.survey import SurveyError, apply_survey, check_survey, password_names

# dbfleet.mysql.run_command, or the collection's playbooks/run_command.yml named by path.
COMMAND_RUNNER = re.compile(r'(^|[/.])run_command(\.ya?ml)?$')
# What a template's launches get when its definition leaves a field out (JobCreate's defaults).
DEFAULTS = dict(allow_limit=False, check=False, diff=False, queue='default', priority=0, max_retries=0,
                retry_backoff=10, survey=[])
# Plan fields a job's BatchPlan has as they are (the window end is computed at each launch).
PLAN_FIELDS = ('lanes', 'rolling', 'max_fail_percentage', 'pool')
# How a template's plan (or a schedule) says when its runs' window ends, relative to each launch.
WINDOW_FIELDS = ('window_end_after', 'window_end_at', 'window_timezone')


def check_scope(token: dict, template: str | None) -> None:
    """Forbidden (403) unless `token` may launch `template` (None: a bare playbook). A token
    limited to templates may launch only those; any other token what its role allows."""
    allowed = token.get('templates')
    if allowed is None or (template is not None and template in allowed):
        return
    if template is None:
        raise Forbidden('token %r may launch only the templates %s, not a bare playbook: POST '
                        '/api/v1/templates/{name}/launch' % (token['name'], ', '.join(allowed)))
    raise Forbidden('token %r may launch only the templates %s, not %r' % (token['name'], ', '.join(allowed),
                                                                         template[:200]))


def window_end(plan: dict, now: dt.datetime) -> dt.datetime | None:
    """A template plan's window end for a launch at `now`: seconds after it, or the next HH:MM
    (in the plan's zone) after it."""
    if plan.get('window_end_after'):
        return now + dt.timedelta(seconds=plan['window_end_after'])
    if plan.get('window_end_at'):
        tz = zone(plan.get('window_timezone') or 'UTC')
        hour, minute = (int(part) for part in plan['window_end_at'].split(':'))
        local = now.astimezone(tz)
        end = dt.datetime.combine(local.date(), dt.time(hour, minute), tzinfo=tz)
        if end <= local:
            end = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(hour, minute), tzinfo=tz)
        return end.astimezone(dt.timezone.utc)
    return None


def required_approval(definition: dict) -> int | None:
    """Seconds a job of this template waits for an admin's approval; None: it needs none."""
    approval = definition.get('approval') or {}
    return approval_seconds(approval.get('timeout', '4h')) if approval.get('required') else None


def sealed_split(survey: list[dict], values: dict) -> tuple[dict, dict]:
    """(public, secret) as split_extra_vars, with every password of the survey secret too."""
    public, secret = split_extra_vars(values)
    for password in password_names(survey) & set(values):
        public[password], secret[password] = MASK, values[password]
    return public, secret


class TemplateService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store
        self.jobs = JobService(runtime)

    # -- defining ------------------------------------------------------------------------

    def create(self, request: TemplateCreate, actor: str) -> dict:
        definition = request.model_dump(mode='json', exclude={'name'}, exclude_none=True)
        self._check(definition)
        try:
            template = self.store.templates.create(request.name, definition, created_by=actor)
        except ValueError as exc:
            raise Conflict(str(exc)) from None
        self.store.audit.record(actor, 'template.create', request.name, {'playbook': request.playbook})
        return template

    def update(self, name: str, request: TemplateUpdate, actor: str) -> dict:
        """Only the fields given change; inventory replaces tags and the other way round."""
        current = dict(self.get(name)['definition'])
        changes = request.model_dump(mode='json', exclude_unset=True)
        if not changes:
            raise Unprocessable('nothing to change: give the fields to change')
        if changes.get('inventory') is not None:
            current.pop('tags', None)
        if changes.get('tags') is not None:
            current.pop('inventory', None)
        merged = {key: value for key, value in {**current, **changes}.items() if value is not None}
        try:
            definition = TemplateCreate(name=name, **merged).model_dump(mode='json', exclude={'name'},
                                                                        exclude_none=True)
        except ValidationError as exc:
            raise Unprocessable('template %s: %s' % (name, '; '.join(
                '%s: %s' % ('.'.join(map(str, error['loc'])) or 'template', error['msg'])
                for error in exc.errors()[:5]))) from None
        self._check(definition)
        template = self.store.templates.update(name, definition, updated_by=actor)
        self.store.audit.record(actor, 'template.update', name, sorted(changes))
        return template

    def delete(self, name: str, actor: str) -> dict:
        """Conflict while a schedule launches it: change or delete those first."""
        self.get(name)
        users = [schedule['name'] for schedule in self.store.schedules.list()
                 if schedule['job'].get('template') == name]
        if users:
            raise Conflict('template %s is launched by the schedules %s%s: point them at another template or '
                           'delete them first' % (name, ', '.join(users[:5]), ' and %d more' % (len(users) - 5)
                                                  if len(users) > 5 else ''))
        try:
            template = self.store.templates.delete(name)
        except UnknownTemplate as exc:
            raise NotFound(str(exc)) from None
        self.store.audit.record(actor, 'template.delete', name, {'playbook': template['definition'].get('playbook')})
        return template

    def get(self, name: str) -> dict:
        try:
            return self.store.templates.get(name)
        except UnknownTemplate as exc:
            raise NotFound(str(exc)) from None

    def list(self) -> list[dict]:
        return self.store.templates.list()

    # -- launching -----------------------------------------------------------------------

    def launch(self, name: str, request: TemplateLaunch, token: dict) -> tuple[dict, bool]:
        """The job a launch of template `name` by `token` makes (job, created), as JobService.launch."""
        check_scope(token, name)
        definition = {**DEFAULTS, **self.get(name)['definition']}
        job_request, secret = self.job_request(name, definition, request.extra_vars, request.limit, utcnow(),
                                               idempotency_key=request.idempotency_key)
        job, created = self.jobs.launch(job_request, token['name'], template=name,
                                        sealed_secrets=self.runtime.secrets.seal(secret),
                                        credentials=definition.get('credentials'),
                                        approval_seconds=required_approval(definition))
        if created:
            self.store.audit.record(token['name'], 'template.launch', name,
                                    {'job': job['id'], 'limit': (request.limit or '')[:200] or None,
                              'extra_vars': sorted(map(str, request.extra_vars))[:50]})
        return job, created

    def job_request(self, name: str, definition: dict, extra_vars: dict, limit: str | None, now: dt.datetime,
                    idempotency_key: str | None = None) -> tuple[JobCreate, dict]:
        """(the JobCreate of a launch at `now`, with password and secret-looking values masked; those
        values, to be sealed). Unprocessable for values the survey refuses and a limit the template
        does not allow."""
        survey = definition.get('survey') or []
        try:
            values = apply_survey(survey, extra_vars)
        except SurveyError as exc:
            raise Unprocessable('template %s: %s' % (name, exc)) from None
        if limit is not None and not definition.get('allow_limit'):
            raise Unprocessable('template %s does not allow a launch to set a limit (allow_limit is false)' % name)
        try:
            limit = narrow(definition.get('limit'), limit)
        except HostPatternError as exc:
            raise Unprocessable(str(exc)) from None
        public, secret = sealed_split(survey, values)
        plan = definition.get('plan')
        if plan is not None:
            plan = {key: plan[key] for key in PLAN_FIELDS if plan.get(key) is not None}
            plan['window_end'] = window_end(definition['plan'], now)
        target = {'tags': definition['tags']} if definition.get('tags') else {'inventory': definition['inventory']}
        try:
            request = JobCreate(
                playbook=definition['playbook'], limit=limit, extra_vars=public, check=definition['check'],
                diff=definition['diff'], forks=definition.get('forks'), timeout=definition.get('timeout'),
                queue=definition['queue'], priority=definition['priority'], max_retries=definition['max_retries'],
                retry_backoff=definition['retry_backoff'], plan=plan,
                deadline=now + dt.timedelta(seconds=definition['deadline_after'])
                if definition.get('deadline_after') else None, idempotency_key=idempotency_key, **target)
        except ValidationError as exc:
            raise Unprocessable('template %s: %s' % (name, '; '.join(error['msg'] for error in exc.errors()[:3]))) \
                from None
        return request, secret

    def relaunch(self, job_id: str, hosts: str, token: dict) -> dict:
        """The new job a relaunch of `job_id` by `token` makes (hosts 'all' or 'failed'): a job
        launched from a template by an operator whose token may launch that template, within
        what the template runs now (check_relaunch); a bare playbook's only by an admin."""
        job = self.jobs.get(job_id)
        admin = tokens.allows(token['role'], 'admin')
        if not job.get('template') and not admin:
            raise Forbidden('token %r has role %s; relaunching a job that ran a bare playbook (not a template) '
                            'needs admin' % (token['name'], token['role']))
        check_scope(token, job['template'])
        within = None if admin else self.check_relaunch(job)
        return self.jobs.relaunch(job_id, hosts, token['name'], within=within)

    def check_relaunch(self, job: dict) -> str | None:
        """A job of this template relaunched by a non-admin runs only what the template as it is
        now would launch: the template still exists, runs the same playbook on the same hosts,
        and its survey takes the job's values (an admin who tightened it stops old values).
        Returns the template's limit now, which the relaunch's limit must stay within (an admin
        who narrowed it since narrows relaunches too)."""
        name = job['template']
        try:
            definition = {**DEFAULTS, **self.store.templates.get(name)['definition']}
        except UnknownTemplate:
            raise Conflict('job %s: template %s was deleted; launch another template (or an admin relaunches '
                           'it)' % (job['id'], name[:200])) from None
        hosts = definition.get('tags') or definition.get('inventory')
        if (definition['playbook'], hosts) != (job['playbook'], job['inventory']):
            raise Conflict('job %s: template %s now runs another playbook or other hosts; launch it again'
                           % (job['id'], name[:200]))
        values = dict(job['extra_vars'])
        values.update(self.runtime.secrets.open(job['secret_vars']) if job['secret_vars'] else {})
        try:
            apply_survey(definition.get('survey') or [], values)
        except SurveyError as exc:
            raise Unprocessable('job %s: template %s no longer takes its values: %s' % (job['id'], name[:200], exc)) \
                from None
        return definition.get('limit')

    # -- for schedules -------------------------------------------------------------------

    def schedule_job(self, name: str, extra_vars: dict, limit: str | None) -> tuple[dict, dict]:
        """What a schedule naming template `name` stores, checked now as a launch would be (the
        scheduler checks again at each slot): (its job {template, extra_vars (masked), limit}, the
        secret values to seal). The given values only: the template's defaults apply at each slot."""
        try:
            definition = {**DEFAULTS, **self.get(name)['definition']}
        except NotFound as exc:
            raise Unprocessable('template: %s' % exc.detail) from None
        self.job_request(name, definition, extra_vars, limit, utcnow())
        public, secret = sealed_split(definition['survey'], extra_vars)
        return {'template': name, 'extra_vars': public, 'limit': limit}, secret

    def launch_slot(self, schedule: dict, slot: dt.datetime, actor: str, closes: dt.datetime | None = None,
                    **fields) -> tuple[dict, bool]:
        """The job of a schedule's slot that names a template: its stored values (secrets unsealed)
        checked against the template as it is now; `fields` (deadline, depends_on, idempotency_key)
        set on the JobCreate; `closes`: the schedule's window end, over the template's. Times relative
        to a launch count from the slot."""
        name = schedule['job']['template']
        values = {**(schedule['job'].get('extra_vars') or {}), **self.runtime.secrets.open(schedule['secret_vars'])}
        definition = {**DEFAULTS, **self.get(name)['definition']}
        request, secret = self.job_request(name, definition, values, schedule['job'].get('limit'), slot)
        request = request.model_copy(update={key: value for key, value in fields.items()
                                              if value is not None or key != 'deadline'})
        if closes is not None and request.plan is not None:  # the schedule's own window end
            request.plan = request.plan.model_copy(update={'window_end': closes})
        return self.jobs.launch(request, actor, template=name, sealed_secrets=self.runtime.secrets.seal(secret),
                                credentials=definition.get('credentials'),
                                approval_seconds=required_approval(definition))

    # -- checks --------------------------------------------------------------------------

    def _check(self, definition: dict) -> None:
        """What a launch will find: the playbook and inventory exist under the project, the tag
        expression parses, the limit is a host pattern, the survey is consistent, the credentials
        exist (one of each kind at most)."""
        playbook = self.jobs.collection_playbook(definition['playbook']) or self.jobs.project_path(
            definition['playbook'], 'playbook', playbook=True)
        if COMMAND_RUNNER.search(playbook):
            # It runs whatever command its variables say: an admin's, as a bare job or a crontab entry.
            raise Unprocessable('playbook %s runs arbitrary commands: it is launched by admins only (a crontab '
                                'entry or POST /api/v1/jobs), never through a template' % playbook)
        if definition.get('inventory') is not None:
            self.jobs.inventory_path(definition['inventory'])
        else:
            try:
                parse_tag_expression(definition['tags'])
            except TagExpressionError as exc:
                raise Unprocessable('tags: %s' % exc) from None
            except RecursionError:
                raise Unprocessable('tags: nested too deep') from None
        try:
            if definition.get('limit') is not None:
                terms(definition['limit'], 'template limit')
            check_survey(definition.get('survey') or [])
        except (HostPatternError, SurveyError) as exc:
            raise Unprocessable(str(exc)) from None
        CredentialService(self.runtime).check_names(definition.get('credentials') or [])
        NotifierService(self.runtime).check_subscriptions(definition.get('notify') or {})
        plan = definition.get('plan') or {}
        if plan.get('window_end_at'):
            try:
                zone(plan.get('window_timezone') or 'UTC')
            except TriggerError as exc:
                raise Unprocessable('plan.window_timezone: %s' % exc) from None
