#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: backup_fetch
short_description: Bring a backup and the binlogs its replay needs back from a repository, verified by SHA-256
version_added: 0.1.0
description:
  - The way back of M(dbfleet.mysql.backup_copy) - for a restore when the host's own copy is gone (its disk
    lost, or a new machine in its place) - downloads a backup directory (its archive and C(manifest.json)) from
    one repository into a new directory under O(staging), in the repository's layout
    (C(<name>/<day>/<time>-<method>/), C(<name>/binlogs/)), so that M(dbfleet.mysql.mysql_restore) restores
    from RV(path) as from the host's own disk.
  - With O(binlogs=true), also the archived binlog files from the backup's binlog position on (with their
    C(.json) manifests), up to the first one that begins after O(stop_datetime) when given.
  - Every file counts only when its SHA-256 is its manifest's, and the backup's manifest must say the SHA-256
    the catalog recorded (O(sha256)); otherwise the task fails and the staged copy is removed. The caller removes
    RV(staging_dir) when the restore is done (C(playbooks/restore.yml) does); what a killed restore left there is
    removed by a later fetch once it is a day old (RV(swept)).
  - C(ssh) repositories are read with C(rsync -e ssh) (host key checking always on), C(rclone) repositories with
    C(rclone copy).
author:
  - dbfleet developers (@dbfleet)
attributes:
  check_mode:
    support: none
    description: Downloads in check mode too (into a staging directory only; nothing else changes).
  diff_mode:
    support: none
    description: No diff.
options:
  repositories:
    description:
      - The repositories, as for M(dbfleet.mysql.backup_copy) (C(dbfleet_backup_repositories)).
    type: list
    elements: dict
    required: true
  repository:
    description:
      - The name of the repository of O(repositories) to fetch from.
    type: str
    required: true
  backup:
    description:
      - The backup directory, as the catalog has it (C(<dest>/<name>/<day>/<time>-<method>)) or relative to the
        repository's root (C(<name>/<day>/<time>-<method>)).
    type: str
    required: true
  sha256:
    description:
      - The SHA-256 of the backup's archive the catalog recorded; the fetched manifest must say the same.
    type: str
  binlogs:
    description:
      - Also fetch the archived binlog files a point-in-time recovery from the backup needs.
    type: bool
    default: false
  stop_datetime:
    description:
      - The instant the restore replays to (UTC, C(YYYY-MM-DD HH:MM:SS)); binlog files that begin after it are not
        fetched, except the first (it shows the archive reaches the instant).
    type: str
  staging:
    description:
      - A directory on the host with room for the backup and its binlogs; each fetch makes a new directory in it
        (mode 0700).
    type: path
    required: true
requirements:
  - rsync and ssh (ssh repositories), rclone (rclone repositories) on the host running the module
'''

EXAMPLES = r'''
- name: Fetch db1's backup from the backup host, then restore it
  dbfleet.mysql.backup_fetch:
    repositories: "{{ dbfleet_backup_repositories }}"
    repository: vault1
    backup: /var/backups/dbfleet/db1/2026-12-04/20261204T010000Z-logical
    binlogs: true
    stop_datetime: '2026-12-04 03:12:00'
    staging: /var/backups/dbfleet/.staging
  register: fetched
'''

RETURN = r'''
path:
  description: The staged backup directory (give it to M(dbfleet.mysql.mysql_restore) as O(dbfleet.mysql.mysql_restore#module:backup)).
  returned: success
  type: str
binlog_dir:
  description: The staged binlog directory (O(dbfleet.mysql.mysql_restore#module:binlog_dir)).
  returned: success
  type: str
staging_dir:
  description: The directory this fetch made under O(staging), to remove when the restore is done.
  returned: success
  type: str
files:
  description: The files fetched and verified, relative to the repository's root (archive first, then binlogs).
  returned: success
  type: list
  elements: str
bytes:
  description: Their total size.
  returned: success
  type: int
swept:
  description:
    - Directories earlier fetches left in O(staging) (a restore killed before it removed its own) untouched for a day,
      removed by this one.
  returned: success
  type: list
  elements: str
seconds:
  description: How long the fetch took.
  returned: success
  type: float
msg:
  description: One line about what was done.
  returned: always
  type: str
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbfleet.mysql.plugins.module_utils.copies import CopyError, check_repositories, fetch
from ansible_collections.dbfleet.mysql.plugins.module_utils.restore import RestoreError, parse_stop_datetime

_SHA256_HEX = '0123456789abcdef'


def main():
    module = AnsibleModule(argument_spec=dict(
        repositories=dict(type='list', elements='dict', required=True),
        repository=dict(type='str', required=True),
        backup=dict(type='str', required=True),
        sha256=dict(type='str'),
        binlogs=dict(type='bool', default=False),
        stop_datetime=dict(type='str'),
        staging=dict(type='path', required=True),
    ), supports_check_mode=False)
    params = module.params
    started = time.monotonic()
    try:
        known = {spec['name']: spec for spec in check_repositories(params['repositories'])}
        spec = known.get(params['repository'])
        if spec is None:
            raise CopyError('no repository named %r: the repositories are %s' % (
                params['repository'][:100], ', '.join(sorted(known)) or 'none (dbfleet_backup_repositories)'))
        sha256 = params['sha256']
        if sha256 is not None and (len(sha256) != 64 or set(sha256) - set(_SHA256_HEX)):
            raise CopyError('sha256 must be 64 lowercase hex digits')
        stop = parse_stop_datetime(params['stop_datetime']) if params['stop_datetime'] else None
        if not params['staging'].startswith('/'):
            raise CopyError('staging must be an absolute directory')
        fetched = fetch(spec, params['backup'], params['staging'], sha256=sha256, binlogs=params['binlogs'],
                        stop_datetime=stop)
    except (CopyError, RestoreError, OSError) as exc:
        module.fail_json(msg='cannot fetch the backup from repository %s: %s' % (params['repository'][:100], exc))
    seconds = round(time.monotonic() - started, 3)
    module.exit_json(changed=True, path=fetched['path'], binlog_dir=fetched['binlog_dir'],
                     staging_dir=fetched['root'], files=fetched['files'], bytes=fetched['bytes'], seconds=seconds,
                     swept=fetched['swept'],
                     msg='fetched %d file(s), %d bytes, from %s in %.1f s, each verified by SHA-256'
                     % (len(fetched['files']), fetched['bytes'], params['repository'], seconds))


if __name__ == '__main__':
    main()
