"""Templates: the job templates, and each one's launch form generated from its survey."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from runner_service.errors import ServiceError
from runner_service.portal import survey_form
from runner_service.portal.rendering import NavEntry, PortalRoute, render
from runner_service.portal.session import Caller, FormCaller, PageCaller
from runner_service.schemas import TemplateLaunch
from runner_service.templates.service import DEFAULTS, TemplateService

router = APIRouter(route_class=PortalRoute)
NAV = [NavEntry('Templates', '/templates')]
Name = Annotated[str, Path(min_length=1, max_length=255)]
LIMIT_LENGTH = 10000


def _templates(request: Request) -> TemplateService:
    return TemplateService(request.app.state.runtime)


@router.get('/templates')
def template_list(request: Request, caller: PageCaller) -> Response:
    templates = [{**DEFAULTS, **template['definition'], 'name': template['name']}
                 for template in _templates(request).list()]
    return render(request, caller, 'templates/list.html', {'templates': templates})


@router.get('/templates/{name}')
def template_page(request: Request, caller: PageCaller, name: Name) -> Response:
    return _launch_form(request, caller, name)


@router.post('/templates/{name}/launch')
async def launch(request: Request, caller: FormCaller, name: Name) -> Response:
    caller.need('operator')
    templates = _templates(request)
    definition = {**DEFAULTS, **(await run_in_threadpool(templates.get, name))['definition']}
    form = await request.form()
    values = survey_form.extra_vars(definition['survey'], form)
    limit = survey_form.form_text(form, 'limit') if definition['allow_limit'] else None
    try:
        body = TemplateLaunch(extra_vars=values, limit=limit)
        job, _ = await run_in_threadpool(templates.launch, name, body, caller.record)
    except ValidationError as invalid:
        return _launch_form(request, caller, name, values, limit, 422, '; '.join(
            error['msg'] for error in invalid.errors()[:3]))
    except ServiceError as refused:
        return _launch_form(request, caller, name, values, limit, refused.status, refused.detail)
    return RedirectResponse('/jobs/%s' % job['id'], status_code=303)


def _launch_form(request: Request, caller: Caller, name: str, given: dict | None = None, limit: str | None = None,
                 status_code: int = 200, error: str = '') -> Response:
    template = _templates(request).get(name)
    definition = {**DEFAULTS, **template['definition']}
    return render(request, caller, 'templates/launch.html', {
        'template': template, 'definition': definition, 'fields': survey_form.fields(definition['survey'], given),
        'limit': limit or '', 'limit_length': LIMIT_LENGTH, 'error': error[:2000]}, status_code=status_code)
