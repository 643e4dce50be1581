#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: restore_drill
short_description: Restore a host's newest backup into a sandbox, to a point of its restorable window, and record it
version_added: 0.1.0
description:
  - A restore drill - proof that a host can be brought back, measured. The action plugin, on the controller, reads the
    host's backup catalog and binlog archive in the dbfleet store, picks its newest successful backup and a point in
    its restorable window (the newest archived event, when the binlog chain replays from that backup; else the backup
    itself), and runs M(dbfleet.mysql.mysql_restore) with O(dbfleet.mysql.mysql_restore#module:target=sandbox) on the
    host holding the backups (a temporary mariadbd, removed at the end).
  - It records the drill in the store - ok or failed with why, the measured recovery time (RTO - restore, replay and
    verification), the instant the restored data is at and its age when the drill started (RPO) - and marks the backup
    restore-tested. A host without a successful backup is skipped (nothing to drill; C(dbfleet backups check) reports it).
  - Runs through its action plugin only; it needs the dbfleet package and its store on the controller.
author:
  - dbfleet developers (@dbfleet)
attributes:
  check_mode:
    support: full
    description: Says which backup and point the drill would restore; restores and records nothing.
  diff_mode:
    support: none
    description: No diff.
options:
  replay:
    description:
      - Replay the archived binary logs to the newest archived event. V(false) restores the backup alone.
    type: bool
    default: true
  binlog_dir:
    description:
      - Directory of the archived binary logs, as for M(dbfleet.mysql.mysql_restore).
    type: path
  checksum_tables:
    description:
      - Read every restored table's row count and C(CHECKSUM TABLE), as for M(dbfleet.mysql.mysql_restore).
    type: bool
    default: true
  source:
    description:
      - Login options of the server the backup was taken from, to verify the restored data against.
    type: dict
  point:
    description:
      - Which instant of the host's restorable window the drill restores. V(end) - the newest backup replayed to the
        newest archived event (its data age when the drill started is the RPO recorded). V(inside) - an instant drawn
        at random between the window's start and its end, from the newest backup before it - over many nights every
        backup and replay length of the window gets proven. Or an instant C(YYYY-MM-DD HH:MM:SS) (UTC) inside the
        window. A drill to an instant records no RPO (the data is as old as asked).
    type: str
    default: end
  age_identity:
    description:
      - The age identity (private key) that opens encrypted backups, as for M(dbfleet.mysql.mysql_restore); never
        logged. C(playbooks/drill.yml) reads it from the run's C(age_identity) credential.
    type: str
  repository:
    description:
      - Drill the copies in this repository (its name in C(dbfleet_backup_repositories)) instead of the host's own
        backups - proof that the off-host copy restores. The backup and the point are picked among the backups with
        a verified copy there (the restorable window they give); the restore reads O(fetched). In check mode the
        result names the pick (RV(backup_id), RV(stop_datetime), RV(backup_path), RV(sha256)) for
        M(dbfleet.mysql.backup_fetch); C(playbooks/drill.yml) runs the three steps. The drill is recorded with the
        repository in its detail.
    type: str
  backup_id:
    description:
      - Drill this backup (a check-mode run's RV(backup_id)) instead of picking one; with O(stop_datetime), to that
        instant (none - the backup as it is).
    type: int
  stop_datetime:
    description:
      - With O(backup_id), the instant (C(YYYY-MM-DD HH:MM:SS), UTC) a check-mode run picked.
    type: str
  fetched:
    description:
      - With O(repository), what M(dbfleet.mysql.backup_fetch) returned - the staged backup (C(path)) and binlogs
        (C(binlog_dir)) the restore reads.
    type: dict
seealso:
  - module: dbfleet.mysql.mysql_restore
  - module: dbfleet.mysql.binlog_archive
notes:
  - Run by C(playbooks/drill.yml), the C(drill) template and C(dbfleet backups drill), in lanes balanced by backup size.
requirements:
  - dbfleet>=0.1.0 (the base Python package, C(pip install 'dbfleet>=0.1.0')) on the controller, with its store
'''

EXAMPLES = r'''
- name: Drill the host's newest backup
  dbfleet.mysql.restore_drill:
    source:
      login_host: "{{ login_host }}"
      login_user: dbfleet_backup
      login_password: "{{ vault_backup_password }}"
  register: drill
'''

RETURN = r'''
backup_id:
  description: In check mode, the backup the drill would restore.
  returned: in check mode, when the host had a backup
  type: int
stop_datetime:
  description: In check mode, the instant the drill would replay to (UTC), none for the backup as it is.
  returned: in check mode, when the host had a backup
  type: str
backup_path:
  description: In check mode, the backup's directory as the catalog has it (for M(dbfleet.mysql.backup_fetch)).
  returned: in check mode, when the host had a backup
  type: str
sha256:
  description: In check mode, the SHA-256 of the backup's archive the catalog recorded.
  returned: in check mode, when the host had a backup
  type: str
drill:
  description: The drill as recorded - host, backup_id, status, started_at, finished_at, rto_seconds, restored_to,
    restored_gtid, rpo_seconds, bytes.
  returned: when the host had a backup and the task was not in check mode
  type: dict
recorded:
  description: Whether the drill was written to the dbfleet store.
  returned: always
  type: bool
restore:
  description: What M(dbfleet.mysql.mysql_restore) returned (backup, replayed, stop_point, verification, seconds).
  returned: when the host had a backup
  type: dict
msg:
  description: One line about the drill.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(replay=dict(type='bool', default=True), binlog_dir=dict(type='path'),
                                              checksum_tables=dict(type='bool', default=True),
                                              source=dict(type='dict', no_log=False),
                                              age_identity=dict(type='str', no_log=True),
                                              point=dict(type='str', default='end'), repository=dict(type='str'),
                                              backup_id=dict(type='int'), stop_datetime=dict(type='str'),
                                              fetched=dict(type='dict')),
                           supports_check_mode=True)
    module.fail_json(msg='dbfleet.mysql.restore_drill runs on the controller through its action plugin (it reads '
                         'the dbfleet store); this module file holds its documentation only')


if __name__ == '__main__':
    main()
