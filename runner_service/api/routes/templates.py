"""/api/v1/templates: admins create, edit and delete job templates; viewers read them; operators
launch them (a token limited to templates launches only those)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response

from runner_service.api.deps import Admin, Jobs, Operator, RuntimeDep, Templates, Viewer
from runner_service.api.errors import error_responses
from runner_service.api.routes.jobs import job_view
from runner_service.fleet.builtin_templates import seed_if_builtin
from runner_service.jobs.service import check_caller_key
from runner_service.schemas import JobOut, TemplateCreate, TemplateLaunch, TemplateOut, TemplateUpdate
from runner_service.templates.service import DEFAULTS

router = APIRouter(prefix='/api/v1/templates', tags=['templates'])
ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422)
Name = Annotated[str, Path(min_length=1, max_length=255, description='a template name')]


def template_view(template: dict) -> TemplateOut:
    base = '/api/v1/templates/%s' % template['name']
    return TemplateOut(**{**DEFAULTS, **template['definition']}, name=template['name'],
                       created_at=template['created_at'], created_by=template['created_by'],
                       updated_at=template['updated_at'], updated_by=template['updated_by'],
                       links={'self': base, 'launch': base + '/launch'})


@router.post('', status_code=201, response_model=TemplateOut, responses=ERRORS)
def create(body: TemplateCreate, templates: Templates, caller: Admin) -> TemplateOut:
    return template_view(templates.create(body, caller['name']))


@router.get('', response_model=list[TemplateOut], responses=ERRORS)
def list_templates(templates: Templates, caller: Viewer) -> list[TemplateOut]:
    return [template_view(template) for template in templates.list()]


@router.get('/{name}', response_model=TemplateOut, responses=ERRORS)
def show(name: Name, templates: Templates, caller: Viewer) -> TemplateOut:
    return template_view(templates.get(name))


@router.patch('/{name}', response_model=TemplateOut, responses=ERRORS)
def update(name: Name, body: TemplateUpdate, templates: Templates, runtime: RuntimeDep,
           caller: Admin) -> TemplateOut:
    """Only the fields given change; null clears a default; inventory replaces tags and back. dbfleet's own
    templates (`restore`, `drill`) are seeded first when they were never used."""
    seed_if_builtin(runtime, name, caller['name'])
    return template_view(templates.update(name, body, caller['name']))


@router.delete('/{name}', response_model=TemplateOut, responses=ERRORS)
def delete(name: Name, templates: Templates, caller: Admin) -> TemplateOut:
    """The jobs it launched stay, with its name."""
    return template_view(templates.delete(name, caller['name']))


@router.post('/{name}/launch', status_code=201, response_model=JobOut, responses={**ERRORS, 200: {
             'model': JobOut, 'description': 'the job an earlier launch with the same idempotency key created'}})
def launch(name: Name, templates: Templates, jobs: Jobs, caller: Operator, response: Response,
           body: TemplateLaunch | None = None,
           idempotency_key: Annotated[str | None, Header(max_length=255)] = None) -> JobOut:
    """Queue a run of the template with values for its survey (nothing else) and, where it allows,
    a limit within its hosts; answers like POST /api/v1/jobs."""
    body = body or TemplateLaunch()
    if idempotency_key and not body.idempotency_key:
        body = body.model_copy(update={'idempotency_key': idempotency_key})
    check_caller_key(body.idempotency_key)
    job, created = templates.launch(name, body, caller)
    response.status_code = 201 if created else 200
    response.headers['Location'] = '/api/v1/jobs/%s' % job['id']
    return job_view(job, jobs.listening())
