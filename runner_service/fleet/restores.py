"""Restores as jobs: `POST /api/v1/backups/restore` and `dbfleet backups restore HOST --to ...`.

The service picks the base backup from the catalog (the newest successful backup of the host started
before the target instant, or before the target GTID, or the one named), and launches
playbooks/restore.yml (dbfleet.mysql.mysql_restore) on that host as a job:

- into `scratch` (a sandbox on the host holding the backups) through the template `restore`, which any
  operator may launch: its survey takes the backup, the stop point and the schema, and nothing that
  could aim it at a server. The sandbox goes when the job ends (a job's processes never outlive it);
  the job's result has the verification, with every restored table's rows and checksum. The template is seeded here when missing (an admin may
  edit it, e.g. to point it at another inventory; deleting it seeds it again at the next restore);
- into an inventory host (a server restored over) as a bare job of the same playbook and inventory,
  which needs an admin, and `force` when the server has the databases, a binary log or replicas
  (the module refuses otherwise, saying what it would do).

With a repository (`from`), only backups with a verified copy there are candidates, and the playbook
fetches the backup and the binlogs from it (dbfleet.mysql.backup_fetch), checked against the catalog's
SHA-256: the way back when the host's own disk lost them.
"""

from __future__ import annotations

import datetime as dt
import re

from dbfleet.restorable import verified_in
from dbfleet.store import UnknownTemplate
from runner_service import tokens
from runner_service.errors import Forbidden, NotFound, Unprocessable
from runner_service.jobs.service import JobService
from runner_service.runtime import Runtime
from runner_service.schemas import JobCreate, TemplateCreate, TemplateLaunch, TemplateUpdate
from runner_service.templates.service import TemplateService

TEMPLATE = 'restore'
PLAYBOOK = 'playbooks/restore.yml'
SCRATCH = 'scratch'
# A restore over a server waits this long for a second admin's approval (then it expires).
APPROVAL_SECONDS = 4 * 3600
GTID = re.compile(r'^(\d{1,10})-(\d{1,10})-(\d{1,20})$')
# A restore from a repository's copy: added to a template seeded before restores could do that.
FROM_VARIABLES = [
    dict(name='dbfleet_restore_from', type='string', pattern=r'[A-Za-z0-9_.-]{1,64}'),
    dict(name='dbfleet_restore_sha256', type='string', pattern=r'[0-9a-f]{64}'),
    # The repositories with a verified copy, comma-separated: restore.yml fetches from the first when the
    # backup is not on the host's disk.
    dict(name='dbfleet_restore_fallback', type='string', max_length=1040,
         pattern=r'[A-Za-z0-9_.-]{1,64}(,[A-Za-z0-9_.-]{1,64}){0,15}'),
]
# The template as seeded: every host the store knows (inventories/fleet.fleet.yml); a launch names one.
TEMPLATE_DEFINITION = dict(
    description='restore a backup into a scratch sandbox, to an instant or a GTID, and verify it '
                '(dbfleet backups restore)',
    playbook=PLAYBOOK,
    inventory='inventories/fleet.fleet.yml',
    allow_limit=True,
    timeout=6 * 3600,
    survey=[
        dict(name='dbfleet_restore_backup', type='string', required=True, max_length=4096, pattern=r'/[^\x00\n]*'),
        dict(name='dbfleet_restore_stop_datetime', type='string',
             pattern=r'\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}'),
        dict(name='dbfleet_restore_stop_gtid', type='string', pattern=r'\d{1,10}-\d{1,10}-\d{1,20}'),
        dict(name='dbfleet_restore_schema', type='string', max_length=64, pattern=r'[A-Za-z0-9_$-]+'),
        dict(name='dbfleet_restore_into', type='choice', choices=[SCRATCH], default=SCRATCH),
    ] + FROM_VARIABLES,
)


def parse_gtid(text: str) -> tuple[int, int, int]:
    match = GTID.match(text or '')
    if not match:
        raise Unprocessable('to_gtid %r is not a MariaDB GTID (domain-server-sequence, e.g. 0-1-1234)' % text[:100])
    return tuple(int(part) for part in match.groups())


def sequence_in(gtid_position: str | None, domain: int) -> int | None:
    for part in (gtid_position or '').split(','):
        match = GTID.match(part.strip())
        if match and int(match.group(1)) == domain:
            return int(match.group(3))
    return None


class RestoreService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store

    def base_backup(self, host: str, to: dt.datetime | None, to_gtid: str | None, backup_id: int | None,
                    repository: str | None = None) -> dict:
        """The backup a restore of `host` starts from: the newest successful one started at or before `to`
        (within its second), or before `to_gtid`, or `backup_id` - with a verified copy in `repository` when
        given; NotFound / Unprocessable saying why none fits."""
        if backup_id is not None:
            backup = self.store.backups.get(backup_id)
            if backup is None or backup['host'] != host:
                raise NotFound('backup %d is not a backup of %s' % (backup_id, host[:200]))
            if backup['status'] != 'ok' or not backup['path']:
                raise Unprocessable('backup %d of %s failed (%s): choose a successful one (dbfleet backups list '
                                    '--host %s --status ok)' % (backup_id, host, (backup['error'] or '')[:200], host))
            if repository is not None and repository not in verified_in(backup):
                raise Unprocessable('backup %d of %s has no verified copy in repository %s (its copies: %s)' % (
                    backup_id, host, repository, ', '.join(sorted(verified_in(backup))) or 'none'))
            return backup
        domain_sequence = parse_gtid(to_gtid) if to_gtid else None
        # `to` is to the second and means its end (every transaction written in it is applied): a backup
        # started within that second restores to it (seen when a restore aimed at the second a backup ran).
        until = to + dt.timedelta(seconds=1) if to is not None else None
        cursor = None
        while True:
            page = self.store.backups.catalog(host=host, status='ok', until=until, limit=200, cursor=cursor)
            for backup in page['backups']:
                if not backup['path'] or (repository is not None and repository not in verified_in(backup)):
                    continue
                if domain_sequence is not None:
                    done = sequence_in(backup['gtid'], domain_sequence[0])
                    if done is None or done >= domain_sequence[2]:
                        continue
                return backup
            cursor = page['next_cursor']
            if cursor is None:
                break
        raise NotFound('%s has no successful backup%s %s: take one (playbooks/backup.yml) or restore to a later point'
                       % (host[:200], ' with a verified copy in repository %s' % repository if repository else '',
                          'started before %s' % to.strftime('%Y-%m-%d %H:%M:%S UTC') if to else
                          'before GTID %s' % to_gtid if to_gtid else 'in the catalog'))

    def template(self, actor: str) -> dict:
        """The template `restore`, seeded when missing; one seeded before restores from a repository gets
        their variables."""
        templates = TemplateService(self.runtime)
        try:
            template = self.store.templates.get(TEMPLATE)
        except UnknownTemplate:
            return templates.create(TemplateCreate(name=TEMPLATE, **TEMPLATE_DEFINITION), actor)
        survey = template['definition'].get('survey') or []
        names = {variable.get('name') for variable in survey}
        missing = [variable for variable in FROM_VARIABLES if variable['name'] not in names]
        if missing:
            template = templates.update(TEMPLATE, TemplateUpdate(survey=survey + missing), actor)
        return template

    def launch(self, host: str, token: dict, to: dt.datetime | None = None, to_gtid: str | None = None,
               backup_id: int | None = None, into: str = SCRATCH, schema: str | None = None,
               force: bool = False, repository: str | None = None) -> tuple[dict, dict]:
        """(job, backup) of a restore of `host`'s backup (from its copy in `repository` when given; else from
        the host's disk, or from a repository with a verified copy when the disk no longer has it)."""
        if (to is None) == (to_gtid is None):
            raise Unprocessable('give the point to restore to: to (an instant, UTC) or to_gtid, exactly one')
        if to is not None:
            to = to.astimezone(dt.timezone.utc) if to.tzinfo else to.replace(tzinfo=dt.timezone.utc)
            if to.microsecond:
                raise Unprocessable('to is to the second (binary logs are): %s' % to.isoformat())
        if into != SCRATCH and not tokens.allows(token['role'], 'admin'):
            raise Forbidden('token %r has role %s; restoring into %s (a server, not a scratch sandbox) needs admin; '
                            'operators restore into scratch' % (token['name'], token['role'], into[:200]))
        backup = self.base_backup(host, to, to_gtid, backup_id, repository)
        if backup['method'] == 'physical' and (schema or into != SCRATCH):
            raise Unprocessable('backup %d is physical: it restores whole, into scratch only (no schema, no server)'
                                % backup['id'])
        values = {'dbfleet_restore_backup': backup['path']}
        if to is not None:
            values['dbfleet_restore_stop_datetime'] = to.strftime('%Y-%m-%d %H:%M:%S')
        else:
            values['dbfleet_restore_stop_gtid'] = to_gtid
        if schema:
            values['dbfleet_restore_schema'] = schema
        verified = sorted(verified_in(backup))[:16]
        if repository is not None:
            values['dbfleet_restore_from'] = repository
        elif verified:  # used only when the host's disk no longer has the backup
            values['dbfleet_restore_fallback'] = ','.join(verified)
        if (repository is not None or verified) and backup['checksum']:
            values['dbfleet_restore_sha256'] = backup['checksum']
        template = self.template(token['name'])
        if into == SCRATCH:
            job, _created = TemplateService(self.runtime).launch(TEMPLATE, TemplateLaunch(extra_vars=values,
                                                                                          limit=host), token)
        else:
            if into == host:
                raise Unprocessable('restoring %s over itself is not what this does: restore into scratch, or into '
                                    'another host' % host[:200])
            values.update(dbfleet_restore_into=into, dbfleet_restore_force=force)
            definition = template['definition']
            target = {'tags': definition['tags']} if definition.get('tags') else {'inventory': definition['inventory']}
            request = JobCreate(playbook=PLAYBOOK, limit=host, extra_vars=values,
                                timeout=definition.get('timeout'), **target)
            # A server is restored over only once a second admin approved it (the job waits awaiting_approval).
            job, _created = JobService(self.runtime).launch(request, token['name'], approval_seconds=APPROVAL_SECONDS)
        self.store.audit.record(token['name'], 'backup.restore', host,
                                {'job': job['id'], 'backup': backup['id'], 'into': into, 'schema': schema,
                                 'to': values.get('dbfleet_restore_stop_datetime'), 'to_gtid': to_gtid,
                                 'from': repository})
        return job, backup
