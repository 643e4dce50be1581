"""install(app): the portal's pages and static files on the API's application."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from runner_service.portal.pages import (
    audit,
    auth,
    backups,
    calendar,
    crontab,
    hosts,
    job_templates,
    jobs,
    notifications,
    schedules,
    workers,
)
from runner_service.portal.rendering import HERE

# Every page group, in the navigation's order.
PAGES = (jobs, job_templates, schedules, calendar, crontab, hosts, backups, workers, notifications, audit, auth)


def install(app: FastAPI) -> None:
    app.state.portal_nav = [entry for page in PAGES for entry in getattr(page, 'NAV', ())]
    for page in PAGES:
        app.include_router(page.router, include_in_schema=False)
    # For a 405's Allow (runner_service.api.errors), which otherwise reads only the OpenAPI document.
    app.state.page_routes = [(route.path, route.methods) for page in PAGES for route in page.router.routes]
    app.mount('/static', StaticFiles(directory=HERE / 'static'), name='portal-static')
