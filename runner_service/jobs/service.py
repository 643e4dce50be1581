"""The runner service's front door for jobs: launch, read, follow, cancel, relaunch.

The API routes are thin wrappers over `JobService`; they, the scheduler and anything else that
starts jobs go through it, so a job is checked, recorded and queued the same way whoever asks.
Errors a caller can cause are `ServiceError`s carrying the HTTP status that fits.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from pathlib import Path, PurePosixPath
from typing import Iterable

from pydantic import ValidationError

from dbfleet.clock import utcnow
from dbfleet.paths import checkout_collections
from dbfleet.store import TERMINAL_STATUSES, UnknownJob, UnknownPool, UnknownTemplate
from dbfleet.tags import TagExpression, TagExpressionError, parse_tag_expression
from runner_service.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceError, TooLarge, Unprocessable
from runner_service.extra_vars import excerpt
from runner_service.host_patterns import HostPatternError, narrow
from runner_service.jobs import lifecycle
from runner_service.runtime import Runtime
from runner_service.schemas import JobCreate, JobTemplate, approval_seconds
from runner_service.secret_box import split_extra_vars

PLAYBOOK_SUFFIXES = ('.yml', '.yaml')
INVENTORY_SUFFIXES = ('.yml', '.yaml', '.ini', '')
# Files Ansible skips in an inventory directory (INVENTORY_IGNORE_EXTS): harmless there.
ANSIBLE_IGNORED_SUFFIXES = ('.pyc', '.pyo', '.swp', '.bak', '.rpm', '.md', '.txt', '.rst', '.orig', '.cfg', '.retry')
# Ansible reads these as variables beside an inventory, not as inventories.
VARS_DIRECTORIES = ('group_vars', 'host_vars')
COLLECTION_PLAYBOOK = re.compile(r'dbfleet\.mysql\.([a-z][a-z0-9_]*)')


# The scheduler's idempotency keys (one job per slot); a caller's key may not look like one, or a
# launch could take a slot of any schedule ahead of it and keep the schedule's own job from running.
SCHEDULE_KEY_PREFIX = 'schedule:'


def schedule_key(schedule_id: str, slot: dt.datetime) -> str:
    return '%s%s:%s' % (SCHEDULE_KEY_PREFIX, schedule_id, slot.isoformat())


def check_caller_key(key: str | None) -> str | None:
    """A caller's idempotency key, refused (422) when it is in the scheduler's namespace."""
    if key is not None and key.lower().startswith(SCHEDULE_KEY_PREFIX):
        raise Unprocessable('idempotency key %r: keys starting with %r are the scheduler\'s (one job per slot); '
                            'choose another' % (excerpt(key), SCHEDULE_KEY_PREFIX))
    return key


def collection_playbook_dirs() -> list[Path]:
    """Where ansible-playbook looks for dbfleet.mysql's playbooks: the checkout (the worker puts it
    first on the collections path), then the collections paths of Ansible's configuration and,
    as Ansible does, sys.path. An installed collection is found there, wherever it was put."""
    from ansible import constants

    roots = [checkout_collections()] if checkout_collections() is not None else []
    roots += [Path(path) for path in constants.COLLECTIONS_PATHS]
    if constants.COLLECTIONS_SCAN_SYS_PATH:
        roots += [Path(path) for path in sys.path if path]
    return [root / 'ansible_collections' / 'dbfleet' / 'mysql' / 'playbooks' for root in roots]

class JobService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store
        self.settings = runtime.settings

    # -- launching -----------------------------------------------------------------------

    def launch(self, request: JobCreate, actor: str, relaunch_of: str | None = None,
               sealed_secrets: str | None = None, template: str | None = None,
               credentials: list[str] | None = None, approval_seconds: int | None = None) -> tuple[dict, bool]:
        """Check the request, record the job, queue it; returns (job, created). A known
        idempotency key returns the job it made before (created False). `template`: the job
        template the request was made from (runner_service.templates.service), recorded with the job;
        `credentials`: the names of the credentials its run gets (the template's);
        `approval_seconds`: the job waits awaiting_approval (not queued) until an admin other than
        `actor` approves it (approve), at most this long."""
        if request.idempotency_key:
            existing = self._by_key(request.idempotency_key)
            if existing is not None:
                return existing, False
        spec, tags = self.check_template(request)
        if request.deadline is not None and request.deadline <= utcnow():
            raise BadRequest('deadline %s is already past' % request.deadline.isoformat())
        public, secret = split_extra_vars(request.extra_vars)
        spec.update(extra_vars=public, deadline=request.deadline, relaunch_of=relaunch_of, template=template,
                    secret_vars=sealed_secrets or self.runtime.secrets.seal(secret), credentials=credentials or None,
                    approval_timeout_seconds=approval_seconds)
        try:
            job, created = self.store.jobs.create(
                spec, depends_on=[(dependency.job_id, dependency.on) for dependency in request.depends_on],
                idempotency_key=request.idempotency_key, created_by=actor, tags=tags)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if created:
            self.store.audit.record(actor, 'relaunch' if relaunch_of else 'launch', job['id'],
                                    {'playbook': spec['playbook'], 'inventory': spec['inventory'], 'relaunch_of': relaunch_of,
                              'template': template})
            lifecycle.enqueue(self.runtime, [job])
        return job, created

    def check_template(self, request: JobTemplate) -> tuple[dict, list[str]]:
        """The store spec of what `request` runs, checked (paths under the project, the tag
        expression, the extra vars' size), and the tags it names. Secrets not split yet."""
        playbook = self.collection_playbook(request.playbook) or self.project_path(request.playbook, 'playbook',
                                                                                   playbook=True)
        tags: list[str] = []
        if request.tags is not None:
            expression = self._tag_expression(request.tags)
            inventory, kind, tags = str(expression), 'tags', sorted(expression.names)
        else:
            inventory, kind = self.inventory_path(request.inventory), 'file'
        size = len(json.dumps(request.extra_vars, default=str))
        if size > self.settings.max_extra_vars_bytes:
            raise TooLarge('extra_vars is %d bytes as JSON, more than the %d allowed (DBFLEET_MAX_EXTRA_VARS_BYTES): '
                           'put large data in a file under the project' % (size, self.settings.max_extra_vars_bytes))
        spec = dict(
            playbook=playbook, inventory=inventory, inventory_kind=kind, limit_pattern=request.limit,
            check_mode=request.check, diff_mode=request.diff, forks=request.forks, timeout_seconds=request.timeout,
            queue=request.queue, priority=request.priority, max_retries=request.max_retries,
            retry_backoff_seconds=request.retry_backoff,
            plan=request.plan.model_dump(mode='json', exclude_none=True) if request.plan else None,
        )
        if request.plan is not None and request.plan.pool is not None:
            try:
                self.store.pools.get(request.plan.pool)
            except UnknownPool as exc:
                raise BadRequest(str(exc)) from None
        return spec, tags

    def relaunch(self, job_id: str, hosts: str, actor: str, within: str | None = None) -> dict:
        """A new job like `job_id` (same playbook, inventory, vars and secrets), on all its hosts
        or only on those that failed or were unreachable; with `within` (a host pattern: the
        template's limit as it is now), only on the hosts that pattern also takes."""
        old = self.get(job_id)
        limit = old['limit_pattern']
        if hosts == 'failed':
            failed = sorted(host for host, counts in old['host_results'].items()
                            if counts['failed'] or counts['unreachable'])
            if not failed:
                raise Conflict('job %s has no failed or unreachable host to relaunch (status %s): relaunch with '
                               'hosts=all' % (job_id, old['status']))
            limit = ','.join(failed)
        if within is not None:
            try:
                limit = narrow(within, limit)
            except HostPatternError as exc:
                raise Conflict('job %s: its template now runs on %s; launch the template again (%s)'
                               % (job_id, within[:200], exc)) from None
        try:
            request = JobCreate(
                playbook=old['playbook'], limit=limit, extra_vars=old['extra_vars'], check=old['check_mode'],
                diff=old['diff_mode'], forks=old['forks'], timeout=old['timeout_seconds'], queue=old['queue'],
                priority=old['priority'], max_retries=old['max_retries'], retry_backoff=old['retry_backoff_seconds'],
                plan=old['plan'],
                **({'tags': old['inventory']} if old['inventory_kind'] == 'tags' else {'inventory': old['inventory']}))
        except ValidationError as exc:  # accepted before today's checks (an @file limit, a marker key)
            raise Unprocessable('job %s cannot be relaunched: %s' % (
                job_id, '; '.join(error['msg'] for error in exc.errors()[:3]))) from None
        job, _ = self.launch(request, actor, relaunch_of=job_id, sealed_secrets=old['secret_vars'],
                             template=old['template'], credentials=old['credentials'],
                             approval_seconds=self._approval_again(old))
        return job

    def _approval_again(self, old: dict) -> int | None:
        """A relaunch needs approval when the job did, or its template does now."""
        seconds = old.get('approval_timeout_seconds')
        if old.get('template'):
            try:
                approval = self.store.templates.get(old['template'])['definition'].get('approval') or {}
            except UnknownTemplate:
                approval = {}
            if approval.get('required'):
                seconds = approval_seconds(approval.get('timeout', '4h'))
        return seconds

    # -- approval ------------------------------------------------------------------------

    def decide(self, job_id: str, approve: bool, caller: dict, reason: str | None = None) -> dict:
        """An admin approves or rejects a job awaiting approval (the route checks the role). The
        launcher may not decide on their own job (403: a second admin must); a job not awaiting
        approval is 409. Approved, it is queued (or waits for its dependencies); both are audited."""
        job = self.get(job_id)
        verb = 'approve' if approve else 'reject'
        if job['created_by'] == caller['name']:
            raise Forbidden('token %r launched job %s: a second admin must %s it (the launcher may cancel it)'
                            % (caller['name'], job_id, verb))
        if job['status'] != 'awaiting_approval':
            raise Conflict('job %s is %s, not awaiting approval: nothing to %s' % (job_id, job['status'], verb))
        if not approve and not reason:
            raise Unprocessable('rejecting job %s needs a reason' % job_id)
        decided = self.store.jobs.decide_approval(job_id, approve, caller['name'], reason)
        if decided is None:
            current = self.get(job_id)
            raise Conflict('job %s is %s now: another admin decided first, or it expired' % (job_id, current['status']))
        self.store.audit.record(caller['name'], 'job.%s' % verb, job_id, {
            'template': job['template'], 'launched_by': job['created_by'], 'status': decided['status'],
            'reason': (reason or '')[:500] or None})
        if decided['status'] == 'queued':
            lifecycle.enqueue(self.runtime, [decided])
        elif decided['status'] in TERMINAL_STATUSES:
            lifecycle.released(self.runtime, job_id)
        return decided

    def cancel(self, job_id: str, actor: str) -> dict:
        """A waiting or queued job is canceled at once and leaves its queue; a running one is
        told to stop (its process group is killed within a second or so)."""
        before = self.get(job_id)
        if before['status'] in TERMINAL_STATUSES and not (before['status'] == 'worker_lost'):
            raise Conflict('job %s has already ended (%s): nothing to cancel' % (job_id, before['status']))
        job = self.store.jobs.request_cancel(job_id)
        self.store.audit.record(actor, 'cancel', job_id, {'status': before['status']})
        if job['status'] == 'canceled':
            try:
                self.runtime.queue.remove(job)
            except Exception:  # the worker skips it anyway: the store says canceled
                pass
            lifecycle.released(self.runtime, job_id)
        elif job['status'] == 'running':
            try:
                self.runtime.queue.request_cancel(job_id)
            except Exception:  # the worker also reads the store's flag, every heartbeat
                pass
        return job

    # -- reading -------------------------------------------------------------------------

    def listening(self):
        """Queue -> live workers listening to it; None when Redis cannot say (reads go on without it)."""
        try:
            return self.runtime.queue.listening()
        except Exception:  # Redis down: the store still answers, the flag is unknown
            return None

    def get(self, job_id: str) -> dict:
        job = self.store.jobs.get(job_id)
        if job is None:
            raise NotFound('no job %s: list jobs with GET /api/v1/jobs' % job_id)
        return job

    def list(self, status: Iterable[str] | None = None, playbook: str | None = None, tag: str | None = None,
             created_after: dt.datetime | None = None, created_before: dt.datetime | None = None,
             limit: int = 50, cursor: str | None = None, template: str | None = None,
             created_by: str | None = None) -> dict:
        try:
            return self.store.jobs.list(status=list(status) if status else None, playbook=playbook, tag=tag,
                                        template=template, created_by=created_by,
                                        created_after=created_after, created_before=created_before, limit=limit,
                                        cursor=cursor)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def events(self, job_id: str, host: str | None = None, event: Iterable[str] | None = None,
               after: int | None = None, limit: int = 100) -> dict:
        try:
            return self.store.events.list(job_id, host=host, event=list(event) if event else None,
                                          after_seq=after, limit=limit)
        except UnknownJob:
            raise NotFound('no job %s' % job_id) from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def stdout(self, job_id: str) -> tuple[dict, str]:
        """(job, the play's output as ansible printed it, redacted)."""
        job = self.get(job_id)
        parts = []
        after = None
        while True:
            page = self.events(job_id, after=after, limit=1000)
            parts.extend(event['stdout'] for event in page['events'] if event['stdout'])
            if page['next_cursor'] is None:
                break
            after = page['next_cursor']
        return job, '\n'.join(parts) + ('\n' if parts else '')

    # -- checks --------------------------------------------------------------------------

    @staticmethod
    def collection_playbook(name: str) -> str | None:
        """`name` when it names a playbook of the dbfleet.mysql collection (dbfleet.mysql.run_command),
        which ansible-playbook finds through the collection path, whatever the project directory."""
        match = COLLECTION_PLAYBOOK.fullmatch(name)
        if match is None:
            return None
        if not any((directory / (match.group(1) + suffix)).is_file() for directory in collection_playbook_dirs()
                   for suffix in PLAYBOOK_SUFFIXES):
            raise BadRequest('playbook %r: the dbfleet.mysql collection has no such playbook' % excerpt(name))
        return name

    def project_root(self) -> Path | None:
        """The project directory launches are checked against; None when the project comes from
        git (DBFLEET_PROJECT_URL): this host has no copy, so a launch checks only the names, and
        the worker checks the files in the commit it fetched (runner_service.worker.run)."""
        return None if self.settings.project_url else Path(self.settings.project_dir).resolve()

    def project_path(self, name: str, what: str, playbook: bool = False, project: Path | None = None) -> str:
        """`name` as a clean relative path of a file (or, for inventories, a directory) under
        the project directory (`project`, default project_root()); anything that would leave it
        is refused."""
        project = project or self.project_root()
        relative = self._relative(name, what)
        if project is None:
            if playbook and relative.suffix not in PLAYBOOK_SUFFIXES:
                raise BadRequest('playbook %r: not a .yml or .yaml file' % excerpt(name))
            return relative.as_posix()
        resolved = self._resolve(project / relative, name, what)
        if not resolved.is_relative_to(project):
            raise BadRequest('%s %r: leads out of the project directory through a link' % (what, excerpt(name)))
        if playbook and resolved.suffix not in PLAYBOOK_SUFFIXES:
            raise BadRequest('playbook %r: not a .yml or .yaml file' % excerpt(name))
        if not (resolved.is_file() or (not playbook and resolved.is_dir())):
            raise BadRequest('%s %r: no such file under the project directory' % (what, excerpt(name)))
        return relative.as_posix()

    def inventory_path(self, name: str, project: Path | None = None) -> str:
        """`name` when it is an inventory: a file with an inventory extension (.yml, .yaml, .ini
        or none, so .fleet.yml too) under one of the inventory directories (DBFLEET_INVENTORY_DIRS,
        default inventories/), or a directory there holding only such files. Refused whatever
        else Ansible would read (and quote in its errors): var/, the secret key, the virtualenv,
        the project root, links that lead out of the inventory directory."""
        project = project or self.project_root()
        relative = self._relative(name, 'inventory', Unprocessable)
        roots = [PurePosixPath(root) for root in self.settings.inventory_dirs]
        root = next((root for root in roots if relative.parts[:len(root.parts)] == root.parts), None)
        if root is None:
            raise Unprocessable('inventory %r: inventories are under %s in the project directory'
                             % (excerpt(name), ', '.join(root.as_posix() + '/' for root in roots)))
        if project is None:
            return relative.as_posix()
        top = (project / root).resolve()
        resolved = self._resolve(project / relative, name, 'inventory', Unprocessable)
        if not resolved.exists():
            raise Unprocessable('inventory %r: no such file under the project directory' % excerpt(name))
        why = self._not_an_inventory(resolved, top, project)
        if why is None and resolved.is_dir():
            for path, target in _walk_inventory(resolved):
                why = self._not_an_inventory(target, top, project) if target else 'cannot be followed (a loop?)'
                if why is not None:
                    why = 'it holds %s, which %s' % (excerpt(path.relative_to(resolved), 80), why)
                    break
        if why is not None:
            raise Unprocessable('inventory %r: %s' % (excerpt(name), why))
        return relative.as_posix()

    def _not_an_inventory(self, path: Path, top: Path, project: Path) -> str | None:
        """Why the (resolved) `path` may not be read as an inventory, or None."""
        var_dir = Path(self.settings.var_dir).resolve()
        if not path.is_relative_to(top) or not path.is_relative_to(project):
            return 'leads out of the inventory directory through a link'
        if path == project:
            return 'is the project directory'
        # A project under the var directory (a job's git checkout, the installed default) is not it.
        if (path.is_relative_to(var_dir) and not project.is_relative_to(var_dir)) \
                or path == Path(self.settings.secret_key_file).resolve():
            return "is dbfleet's own runtime data (var/)"
        if path.is_relative_to(Path(sys.prefix).resolve()):
            return 'is in the virtualenv'
        if path.is_file() and path.suffix not in INVENTORY_SUFFIXES and path.suffix not in ANSIBLE_IGNORED_SUFFIXES:
            return 'is not an inventory file (.yml, .yaml, .ini, .fleet.yml, or no extension)'
        if not (path.is_file() or path.is_dir()):
            return 'is neither a file nor a directory'
        return None

    @staticmethod
    def _relative(name: str, what: str, error: type[ServiceError] = BadRequest) -> PurePosixPath:
        if '\x00' in name or '\\' in name:
            raise error('%s %r: bad characters in the path' % (what, excerpt(name)))
        relative = PurePosixPath(name)
        if relative.is_absolute():
            raise error('%s %r: absolute paths are refused; give a path under the project directory'
                        % (what, excerpt(name)))
        if '..' in relative.parts:
            raise error("%s %r: '..' is refused; give a path under the project directory" % (what, excerpt(name)))
        if any(len(part.encode()) > 255 for part in relative.parts):
            raise error('%s %r: a name in the path is longer than 255 bytes' % (what, excerpt(name)))
        return relative

    @staticmethod
    def _resolve(path: Path, name: str, what: str, error: type[ServiceError] = BadRequest) -> Path:
        try:
            return path.resolve()
        except (OSError, RuntimeError):  # a loop of links, a path too long for the system
            raise error('%s %r: the path cannot be followed (a loop of links?)' % (what, excerpt(name))) from None

    def hosts_matching(self, tags: str) -> list[str]:
        """The store's hosts the tag expression `tags` matches, in inventory order; BadRequest when
        it is not an expression or matches no host."""
        return self._matching(tags)[1]

    def _tag_expression(self, text: str) -> TagExpression:
        return self._matching(text)[0]

    def _matching(self, text: str) -> tuple[TagExpression, list[str]]:
        try:
            expression = parse_tag_expression(text)
        except TagExpressionError as exc:
            raise BadRequest('tags: %s' % exc) from None
        matching = [host['name'] for host in self.store.hosts.inventory(fact_paths=()) if expression.matches(host['tags'])]
        if not matching:
            raise BadRequest('tags %r matches no host in the store: see `dbfleet hosts list` and `dbfleet tags list`'
                             % excerpt(text))
        return expression, matching

    def _by_key(self, key: str) -> dict | None:
        return self.store.jobs.by_idempotency_key(key)


def _walk_inventory(directory: Path, most: int = 10000):
    """The entries Ansible reads as inventories in `directory`: (path, resolved) of each file and
    directory below it, through links as Ansible goes, except group_vars/ and host_vars/.
    resolved is None when the link cannot be followed, or past `most` directories (a loop)."""
    for count, (parent, names, files) in enumerate(os.walk(directory, followlinks=True)):
        names[:] = [name for name in names if name not in VARS_DIRECTORIES]
        for name in names + files:
            path = Path(parent) / name
            try:
                yield path, (path.resolve() if count <= most else None)
            except (OSError, RuntimeError):
                yield path, None
