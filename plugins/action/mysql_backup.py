# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of dbfleet.mysql.mysql_backup: hand the module the host's pinned backups from
the catalog (the module runs on the database host and cannot read the store), run it where the
task runs, then record the attempt - successful or failed - in the dbfleet store, so backup
durations are on record for planning, with the earlier runs the module found dead (`abandoned`)
as failed attempts, and mark the backups retention removed. A store that cannot be reached (or
the dbfleet package missing on the controller) is a warning: the backup itself is what the task
is for - but then retention is skipped, since the pinned backups are unknown."""

from __future__ import annotations

import datetime
import os

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash
from ansible_collections.dbfleet.mysql.plugins.plugin_utils.base_package import needs_base

MODULE = 'dbfleet.mysql.mysql_backup'
RETENTION_OPTIONS = ('retention_count', 'retention_days', 'retention_window_days')


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        wrap_async = self._task.async_val and not self._connection.has_native_async
        host = task_vars.get('inventory_hostname')
        args, warning = self._with_pins(host, dict(self._task.args))
        args, notes = self._with_replicas(args, task_vars)
        result = merge_hash(result, self._execute_module(module_name=MODULE, module_args=args,
                                                         task_vars=task_vars, wrap_async=wrap_async))
        if warning:
            result.setdefault('warnings', []).append(warning)
        if notes:
            result.setdefault('warnings', []).extend(notes)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        result['recorded'] = False
        # An async task's result is only its job id; check mode writes no backup.
        if wrap_async or self._task.check_mode or result.get('skipped'):
            return result
        host = host or result.get('manifest', {}).get('name')
        try:
            fields = backup_fields(result, self._task.args)
            abandoned = [abandoned_fields(attempt) for attempt in result.get('abandoned') or []]
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            result.setdefault('warnings', []).append('backup of %s not recorded in the dbfleet store: %s' % (host, exc))
            return result
        try:
            from dbfleet.store import StoreError, open_store
        except ImportError as exc:
            result.setdefault('warnings', []).append('backup of %s not recorded: %s'
                                                     % (host, needs_base('the dbfleet store', exc)))
            return result
        try:
            with open_store() as store:
                for attempt in abandoned:
                    store.backups.record(host, **attempt)
                # backup_copy records the backup's copies against this id.
                result['backup_id'] = store.backups.record(host, **fields)['id']
                if result.get('removed'):
                    store.backups.mark_removed(host, result['removed'])
                if result.get('removed_binlogs'):  # no longer replayable: out of the restorable window's chain
                    store.binlogs.forget(host, [os.path.basename(path) for path in result['removed_binlogs']])
            result['recorded'] = True
        except (StoreError, ValueError) as exc:
            result.setdefault('warnings', []).append('backup of %s not recorded in the dbfleet store: %s' % (host, exc))
        return result

    def _with_pins(self, host, args):
        """The module's arguments with the host's pinned backups added to keep_paths; without the
        store's answer, retention is left out (a pinned backup must never go) and a warning says so."""
        if not any(args.get(name) not in (None, '') for name in RETENTION_OPTIONS):
            return args, None
        try:
            from dbfleet.store import StoreError, open_store
        except ImportError as exc:
            problem = needs_base('the dbfleet store', exc)
        else:
            try:
                with open_store() as store:
                    pinned = store.backups.pinned_paths(host)
                args['keep_paths'] = list(args.get('keep_paths') or []) + pinned
                return args, None
            except (StoreError, ValueError) as exc:
                problem = str(exc)
        for name in RETENTION_OPTIONS:
            args.pop(name, None)
        return args, ('retention skipped for %s: its pinned backups could not be read from the dbfleet store (%s)'
                      % (host, problem))

    @staticmethod
    def _with_replicas(args, task_vars):
        """prefer=replica without replicas: the host's replicas from the store's facts (dbfleet.replicas)."""
        if args.get('prefer') != 'replica' or args.get('replicas'):
            return args, []
        host = task_vars.get('inventory_hostname')
        try:
            from dbfleet.replicas import replicas_of
            from dbfleet.store import StoreError, open_store
        except ImportError as exc:
            return args, ['prefer=replica: no replicas given, and %s' % needs_base('finding them in the store', exc)]
        try:
            with open_store() as store:
                args['replicas'] = replicas_of(store, host)
        except (StoreError, ValueError) as exc:
            return args, ['prefer=replica: no replicas given, and the dbfleet store could not say (%s)' % exc]
        return args, []


def _when(text):
    if not text:
        return None
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)


def backup_fields(result, args):
    """record_backup's fields for a module result, successful or failed."""
    manifest = result.get('manifest')
    if not result.get('failed') and manifest:
        return dict(method=manifest['method'], status='ok', started_at=_when(manifest['started']),
                    finished_at=_when(manifest['finished']), duration_seconds=manifest['duration_seconds'],
                    bytes=manifest['bytes'], path=result.get('path'), checksum=manifest['sha256'],
                    binlog_file=manifest.get('binlog_file'), binlog_position=manifest.get('binlog_position'),
                    gtid=manifest.get('gtid'), source_replica=(manifest.get('source') or {}).get('replica'),
                    source_gtid=(manifest.get('source') or {}).get('gtid'))
    attempt = result.get('backup') or {}
    now = datetime.datetime.now(datetime.timezone.utc)
    method = attempt.get('method') or args.get('method') or 'logical'
    return dict(method=method if method in ('logical', 'physical') else 'logical', status='failed',
                started_at=_when(attempt.get('started')) or now, finished_at=_when(attempt.get('finished')) or now,
                duration_seconds=attempt.get('duration_seconds'),
                error=result.get('msg') or 'the backup failed without a message',
                partial_path=attempt.get('partial_path'), kept_partial=bool(attempt.get('partial_path')))


def abandoned_fields(attempt):
    """record_backup's fields for a partial directory of a dead run that the module swept: a failed
    attempt at its start time; when it ended is unknown."""
    return dict(method=attempt['method'], status='failed', started_at=_when(attempt['started']),
                error=attempt['reason'], partial_path=attempt.get('partial_path') or attempt['path'],
                kept_partial=bool(attempt.get('kept')))
