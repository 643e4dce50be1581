# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of dbfleet.mysql.fleet_tags: record facts, evaluate tag rules or apply manual
tags, persist the result in the dbfleet store, and put the host into its tag groups in the
running play. The work itself is dbfleet.inspection; this file only adapts it to Ansible."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible_collections.dbfleet.mysql.plugins.plugin_utils.base_package import needs_base

ARGUMENT_SPEC = dict(
    facts=dict(type='dict'),
    attributes=dict(type='dict', default={}),
    tags=dict(type='list', elements='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    expires=dict(type='str'),
    rules=dict(type='path'),
    rule_vars=dict(type='dict', default={}),
    store_url=dict(type='str', no_log=False),
    host=dict(type='str'),
    group_prefix=dict(type='str', default='tag_'),
    add_groups=dict(type='bool', default=True),
    who=dict(type='str'),
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail('fleet_tags: %s' % '; '.join(validation.error_messages))
        args = validation.validated_parameters

        try:
            from dbfleet import inspection
            from dbfleet.tags import tag_group
        except ImportError as exc:
            raise AnsibleActionFail(needs_base('fleet_tags', exc))

        host = args['host'] or task_vars.get('inventory_hostname')
        facts = args['facts']
        if facts is None and not args['tags']:
            facts = (task_vars.get('ansible_facts') or {}).get('mysql')
            if facts is None:
                raise AnsibleActionFail('fleet_tags: no facts for %s: run dbfleet.mysql.mysql_facts first, '
                                        'pass facts=..., or give tags=[...] to set manual tags' % host)
        request = inspection.TagRequest(
            host=host,
            address=task_vars.get('login_host') or task_vars.get('ansible_host'),
            port=_int_or_none(task_vars.get('login_port')),
            facts=facts,
            attributes=args['attributes'],
            manual_tags=args['tags'],
            state=args['state'],
            expires=args['expires'],
            rules_path=args['rules'],
            rule_vars=args['rule_vars'] or task_vars.get('dbfleet_tag_rule_vars') or {},
            store_url=args['store_url'],
            who=args['who'] or 'ansible:%s' % (task_vars.get('ansible_user_id') or _local_user()),
            check_mode=bool(self._task.check_mode),
        )
        try:
            outcome = inspection.apply_tags(request)
        except inspection.InspectionError as exc:
            raise AnsibleActionFail('fleet_tags: %s' % exc)

        result.update(outcome.as_result())
        result['changed'] = outcome.changed
        if self._task.diff and outcome.changed:
            result['diff'] = dict(before='\n'.join(outcome.before) + '\n', after='\n'.join(outcome.after) + '\n',
                                  before_header='%s tags' % host, after_header='%s tags' % host)
        # Tags in the running play: a fact, so later tasks see them without touching `changed`.
        result['ansible_facts'] = dict(dbfleet_tags=list(outcome.after))
        missing = [group for group in (tag_group(args['group_prefix'], tag) for tag in outcome.after)
                   if group not in task_vars.get('group_names', [])]
        if args['add_groups'] and missing:
            # Like group_by: the strategy adds the host to these groups in the running play, and then
            # sets `changed` itself (the inventory changed); `tags_changed` keeps whether tags did.
            # Hosts from the fleet inventory are in their tag groups already, so this only happens
            # when a tag was added.
            result['add_host'] = dict(host_name=task_vars.get('inventory_hostname'), groups=missing)
        return result


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _local_user():
    import getpass
    try:
        return getpass.getuser()
    except Exception:  # pylint: disable=broad-except
        return 'unknown'
