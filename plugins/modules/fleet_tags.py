# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation of the dbfleet.mysql.fleet_tags action plugin (plugins/action/fleet_tags.py).

from __future__ import annotations

DOCUMENTATION = r'''
---
module: fleet_tags
short_description: Tag a database host from its facts (or by hand) and put it in its tag groups
version_added: 0.1.0
description:
  - Runs on the controller. In a play after M(dbfleet.mysql.mysql_facts), it records the host's facts in the
    dbfleet store, evaluates the tag rules over the facts, the host's attributes and its manual tags,
    and makes the host's rule tags exactly the tags whose rules are true, keeping the values that made
    each rule true as evidence.
  - With O(tags), it sets or removes manual tags instead (optionally expiring).
  - Every change is written to the store's audit trail with O(who).
  - Like M(ansible.builtin.group_by), it adds the host to one group per tag (O(group_prefix) + tag) in the
    running play, so later plays can target C(hosts=tag_critical).
  - C(changed) and C(tags_changed) are true only when tags were added or removed, with one exception that
    Ansible imposes. When the task adds the host to a tag group it is not in yet in the running play (with a
    static inventory, every tag group the first time), Ansible marks the task changed itself. Hosts from the
    C(dbfleet.mysql.fleet) inventory are already in their tag groups; with other inventories, use
    C(changed_when) with C(tags_changed), as C(playbooks/inspect.yml) does.
  - The host's tags are also set as the fact C(dbfleet_tags) for the rest of the play.
author:
  - dbfleet developers (@dbfleet)
attributes:
  check_mode:
    support: full
    description: Nothing is written; the result and diff show the tags that would be added and removed.
  diff_mode:
    support: full
    description: Shows the host's tag list before and after.
  action:
    support: full
    description: Implemented as an action plugin, runs on the controller.
  bypass_host_loop:
    support: none
    description: Runs once per host.
options:
  facts:
    description:
      - The host's facts. Default is C(ansible_facts.mysql) of the host, as set by M(dbfleet.mysql.mysql_facts).
      - Ignored when O(tags) is given.
    type: dict
  attributes:
    description:
      - Manual attributes to record for the host (for example C(owner), C(business), C(rack), C(purchase_date),
        C(warranty_end)); merged into what the store already has; a null value removes the attribute.
      - Rules see them as C(attrs).
    type: dict
    default: {}
  tags:
    description:
      - Manual tags to set (O(state=present)) or remove (O(state=absent)). When given, rules are not evaluated.
    type: list
    elements: str
  state:
    description:
      - Whether the manual O(tags) should be present or absent.
    type: str
    choices: [present, absent]
    default: present
  expires:
    description:
      - When manual tags set with O(state=present) expire, as a duration from now (C(7d), C(12h), C(30m), C(2w))
        or an ISO date or datetime (C(2026-12-31), C(2026-12-31T18:00:00Z)). An expired tag disappears.
    type: str
  rules:
    description:
      - The tag rules file. Default is C(DBFLEET_TAG_RULES) or C(inventories/tag_rules.yml) of the dbfleet project.
    type: path
  rule_vars:
    description:
      - Overrides of the rules file's C(vars) (thresholds such as C(large_gb) or C(lagging_seconds)).
      - Default is the host variable C(dbfleet_tag_rule_vars) when set.
    type: dict
    default: {}
  store_url:
    description:
      - SQLAlchemy URL of the dbfleet store. Default is C(DBFLEET_STORE_URL), else the SQLite file C(var/dbfleet.db).
    type: str
  host:
    description:
      - Name of the host in the store. Default is C(inventory_hostname).
    type: str
  group_prefix:
    description:
      - Prefix of the group names made from tags.
    type: str
    default: tag_
  add_groups:
    description:
      - Whether to add the host to its tag groups in the running play.
    type: bool
    default: true
  who:
    description:
      - Who made the change, for the audit trail. Default is C(ansible:<user>).
    type: str
requirements:
  - dbfleet>=0.1.0 (the base Python package, C(pip install 'dbfleet>=0.1.0')) on the controller
seealso:
  - module: dbfleet.mysql.mysql_facts
  - module: ansible.builtin.group_by
'''

EXAMPLES = r'''
- name: Facts, then tags from the rules
  hosts: mysql
  gather_facts: false
  tasks:
    - name: Gather facts
      dbfleet.mysql.mysql_facts:
        login_host: "{{ login_host }}"
    - name: Tag
      dbfleet.mysql.fleet_tags:
        attributes:
          owner: team-payments
          warranty_end: '2025-06-30'
      register: tagged
      changed_when: tagged.tags_changed

- name: Later in the same playbook, only critical servers
  hosts: tag_critical
  gather_facts: false
  tasks:
    - name: Say so
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }} is critical"

- name: A manual tag for a week
  dbfleet.mysql.fleet_tags:
    tags: [maintenance]
    expires: 7d
'''

RETURN = r'''
host:
  description: Name of the host in the store.
  returned: always
  type: str
tags:
  description: The host's tags after the task (all sources, expired ones excluded).
  returned: always
  type: list
  elements: str
  sample: [large, primary, critical]
added:
  description: Tags added (or that would be, in check mode).
  returned: always
  type: list
  elements: str
removed:
  description: Tags removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
tags_changed:
  description: Whether tags were added or removed.
  returned: always
  type: bool
evidence:
  description: For each rule tag that is true, the values that made it true.
  returned: always
  type: dict
  sample: {large: {facts.schemas.totals.total_bytes: 60129542144, vars.large_gb: 50}}
rule_errors:
  description: Rules that failed on this host and why (the rule counts as false; other rules still apply).
  returned: always
  type: dict
changes:
  description:
    - One entry per added or removed tag with C(host), C(tag), C(dimension), C(change) (C(added) or C(removed)) and
      C(priority), which orders new risks first, then other additions, removed risks, other removals.
  returned: always
  type: list
  elements: dict
ansible_facts:
  description: Facts set for the rest of the play.
  returned: always
  type: complex
  contains:
    dbfleet_tags:
      description: The host's tags after the task.
      type: list
      elements: str
      returned: always
'''
