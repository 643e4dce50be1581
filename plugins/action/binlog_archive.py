# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of dbfleet.mysql.binlog_archive: run the module where the task runs, then record the
files it archived (each with the gap before it, if any) and the archive's lag and gaps in the dbfleet
store, as the mysql_backup action plugin records backups. A store that cannot be reached (or the dbfleet
package missing on the controller) is a warning: the archive on disk is what the task is for."""

from __future__ import annotations

import datetime

from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash
from ansible_collections.dbfleet.mysql.plugins.plugin_utils.base_package import needs_base

MODULE = 'dbfleet.mysql.binlog_archive'


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(module_name=MODULE, module_args=self._task.args,
                                                         task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        result['recorded'] = False
        if wrap_async or self._task.check_mode or result.get('skipped') or result.get('failed'):
            return result
        host = task_vars.get('inventory_hostname') or self._task.args.get('name')
        try:
            from dbfleet.store import StoreError, open_store
        except ImportError as exc:
            result.setdefault('warnings', []).append('binlog archive of %s not recorded: %s'
                                                     % (host, needs_base('the dbfleet store', exc)))
            return result
        try:
            with open_store() as store:
                store.binlogs.record_pass(host, result, datetime.datetime.now(datetime.timezone.utc))
            result['recorded'] = True
        except (StoreError, TypeError, ValueError, KeyError) as exc:
            result.setdefault('warnings', []).append('binlog archive of %s not recorded in the dbfleet store: %s'
                                                     % (host, exc))
        return result
