# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: fleet
short_description: Database hosts from the dbfleet store, their tags as groups
version_added: 0.1.0
description:
  - Reads hosts, their tags, attributes and a summary of their latest facts from the dbfleet store
    (filled by M(dbfleet.mysql.fleet_tags) and the C(dbfleet) command).
  - Every tag becomes a group named O(group_prefix) + tag; every host is also in the O(host_group) group.
  - O(tags) keeps only the hosts whose tags match a filter expression such as C(large and not maintenance).
  - Configuration files must end in C(.fleet.yml) or C(.fleet.yaml).
author:
  - dbfleet developers (@dbfleet)
requirements:
  - dbfleet>=0.1.0 (the base Python package, C(pip install 'dbfleet>=0.1.0')) on the controller
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks the file as a configuration of this plugin.
    required: true
    type: str
    choices: [dbfleet.mysql.fleet]
  store_url:
    description:
      - SQLAlchemy URL of the dbfleet store. Default is the C(DBFLEET_STORE_URL) environment variable,
        else the SQLite file C(var/dbfleet.db) of the dbfleet project.
    type: str
    env:
      - name: DBFLEET_STORE_URL
  tags:
    description:
      - Filter expression over tag names with C(and), C(or), C(not) and parentheses
        (C(not) binds tighter than C(and), which binds tighter than C(or)).
      - Only matching hosts are returned. Default is every host.
    type: str
  group_prefix:
    description: Prefix of the group made from each tag.
    type: str
    default: tag_
  host_group:
    description: Group holding every host of this source (empty string for none).
    type: str
    default: mysql
  facts:
    description:
      - Paths of the latest facts to copy into C(dbfleet_facts) (a dict keyed by path), from those the store
        keeps as a summary of each snapshot.
    type: list
    elements: str
    default: [server.flavour, server.version.full, replication.role, replication.lag_seconds,
              schemas.totals.total_bytes, server.uptime_seconds]
  login_vars:
    description:
      - Whether to set C(login_host) and C(login_port) from the address and port the store knows, so
        M(dbfleet.mysql.mysql_facts) and C(playbooks/collect_facts.yml) can use them as they are.
    type: bool
    default: true
notes:
  - Host variables set for each host are C(dbfleet_tags) (sorted list), C(dbfleet_attributes) (dict),
    C(dbfleet_facts) (dict), C(dbfleet_address) and C(dbfleet_port).
  - The store must have been migrated (C(dbfleet store upgrade)); the plugin never changes it.
'''

EXAMPLES = r'''
# inventories/prod.fleet.yml
plugin: dbfleet.mysql.fleet
tags: large and not maintenance
keyed_groups:
  - key: dbfleet_attributes.owner | default('none')
    prefix: owner
compose:
  ansible_host: dbfleet_address

# ansible-playbook -i inventories/prod.fleet.yml playbooks/backup.yml --limit tag_primary
'''

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.dbfleet.mysql.plugins.plugin_utils.base_package import needs_base


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'dbfleet.mysql.fleet'

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(('.fleet.yml', '.fleet.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)

        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        update_cache = self.get_option('cache') and not cache
        records = None
        if use_cache:
            try:
                records = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if records is None:
            records = self._query()
        if update_cache:
            self._cache[cache_key] = records
        self._populate(records)

    def _query(self):
        """Hosts, tags, attributes and fact summaries from the store, as plain data (cacheable)."""
        try:
            from dbfleet.store import StoreError, open_store
        except ImportError as exc:
            raise AnsibleParserError(needs_base('the fleet inventory plugin', exc))
        try:
            store = open_store(self.get_option('store_url'), migrate=False)
            try:
                return store.hosts.inventory(fact_paths=self.get_option('facts'))
            finally:
                store.close()
        except StoreError as exc:
            raise AnsibleParserError('fleet inventory: %s' % exc)

    def _host_filter(self):
        expression = self.get_option('tags')
        if not expression:
            return None
        from dbfleet.tags import TagExpressionError, parse_tag_expression
        try:
            return parse_tag_expression(expression)
        except TagExpressionError as exc:
            raise AnsibleParserError('fleet inventory: bad tags filter: %s' % exc)

    def _populate(self, records):
        from dbfleet.tags import tag_group
        matches = self._host_filter()
        prefix = self.get_option('group_prefix')
        host_group = self.get_option('host_group')
        login_vars = self.get_option('login_vars')
        strict = self.get_option('strict')
        compose, groups, keyed_groups = (self.get_option(name) for name in ('compose', 'groups', 'keyed_groups'))
        if host_group:
            self.inventory.add_group(host_group)
        known_groups = set()
        for record in records:
            if matches is not None and not matches.matches(record['tags']):
                continue
            name = record['name']
            self.inventory.add_host(name, group=host_group or None)
            hostvars = dict(dbfleet_tags=record['tags'], dbfleet_attributes=record['attributes'],
                            dbfleet_facts=record['facts'], dbfleet_address=record['address'],
                            dbfleet_port=record['port'])
            if login_vars:
                if record['address']:
                    hostvars['login_host'] = record['address']
                if record['port']:
                    hostvars['login_port'] = record['port']
            for variable, value in hostvars.items():
                self.inventory.set_variable(name, variable, value)
            for tag in record['tags']:
                group = tag_group(prefix, tag)
                if group not in known_groups:
                    self.inventory.add_group(group)
                    known_groups.add(group)
                self.inventory.add_child(group, name)
            if compose or groups or keyed_groups:
                self._set_composite_vars(compose, hostvars, name, strict=strict)
                self._add_host_to_composed_groups(groups, hostvars, name, strict=strict)
                self._add_host_to_keyed_groups(keyed_groups, hostvars, name, strict=strict)
