# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of dbfleet.mysql.backup_copy: tell the module which binlog files each repository
already holds verified (from the dbfleet store), run it where the backups are, then record each
copy - verified or failed - in the store. A store that cannot be reached is a warning: the copies
themselves are what the task is for."""

from __future__ import annotations

import datetime

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash
from ansible_collections.dbfleet.mysql.plugins.plugin_utils.base_package import needs_base

MODULE = 'dbfleet.mysql.backup_copy'


def _when(text):
    if not text:
        return None
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)


class ActionModule(ActionBase):

    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        args = dict(self._task.args)
        host = task_vars.get('inventory_hostname') or args.get('name')
        warnings = []
        store_module = None
        try:
            from dbfleet.store import StoreError, open_store
            store_module = (StoreError, open_store)
        except ImportError as exc:
            warnings.append('copies of %s not recorded: %s' % (host, needs_base('the dbfleet store', exc)))
        if store_module and args.get('binlogs', True) and not args.get('verified_binlogs'):
            try:
                with store_module[1]() as store:
                    verified = {}
                    for copy in store.copies.of_binlogs(host):
                        if copy['status'] == 'ok':
                            verified.setdefault(copy['repository'], []).append(copy['binlog_file'])
                args['verified_binlogs'] = verified
            except (store_module[0], ValueError) as exc:
                warnings.append('the dbfleet store could not say which binlogs are copied already (%s): all are '
                                'verified again' % exc)
        result = merge_hash(result, self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        self._remove_tmp_path(self._connection._shell.tmpdir)
        result['recorded'] = False
        if warnings:
            result.setdefault('warnings', []).extend(warnings)
        pruned = [entry['repository'] for entry in result.get('pruned') or [] if entry.get('status') == 'ok']
        if self._task.check_mode or result.get('skipped') or not store_module or not (result.get('copies') or pruned):
            return result
        try:
            with store_module[1]() as store:
                for copy in result['copies']:
                    backup_id = None if copy.get('binlog_file') else args.get('backup_id')
                    if backup_id is None and not copy.get('binlog_file'):
                        continue  # a backup not recorded (no store when it ran): nothing to attach it to
                    store.copies.record(host, copy['repository'], copy['location'], copy['status'],
                                        backup_id=int(backup_id) if backup_id is not None else None,
                                        binlog_file=copy.get('binlog_file'), sha256=copy.get('sha256'),
                                        verified_at=_when(copy.get('verified_at')), error=copy.get('error'))
                # What retention removed from a repository is no copy any more.
                store.copies.forget(host, pruned, backup_paths=args.get('removed') or [],
                                    binlog_files=args.get('removed_binlogs') or [])
            result['recorded'] = True
        except (store_module[0], ValueError, TypeError) as exc:
            result.setdefault('warnings', []).append('copies of %s not recorded in the dbfleet store: %s' % (host, exc))
        return result
