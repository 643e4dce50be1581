# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dbfleet.mysql.restore_drill: on the controller, pick the host's newest backup and a point of its
restorable window from the dbfleet store (dbfleet.restorable), run dbfleet.mysql.mysql_restore into a
sandbox where the task runs, time it, and record the drill (store.drills: RTO, RPO; the backup marked
restore-tested). With `repository`, the pick is among the backups with a verified copy there, and the
restore reads the copy playbooks/drill.yml fetched (`fetched`: dbfleet.mysql.backup_fetch's result) for
the backup and point a check-mode run picked (`backup_id`, `stop_datetime`). Unlike the recording of a backup, a drill cannot go without the store: it is where
the backup is chosen from, and where the drill's result is the point of it."""

from __future__ import annotations

import datetime
import os
import re
import time

from ansible.plugins.action import ActionBase
from ansible_collections.dbfleet.mysql.plugins.plugin_utils.base_package import needs_base

RESTORE = 'dbfleet.mysql.mysql_restore'
ARGUMENT_SPEC = dict(replay=dict(type='bool', default=True), binlog_dir=dict(type='path'),
                     checksum_tables=dict(type='bool', default=True), source=dict(type='dict', no_log=False),
                     age_identity=dict(type='str', no_log=True), point=dict(type='str', default='end'),
                     repository=dict(type='str'), backup_id=dict(type='int'), stop_datetime=dict(type='str'),
                     fetched=dict(type='dict'))
RESTORE_RESULT = ('backup', 'replayed', 'stop_point', 'verification', 'seconds', 'loaded', 'schemas', 'warnings')
JOB_ID = re.compile(r'^[0-9a-f]{32}$')
INSTANT = re.compile(r'^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$')
REPOSITORY_NAME = re.compile(r'^[A-Za-z0-9_.-]{1,64}$')


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(value):
    return value.astimezone(datetime.timezone.utc).isoformat().replace('+00:00', 'Z') if value else None


def _point(text):
    """The point option: 'end', 'inside' or an aware UTC instant; ValueError otherwise."""
    if text in ('end', 'inside'):
        return text
    if not isinstance(text, str) or not INSTANT.match(text):
        raise ValueError('point must be end, inside or an instant YYYY-MM-DD HH:MM:SS (UTC), got %r' % str(text)[:40])
    return datetime.datetime.strptime(text, '%Y-%m-%d %H:%M:%S').replace(tzinfo=datetime.timezone.utc)


def _event_time(text):
    """mysql_restore's last_event_at ('YYYY-MM-DDTHH:MM:SSZ') as an aware datetime; None if absent."""
    if not text:
        return None
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)


def _picked(backups, args):
    """(backup, stop) a check-mode run picked: `backup_id` among `backups`, `stop_datetime` (or none)."""
    found = [backup for backup in backups if backup.get('id') == args['backup_id'] and backup.get('status') == 'ok'
             and backup.get('path') and not backup.get('removed_at')]
    if not found:
        raise ValueError('backup %d is not a successful backup of this host%s' % (
            args['backup_id'], ' with a verified copy in repository %s' % args['repository']
            if args['repository'] else ''))
    stop = args['stop_datetime']
    if stop in (None, ''):
        return found[0], None
    if not isinstance(stop, str) or not INSTANT.match(stop):
        raise ValueError('stop_datetime must be an instant YYYY-MM-DD HH:MM:SS (UTC), got %r' % str(stop)[:40])
    return found[0], datetime.datetime.strptime(stop, '%Y-%m-%d %H:%M:%S').replace(tzinfo=datetime.timezone.utc)


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        host = task_vars.get('inventory_hostname')
        result['recorded'] = False
        try:
            wanted = _point(args['point'])
        except ValueError as exc:
            return dict(result, failed=True, msg='restore drill of %s: %s' % (host, exc))
        try:
            from dbfleet import restorable
            from dbfleet.store import StoreError, open_store
        except ImportError as exc:
            return dict(result, failed=True, msg='restore drill of %s: %s' % (host, needs_base('the dbfleet store', exc)))
        try:
            with open_store() as store:
                state = store.binlogs.state(host)
                backups = store.backups.list(host=host, limit=1000)
                binlogs = store.binlogs.list(host)
        except (StoreError, ValueError) as exc:
            return dict(result, failed=True, msg='restore drill of %s: the dbfleet store: %s' % (host, exc))
        repository = args['repository']
        if repository is not None:
            if not REPOSITORY_NAME.match(repository):
                return dict(result, failed=True, msg='restore drill of %s: repository must be a repository name '
                                                     '(letters, digits, _ . -), got %r' % (host, repository[:70]))
            # The repository's copies stay there whatever local retention removed.
            backups = [dict(backup, removed_at=None) for backup in backups
                       if repository in restorable.verified_in(backup)]
        try:
            window = restorable.window(host, backups, binlogs, state['gaps'] if state else [])
        except ValueError as exc:
            return dict(result, failed=True, msg='restore drill of %s: the dbfleet store: %s' % (host, exc))
        try:
            backup, stop = _picked(backups, args) if args['backup_id'] is not None else \
                restorable.drill_target(window, backups, wanted)
        except ValueError as exc:
            return dict(result, failed=True, msg='restore drill of %s: %s' % (host, exc))
        if backup is None:
            where = ' with a verified copy in repository %s' % repository if repository else ''
            return dict(result, skipped=True, msg='%s has no successful backup%s to drill (dbfleet backups check '
                                                  'reports it)' % (host, where))
        if not args['replay']:
            stop = None
        point = stop.strftime('%Y-%m-%d %H:%M:%S') if stop else None
        module_args = dict(backup=backup['path'], target='sandbox', checksum_tables=args['checksum_tables'])
        for name in ('binlog_dir', 'source', 'age_identity'):
            if args.get(name) is not None:
                module_args[name] = args[name]
        if point:
            module_args['stop_datetime'] = point
        if repository is not None and not self._task.check_mode:
            fetched = args['fetched'] or {}
            if not isinstance(fetched.get('path'), str) or not fetched['path']:
                return dict(result, failed=True, msg='restore drill of %s from repository %s: no fetched copy '
                                                     '(fetched: dbfleet.mysql.backup_fetch\'s result; playbooks/'
                                                     'drill.yml fetches it)' % (host, repository))
            module_args['backup'] = fetched['path']
            if fetched.get('binlog_dir'):
                module_args['binlog_dir'] = fetched['binlog_dir']
        copy = ', its copy in %s' % repository if repository else ''
        described = 'backup %d (%s%s)%s' % (backup['id'], backup['path'], copy, ' to %s UTC' % point if point else '')
        if self._task.check_mode:
            return dict(result, changed=False, msg='would drill %s of %s' % (described, host),
                        backup_id=backup['id'], stop_datetime=point, backup_path=backup['path'],
                        sha256=backup.get('checksum'))

        started, clock = _utcnow(), time.monotonic()
        restored = self._execute_module(module_name=RESTORE, module_args=module_args, task_vars=task_vars)
        rto = round(time.monotonic() - clock, 3)
        finished = _utcnow()
        self._remove_tmp_path(self._connection._shell.tmpdir)
        failed = bool(restored.get('failed') or restored.get('unreachable'))
        stop_point = restored.get('stop_point') or {}
        try:
            restored_to = _event_time(stop_point.get('last_event_at')) if point else None
        except (TypeError, ValueError):
            restored_to = None
        if restored_to is None and not failed:
            restored_to = restorable.consistent_point(backup)
        gtid = stop_point.get('gtid') or (restored.get('backup') or {}).get('gtid')
        # A lane another worker runs marks its processes JOB/lanes-PID.
        job_id = os.environ.get('DBFLEET_JOB_ID', '').split('/')[0]
        # A drill to the window's end measures the data a restore now would lose (RPO); one to an instant
        # inside the window proves the older backups and the longer replays, and its data age is no RPO.
        at_end = args['point'] == 'end'
        detail = dict(seconds=restored.get('seconds'), stop_datetime=point, point=args['point'],
                      compared=(restored.get('verification') or {}).get('compared'))
        if repository is not None:
            detail['repository'] = repository
        result['restore'] = {key: restored[key] for key in RESTORE_RESULT if key in restored}
        error = str(restored.get('msg') or 'the restore failed')[-4000:] if failed else None
        try:
            with open_store() as store:
                drill = store.drills.record(host, 'failed' if failed else 'ok', started, finished,
                                            backup_id=backup['id'], job_id=job_id if JOB_ID.match(job_id) else None,
                                            rto_seconds=None if failed else rto, restored_to=restored_to,
                                            restored_gtid=gtid if isinstance(gtid, str) else None,
                                            bytes=backup.get('bytes'), detail=detail, error=error,
                                            data_age=at_end)
            result['recorded'] = True
        except (StoreError, ValueError) as exc:
            drill = None
            result.setdefault('warnings', []).append('restore drill of %s not recorded in the dbfleet store: %s'
                                                     % (host, exc))
            failed = True
            error = error or 'not recorded: %s' % exc
        if drill is not None:
            result['drill'] = {key: _iso(value) if isinstance(value, datetime.datetime) else value
                               for key, value in drill.items() if key != 'detail'}
        result['changed'] = True
        if failed:
            return dict(result, failed=True, msg='restore drill of %s: %s FAILED: %s' % (host, described, error))
        rpo = drill['rpo_seconds'] if drill else None
        if not at_end:
            message = 'restore drill of %s: %s restored and verified in %.1f s (RTO); the data is as of %s, the ' \
                      'instant asked for (%s)' % (host, described, rto, _iso(restored_to), args['point'])
            return dict(result, msg=message)
        return dict(result, msg='restore drill of %s: %s restored and verified in %.1f s (RTO); the data is as of '
                                '%s, %s old when the drill started (RPO)'
                    % (host, described, rto, _iso(restored_to), '%.0f s' % rpo if rpo is not None else 'unknown'))
