#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: backup_copy
short_description: Copy a backup and the archived binlogs to off-host repositories, verified by SHA-256
version_added: 0.1.0
description:
  - Runs where the backups are written (the database host, or the controller for hosts reached with a local
    connection) and copies a backup directory written by M(dbfleet.mysql.mysql_backup) (its archive and
    C(manifest.json)) and, with O(binlogs=true), every completed archived binlog file of the host
    (C(<dest>/<name>/binlogs/<file>) with its C(<file>.json)) to each repository of O(repositories).
  - C(ssh) repositories are directories on a backup host, written with C(rsync -e ssh) with host key checking always
    on (C(known_hosts) of the repository). The key is the ssh-agent's (a dbfleet C(ssh) credential's, forwarded to the
    host for this task only) or its C(identity_file).
  - C(rclone) repositories are rclone remotes (S3, GCS, Azure Blob, SFTP, ...) configured in an rclone config file.
  - Each copy is verified - the remote file's SHA-256 must equal the manifest's (C(sha256sum) on the backup host,
    C(rclone hashsum sha256 --download)) - and reported in RV(copies); the action plugin records them in the dbfleet
    store. The task fails when any copy failed; the backup itself is not touched and stays recorded as it was.
  - Retention follows the host's - the backup directories and archived binlogs the backup's retention removed
    locally (O(removed), O(removed_binlogs)) are removed from every repository too (RV(pruned)), and their copies leave
    the store. A repository where that fails fails the task, saying so.
author:
  - dbfleet developers (@dbfleet)
attributes:
  check_mode:
    support: full
    description: Lists what would be copied where; copies nothing.
  diff_mode:
    support: none
    description: No diff.
  action:
    support: full
    description: The action plugin records each copy in the dbfleet store.
options:
  path:
    description:
      - The backup directory to copy (RV(dbfleet.mysql.mysql_backup#module:path) of the backup). Optional with
        O(binlogs=true).
    type: path
  dest:
    description:
      - The backups' root directory (the backup's O(dbfleet.mysql.mysql_backup#module:dest)).
    type: path
    required: true
  name:
    description:
      - The host's directory under O(dest), as the backup used it.
    type: str
    required: true
  backup_id:
    description:
      - The backup's id in the dbfleet store (RV(dbfleet.mysql.mysql_backup#module:backup_id)), to record its copies
        against.
    type: int
  binlogs:
    description:
      - Also copy the host's completed archived binlog files not yet verified in a repository.
    type: bool
    default: true
  verified_binlogs:
    description:
      - "Binlog files already verified in each repository, C({repository: [file, ...]}): skipped. The action plugin
        fills it from the dbfleet store when not given."
    type: dict
    default: {}
  removed:
    description:
      - Backup directories retention removed locally (RV(dbfleet.mysql.mysql_backup#module:removed)) - removed from
        each repository as C(<name>/<day>/<time>-<method>); anything else is refused.
    type: list
    elements: str
    default: []
  removed_binlogs:
    description:
      - Archived binlog files retention removed locally (RV(dbfleet.mysql.mysql_backup#module:removed_binlogs)) -
        removed from each repository with their C(.json).
    type: list
    elements: str
    default: []
  repositories:
    description:
      - Where to copy. Each has a C(name) (1 to 64 letters, digits, C(_ . -)) and a C(kind).
      - "C(kind: ssh): C(host), C(path) (absolute, on the backup host), C(known_hosts) (a file of host keys on the host
        running the copy; required, host key checking is always on), optional C(user), C(port) (22),
        C(identity_file)."
      - "C(kind: rclone): C(remote) (C(remote:path)), optional C(config) (the rclone config file; secrets of the
        remote stay in it)."
    type: list
    elements: dict
    required: true
requirements:
  - rsync and ssh (ssh repositories), rclone (rclone repositories) on the host running the module
  - dbfleet>=0.1.0 (the base Python package, C(pip install 'dbfleet>=0.1.0')) on the controller, to record the copies
    in the store (without it the copies are made and a warning says they were not recorded)
'''

EXAMPLES = r'''
- name: Copy the backup just made and the binlogs to the backup host and to S3
  dbfleet.mysql.backup_copy:
    path: "{{ dbfleet_backup.path }}"
    dest: /var/backups/dbfleet
    name: "{{ inventory_hostname }}"
    backup_id: "{{ dbfleet_backup.backup_id | default(omit) }}"
    repositories:
      - {name: vault1, kind: ssh, host: backup1.example.com, user: dbbackup, path: /srv/dbfleet,
         known_hosts: /etc/dbfleet/known_hosts}
      - {name: s3, kind: rclone, remote: "s3-offsite:company-db-backups", config: /etc/dbfleet/rclone.conf}
'''

RETURN = r'''
copies:
  description: One entry per file copied and repository.
  returned: always
  type: list
  elements: dict
  contains:
    repository:
      description: The repository's name.
      type: str
    kind:
      description: C(ssh) or C(rclone).
      type: str
    binlog_file:
      description: The binlog file copied, or null for the backup's archive.
      type: str
    location:
      description: Where the file is, as C(user@host:/path) or C(remote:path).
      type: str
    sha256:
      description: The SHA-256 of the remote file (null when it could not be read).
      type: str
    status:
      description: C(ok) (verified) or C(failed).
      type: str
    verified_at:
      description: When the remote checksum matched (UTC).
      type: str
    error:
      description: Why the copy failed.
      type: str
pruned:
  description: Per repository, what retention removed there.
  returned: always
  type: list
  elements: dict
  contains:
    repository:
      description: The repository's name.
      type: str
    kind:
      description: C(ssh) or C(rclone).
      type: str
    removed:
      description: The paths removed, relative to the repository's root.
      type: list
      elements: str
    status:
      description: C(ok) or C(failed).
      type: str
    error:
      description: Why the removal failed.
      type: str
recorded:
  description: Whether the action plugin recorded the copies in the dbfleet store.
  returned: always
  type: bool
msg:
  description: One line about what was done.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import iso, utcnow
from ansible_collections.dbfleet.mysql.plugins.module_utils.copies import (
    CopyError,
    backup_item,
    binlog_items,
    check_repositories,
    copy_items,
    prune,
    removed_binlog_files,
    removed_dirs,
)


def _now():
    return iso(utcnow())


def main():
    module = AnsibleModule(argument_spec=dict(
        path=dict(type='path'),
        dest=dict(type='path', required=True),
        name=dict(type='str', required=True),
        backup_id=dict(type='int'),
        binlogs=dict(type='bool', default=True),
        verified_binlogs=dict(type='dict', default={}),
        removed=dict(type='list', elements='str', default=[]),
        removed_binlogs=dict(type='list', elements='str', default=[]),
        repositories=dict(type='list', elements='dict', required=True),
    ), supports_check_mode=True)
    params = module.params
    try:
        repositories = check_repositories(params['repositories'])
        if not repositories:
            raise CopyError('repositories is empty: give at least one (dbfleet_backup_repositories)')
        if '/' in params['name'] or params['name'] in ('', '.', '..'):
            raise CopyError('name %r cannot be a directory name' % params['name'])
        backup = backup_item(params['path'], params['dest'], params['name']) if params['path'] else None
        directories = removed_dirs(params['name'], params['removed'])
        files = removed_binlog_files(params['name'], params['removed_binlogs'])
    except (CopyError, OSError, ValueError, KeyError) as exc:
        module.fail_json(msg='cannot copy the backup of %s: %s' % (params['name'], exc), copies=[], pruned=[])
    copies = []
    planned = 0
    for spec in repositories:
        items = [backup] if backup else []
        if params['binlogs']:
            skip = set(params['verified_binlogs'].get(spec['name']) or [])
            try:
                items += binlog_items(params['dest'], params['name'], skip)
            except (OSError, ValueError, KeyError) as exc:
                module.fail_json(msg='cannot read the archived binlogs of %s: %s' % (params['name'], exc),
                                 copies=copies, pruned=[])
        planned += len(items)
        if not module.check_mode:
            copies += copy_items(spec, items, _now)
    if module.check_mode:
        module.exit_json(changed=planned > 0 or bool(directories or files), copies=[], pruned=[],
                         msg='would copy %d file(s) to %s%s' % (
                             planned, ', '.join(spec['name'] for spec in repositories),
                             ' and remove %d backup(s), %d binlog file(s) there' % (len(directories), len(files) // 2)
                             if directories or files else ''))
    pruned = [prune(spec, directories, files) for spec in repositories] if directories or files else []
    failed = [copy for copy in copies if copy['status'] != 'ok']
    unpruned = [entry for entry in pruned if entry['status'] != 'ok']
    summary = '%d of %d cop%s verified in %s' % (
        len(copies) - len(failed), len(copies), 'y' if len(copies) == 1 else 'ies',
        ', '.join(spec['name'] for spec in repositories))
    if pruned:
        summary += '; retention removed %d backup(s), %d binlog file(s) from %d of %d repositories' % (
            len(directories), len(files) // 2, len(pruned) - len(unpruned), len(pruned))
    if failed or unpruned:
        reasons = '; '.join(['%s: %s' % (copy['repository'], copy['error']) for copy in failed[:5]]
                            + ['%s: removing what retention removed: %s' % (entry['repository'], entry['error'])
                               for entry in unpruned[:5]])
        module.fail_json(msg='copy failed: %s; %s' % (reasons, summary), copies=copies, pruned=pruned,
                         changed=len(failed) < len(copies) or len(unpruned) < len(pruned))
    module.exit_json(changed=bool(copies or pruned), copies=copies, pruned=pruned, msg=summary)


if __name__ == '__main__':
    main()
