"""What routes get injected: the process Runtime, every service a route calls, and the caller's token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

from runner_service import tokens
from runner_service.bridge.platform import CronBridge
from runner_service.credentials.service import CredentialService
from runner_service.fleet.backups import BackupCatalog
from runner_service.fleet.drills import DrillService
from runner_service.fleet.hosts import HostService
from runner_service.fleet.restores import RestoreService
from runner_service.fleet.rules import RuleService
from runner_service.fleet.tags import TagService
from runner_service.jobs.service import JobService
from runner_service.metrics.collector import fleet_registry
from runner_service.notify.service import NotifierService
from runner_service.runtime import Runtime
from runner_service.schedules.service import ScheduleService
from runner_service.schedules.windows import WindowService
from runner_service.templates.service import TemplateService

bearer = HTTPBearer(auto_error=False, description='a token from `dbfleet tokens create NAME --role ROLE`')


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_jobs(runtime: Annotated[Runtime, Depends(get_runtime)]) -> JobService:
    return JobService(runtime)


def get_credentials(runtime: Annotated[Runtime, Depends(get_runtime)]) -> CredentialService:
    return CredentialService(runtime)


def get_templates(runtime: Annotated[Runtime, Depends(get_runtime)]) -> TemplateService:
    return TemplateService(runtime)


def get_notifiers(runtime: Annotated[Runtime, Depends(get_runtime)]) -> NotifierService:
    return NotifierService(runtime)


def get_bridge(runtime: Annotated[Runtime, Depends(get_runtime)]) -> CronBridge:
    return CronBridge(runtime)


def get_schedules(bridge: Annotated[CronBridge, Depends(get_bridge)]) -> ScheduleService:
    # The bridge's own schedule service: an edit of a crontab entry's schedule becomes its crontab line.
    return bridge.schedules


def get_windows(runtime: Annotated[Runtime, Depends(get_runtime)]) -> WindowService:
    return WindowService(runtime)


def get_hosts(runtime: Annotated[Runtime, Depends(get_runtime)]) -> HostService:
    return HostService(runtime.store)


def get_tags(runtime: Annotated[Runtime, Depends(get_runtime)]) -> TagService:
    return TagService(runtime.store)


def get_rules(runtime: Annotated[Runtime, Depends(get_runtime)]) -> RuleService:
    return RuleService(runtime.store, str(runtime.settings.tag_rules))


def get_backups(runtime: Annotated[Runtime, Depends(get_runtime)]) -> BackupCatalog:
    return BackupCatalog(runtime.store)


def get_restores(runtime: Annotated[Runtime, Depends(get_runtime)]) -> RestoreService:
    return RestoreService(runtime)


def get_drills(runtime: Annotated[Runtime, Depends(get_runtime)]) -> DrillService:
    return DrillService(runtime)


async def authenticated(runtime: Annotated[Runtime, Depends(get_runtime)],
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> dict:
    """The caller's live token record; 401 without one, or for an unknown, revoked or expired one."""
    if credentials is None:
        raise HTTPException(401, 'no bearer token: send "Authorization: Bearer <token>" (create one with '
                                 '`dbfleet tokens create NAME --role viewer|operator|admin`)',
                            headers={'WWW-Authenticate': 'Bearer'})
    try:
        return await run_in_threadpool(tokens.verify, runtime.store, credentials.credentials)
    except tokens.Refused as refused:
        raise HTTPException(401, refused.detail, headers={'WWW-Authenticate': 'Bearer error="invalid_token"'}) \
            from None


def require(role: str, agent: bool = False):
    """A dependency: the caller's token record, if its role allows `role` (or, with `agent`, it
    is an agent token: the route then keeps it to its own host); else 401 or 403."""
    async def caller(token: Annotated[dict, Depends(authenticated)]) -> dict:
        if tokens.allows(token['role'], role) or (agent and token['role'] == tokens.AGENT):
            return token
        if token['role'] == tokens.AGENT:
            raise HTTPException(403, 'token %r is the agent token of host %s: it may only report that host\'s cron '
                                     'runs and read its crontab entries' % (token['name'], token['host']))
        raise HTTPException(403, 'token %r has role %s; this needs %s or above' % (token['name'], token['role'],
                                                                                 role))
    return caller


def own_host(caller: dict, host: str | None) -> None:
    """403 unless `caller` may act for `host`: any token but an agent's, which only for its own."""
    if caller['role'] == tokens.AGENT and host != caller['host']:
        raise HTTPException(403, 'token %r is the agent token of host %s, not of %s'
                            % (caller['name'], caller['host'], 'every host' if host is None else
                               repr(host[:100])))


def is_admin(caller: dict) -> bool:
    return tokens.allows(caller['role'], 'admin')


def need_admin(caller: dict, what: str) -> None:
    """403 unless `caller` is an admin: for a route an operator may call, but not for `what`."""
    if not is_admin(caller):
        raise HTTPException(403, 'token %r has role %s; %s needs admin' % (caller['name'], caller['role'], what))


Viewer = Annotated[dict, Depends(require('viewer'))]
Operator = Annotated[dict, Depends(require('operator'))]
Admin = Annotated[dict, Depends(require('admin'))]
ViewerOrAgent = Annotated[dict, Depends(require('viewer', agent=True))]
AdminOrAgent = Annotated[dict, Depends(require('admin', agent=True))]
Jobs = Annotated[JobService, Depends(get_jobs)]
Templates = Annotated[TemplateService, Depends(get_templates)]
CredentialsDep = Annotated[CredentialService, Depends(get_credentials)]
Schedules = Annotated[ScheduleService, Depends(get_schedules)]
Bridge = Annotated[CronBridge, Depends(get_bridge)]
Windows = Annotated[WindowService, Depends(get_windows)]
HostsDep = Annotated[HostService, Depends(get_hosts)]
TagsDep = Annotated[TagService, Depends(get_tags)]
RulesDep = Annotated[RuleService, Depends(get_rules)]
BackupsDep = Annotated[BackupCatalog, Depends(get_backups)]
Restores = Annotated[RestoreService, Depends(get_restores)]
Drills = Annotated[DrillService, Depends(get_drills)]
Notifiers = Annotated[NotifierService, Depends(get_notifiers)]
# The caller's bearer token as sent (after a role dependency has checked it).
Credentials = Annotated[HTTPAuthorizationCredentials, Depends(bearer)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_metrics_registry(runtime: Annotated[Runtime, Depends(get_runtime)]) -> CollectorRegistry:
    return fleet_registry(runtime)


async def metrics_reader(runtime: Annotated[Runtime, Depends(get_runtime)],
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> dict | None:
    """Who may scrape /metrics: a token of role viewer or above (401 / 403 as any route), or
    anyone when DBFLEET_METRICS_AUTH is off."""
    if not runtime.settings.metrics_auth:
        return None
    return await require('viewer')(await authenticated(runtime, credentials))


MetricsRegistry = Annotated[CollectorRegistry, Depends(get_metrics_registry)]
MetricsReader = Annotated[dict | None, Depends(metrics_reader)]
