"""The FastAPI application: `create_app()` wires settings, routes, error bodies and the reconciler."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from runner_service import __version__
from runner_service.api import errors
from runner_service.api.links import add_links
from runner_service.api.request_guard import RequestGuard
from runner_service.api.routes import (
    audit,
    backups,
    credentials,
    cron,
    health,
    hosts,
    jobs,
    metrics,
    notifications,
    notifiers,
    plans,
    pools,
    rules,
    schedules,
    tags,
    templates,
    tokens,
    windows,
)
from runner_service.jobs.reconciler import Reconciler
from runner_service.notify.loop import Notifier
from runner_service.portal import site as portal
from runner_service.runtime import Runtime


def create_app(runtime: Runtime | None = None, reconcile: bool = True) -> FastAPI:
    runtime = runtime or Runtime()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime.store  # open (and migrate) the store before the first request
        reconciler = Reconciler(runtime).start() if reconcile else None
        notifier = Notifier(runtime).start() if reconcile else None
        try:
            yield
        finally:
            for loop in (reconciler, notifier):
                if loop is not None:
                    loop.stop()
            runtime.close()

    app = FastAPI(title='dbfleet', version=__version__, lifespan=lifespan,
                  description='Run dbfleet playbooks as queued jobs. Authenticate with '
                              '`Authorization: Bearer <token>` (`dbfleet tokens create`).')
    app.state.runtime = runtime
    errors.install(app)
    app.add_middleware(RequestGuard, max_bytes=runtime.settings.max_request_bytes)
    for module in (audit, backups, credentials, cron, health, hosts, jobs, metrics, notifications, notifiers, plans,
                   pools, rules, schedules, tags, templates, tokens, windows):
        app.include_router(module.router)
    portal.install(app)
    _with_links(app)
    return app


def _with_links(app: FastAPI) -> None:
    """The generated OpenAPI document, with links from each created resource to its operations."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(generate())
        return app.openapi_schema

    app.openapi = openapi
