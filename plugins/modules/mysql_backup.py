#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: mysql_backup
short_description: Back up a MySQL or MariaDB server, verify the archive and apply retention
version_added: 0.1.0
description:
  - Takes a consistent backup of one server into O(dest) with a per-host, per-day layout
    C(<dest>/<name>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>-<method>/) (UTC), holding the archive and a C(manifest.json)
    that describes it (tool and server versions, databases, times, size, SHA-256, binlog position and GTID).
  - C(logical) runs C(mariadb-dump) or C(mysqldump) with C(--single-transaction --routines --triggers --events
    --hex-blob) and records the binlog file, position and GTID of the snapshot (C(--master-data=2 --gtid) on MariaDB,
    C(--source-data=2) on MySQL 8.0.26+). When the account may not read the position, the dump is taken without it
    and a warning says so.
  - C(physical) streams C(mariabackup) or C(xtrabackup) in xbstream format. It copies data files, so it must run on
    the database host.
  - The archive is written under a hidden temporary name and renamed into place once it is complete, verified and
    described by its manifest; a failed run leaves nothing behind that retention or a restore could take for a backup.
  - The password never appears on a command line, in the environment or in the output; the tool reads it from a
    temporary 0600 option file that is removed when the run ends.
  - An action plugin of the same name records every backup, successful or failed, in the dbfleet store on the
    controller when one is available (C(DBFLEET_STORE_URL) or the default store), so that durations can be planned with.
author:
  - dbfleet developers (@dbfleet)
extends_documentation_fragment:
  - dbfleet.mysql.mysql
attributes:
  check_mode:
    support: full
    description: Connects and reports the backup directory that would be written and the backups retention would remove;
      writes nothing.
  diff_mode:
    support: none
    description: No diff.
  action:
    support: full
    description: The action plugin runs the module on the target and records the result in the dbfleet store.
options:
  method:
    description:
      - C(logical) is an SQL dump; C(physical) a copy of the data files (mariabackup / xtrabackup).
    type: str
    choices: [logical, physical]
    default: logical
  dest:
    description:
      - Root directory of the backups, created when missing. Must be an absolute path on the host the module runs on.
    type: path
    required: true
  name:
    description:
      - The per-host directory under O(dest); playbooks pass C(inventory_hostname).
      - Default is O(login_host)C(:)O(login_port) (or C(localhost) and the socket path for O(login_unix_socket)).
    type: str
  databases:
    description:
      - Databases to dump (logical only). Default is every database but C(mysql), C(information_schema),
        C(performance_schema) and C(sys).
      - A physical backup always copies the whole instance.
    type: list
    elements: str
    default: []
  compress:
    description:
      - How the archive is compressed. C(zstd) needs the C(zstd) program on the host.
    type: str
    choices: [gzip, zstd, none]
    default: gzip
  retention_count:
    description:
      - After a successful backup, keep this many backups of this O(name) and O(method) (the new one included)
        and remove older ones. Unset keeps every backup.
    type: int
  retention_days:
    description:
      - After a successful backup, remove backups of this O(name) and O(method) started more than this many days ago.
      - With O(retention_count) too, a backup goes when either rule says so. The backup just made is never removed,
        and nothing outside C(<dest>/<name>/) is ever touched; only directories named and laid out like a backup and
        holding a C(manifest.json) count as backups.
      - Not consulted when O(retention_window_days) is set.
    type: int
  retention_window_days:
    description:
      - Recovery window, in days - keep what is needed to restore to any instant of the last N days, that is the
        newest backup of this O(name) and O(method) started at or before now minus N days and every newer one, and
        remove the older ones.
      - When set, it replaces O(retention_count) and O(retention_days) (one kind of rule at a time, as pgBackRest's
        C(repo-retention-full-type) and Barman's C(retention_policy)); O(retention_min_full) and pins still protect.
      - Archived binary logs under C(<dest>/<name>/binlogs/) that have their C(.json) manifest and come before the
        binlog file of the oldest backup left (of any method) that has a position are removed too.
    type: int
  retention_min_full:
    description:
      - The newest N backups of this O(name) and O(method) (the new one included) are never removed, whatever the
        other retention options say (Barman's C(minimum_redundancy)).
    type: int
  keep_paths:
    description:
      - Backup directories that retention must never remove (pinned in the dbfleet catalog; the action plugin fills
        this from the store). A backup directory holding a file named C(.keep) is never removed either.
    type: list
    elements: path
    default: []
  keep_partial:
    description:
      - Keep the partial directory of a failed or killed backup for debugging, renamed
        C(.<backup>.failed-<pid>) (never swept, never taken for a backup; remove it by hand), instead of removing it.
    type: bool
    default: false
  verify:
    description:
      - Read the archive back before publishing it - the SHA-256 must match, the archive must decompress to the end,
        and it must be a complete dump (its C(-- Dump completed) footer) or a readable xbstream (every chunk's CRC).
    type: bool
    default: true
  encrypt_recipients:
    description:
      - age public keys (C(age1...), as C(age-keygen -y) prints them). With any, the archive is streamed through
        C(age -r KEY ...) after compression and written encrypted (C(dump.sql.gz.age)); no clear copy is ever
        written. The host writing the backup needs only the public keys, so it cannot read what it wrote.
      - Verification then checks the SHA-256 and the age header only (the content needs the private key); a dump's
        completion line is still checked, in the stream before encryption. The manifest records C(encrypted=age),
        the recipients and C(verification).
    type: list
    elements: str
    default: []
  throttle_mb_per_second:
    description:
      - Limit the backup's read rate. C(logical) paces the dump stream the module reads (the uncompressed dump) to
        this many MiB per second; C(physical) passes C(--throttle) to mariabackup (I/O operations of 1 MiB) or
        xtrabackup (10 MB chunks), rounded up.
    type: float
  prefer:
    description:
      - C(replica) takes the backup from a healthy replica of the server among O(replicas) (both replication
        threads running, lag at most O(max_replica_lag_seconds)), recording which one and its GTID position in the
        manifest's C(source); when none is healthy, from the server itself, with a warning.
      - A physical backup can only use a replica whose data directory is on the host the module runs on.
    type: str
    choices: [self, replica]
    default: self
  replicas:
    description:
      - Candidate replicas for O(prefer=replica), as C(host:port) (the same login options are used).
      - When empty, the action plugin takes the hosts whose latest facts in the dbfleet store show a replication
        channel from this host's address and port (least lagging first).
    type: list
    elements: str
    default: []
  max_replica_lag_seconds:
    description:
      - The most a replica may lag (C(Seconds_Behind_Master)) to be used.
    type: int
    default: 60
  monitor_login_user:
    description:
      - Account that reads a candidate replica's status (C(SHOW SLAVE STATUS) needs C(SLAVE MONITOR) on MariaDB),
        when the backup account may not. Default is O(login_user).
    type: str
  monitor_login_password:
    description:
      - Its password.
    type: str
seealso:
  - module: dbfleet.mysql.mysql_facts
notes:
  - "Grants for a logical backup with position on MariaDB 10.11: C(SELECT, SHOW VIEW, TRIGGER, EVENT ON *.*); for a
    physical one: C(RELOAD, PROCESS, BINLOG MONITOR ON *.*). See C(docs/backups.md) in the dbfleet repository."
  - With C(--single-transaction), tables of non-transactional engines (MyISAM, Aria) are consistent only if nothing
    writes to them during the dump.
requirements:
  - mariadb-dump or mysqldump (logical), mariabackup or xtrabackup (physical), gzip or zstd on the host running the
    module
  - PyMySQL on the host running the module
  - dbfleet>=0.1.0 (the base Python package, C(pip install 'dbfleet>=0.1.0')) on the controller, to record the backup
    in the store (without it the backup runs and a warning says it was not recorded)
'''

EXAMPLES = r'''
- name: Nightly logical backup, one week kept
  dbfleet.mysql.mysql_backup:
    login_host: db1.example.com
    login_user: dbfleet_backup
    login_password: "{{ vault_backup_password }}"
    dest: /srv/backups
    name: "{{ inventory_hostname }}"
    retention_count: 7
    retention_days: 14

- name: Physical backup on the database host, zstd-compressed
  dbfleet.mysql.mysql_backup:
    login_unix_socket: /run/mysqld/mysqld.sock
    method: physical
    compress: zstd
    dest: /srv/backups
    name: "{{ inventory_hostname }}"

- name: Two databases only, no verification
  dbfleet.mysql.mysql_backup:
    dest: /srv/backups
    databases: [shop, crm]
    verify: false
'''

RETURN = r'''
path:
  description: The backup directory written (in check mode, the one that would be written).
  returned: success
  type: str
  sample: /srv/backups/db1/2026-11-27/20261127T010000Z-logical
manifest:
  description: The content of the backup's C(manifest.json); null in check mode.
  returned: success
  type: complex
  contains:
    manifest_version:
      description: Version of this layout, 1.
      type: int
      returned: success
    name:
      description: The per-host directory name.
      type: str
      returned: success
    server:
      description: The server backed up, as C(user@host:port).
      type: str
      returned: success
    server_version:
      description: C(@@version) of the server.
      type: str
      returned: success
      sample: 10.11.6-MariaDB-log
    method:
      description: C(logical) or C(physical).
      type: str
      returned: success
    tool:
      description: The program that made the backup and its version.
      type: dict
      returned: success
      sample: {name: mariadb-dump, version: 10.11.6-MariaDB}
    databases:
      description: The databases dumped (logical), or the user databases the instance held (physical).
      type: list
      elements: str
      returned: success
    compress:
      description: C(gzip), C(zstd) or C(none).
      type: str
      returned: success
    archive:
      description: File name of the archive in the backup directory.
      type: str
      returned: success
      sample: dump.sql.gz
    bytes:
      description: Size of the archive.
      type: int
      returned: success
    uncompressed_bytes:
      description: Size of the dump before compression (logical).
      type: int
      returned: when method is logical
    files:
      description: Number of files in the xbstream (physical, when verified).
      type: int
      returned: when method is physical and verify is true
    sha256:
      description: SHA-256 of the archive.
      type: str
      returned: success
    started:
      description: When the backup started (UTC, ISO 8601).
      type: str
      returned: success
      sample: '2026-11-27T01:00:00Z'
    finished:
      description: When it was complete and verified (UTC, ISO 8601).
      type: str
      returned: success
    duration_seconds:
      description: Seconds from the start of the dump to the end of verification.
      type: float
      returned: success
    verify_seconds:
      description: Seconds spent verifying (null when O(verify=false)).
      type: float
      returned: success
    verified:
      description: Whether the archive was verified.
      type: bool
      returned: success
    binlog_file:
      description: Binary log file of the backup's position; null when unknown (no binlog, or refused).
      type: str
      returned: success
      sample: mysql-bin.000042
    binlog_position:
      description: Position in RV(manifest.binlog_file).
      type: int
      returned: success
    gtid:
      description: GTID position of the backup (MariaDB C(gtid_binlog_pos) form or a MySQL GTID set); null when unknown.
      type: str
      returned: success
      sample: 0-1-1234
    encrypted:
      description: C(age) when the archive is encrypted (O(encrypt_recipients)).
      type: str
      returned: when encrypted
    recipients:
      description: The age public keys it is encrypted to.
      type: list
      elements: str
      returned: when encrypted
    verification:
      description: What verification could not check, for an encrypted archive (its content, without the private key).
      type: str
      returned: when encrypted and verified
    source:
      description: With O(prefer=replica), the replica the backup was taken from (C(replica), C(host:port)), its GTID
        position (C(gtid)) and lag (C(lag_seconds)) when chosen.
      type: dict
      returned: when taken from a replica
    throttle_mb_per_second:
      description: The throttle the backup ran under.
      type: float
      returned: when throttled
    warnings:
      description: What the backup lacks and why (for example a binlog position the account could not read).
      type: list
      elements: str
      returned: success
removed:
  description: Backup directories deleted by retention (in check mode, those that would be).
  returned: always
  type: list
  elements: str
removed_binlogs:
  description: Archived binary log files deleted by the recovery window's retention.
  returned: always
  type: list
  elements: str
abandoned:
  description:
    - Partial directories of earlier runs of this O(name) that died (killed, interrupted) found and swept by this run
      - removed, or kept and flagged with O(keep_partial). Each has C(path), C(started), C(method), C(pid), C(host)
      (the machine it ran on), C(kept), C(partial_path) (where it is now, null when removed) and C(reason).
  returned: always
  type: list
  elements: dict
backup:
  description: On failure, what is known of the attempt (method, started, finished, duration_seconds, name, and
    partial_path when O(keep_partial) kept its partial directory).
  returned: failure
  type: dict
backup_id:
  description: The backup's id in the dbfleet store (what M(dbfleet.mysql.backup_copy) records its copies against).
  returned: when recorded
  type: int
recorded:
  description: Whether the action plugin recorded the backup in the dbfleet store.
  returned: always
  type: bool
msg:
  description: One line about what was done.
  returned: always
  type: str
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import (
    COMPRESSIONS,
    METHODS,
    BackupError,
    Compression,
    Encryption,
    Outcome,
    Plan,
    check_local_server,
    check_name,
    choose_databases,
    choose_replica,
    default_name,
    find_tool,
    iso,
    read_server,
    retention_policy,
    run_backup,
    utcnow,
)
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup_attempt import sweep_abandoned
from ansible_collections.dbfleet.mysql.plugins.module_utils.mysql import (
    PYMYSQL_IMPORT_ERROR,
    MySQLConnectError,
    describe_target,
    MYSQL_MUTUALLY_EXCLUSIVE,
    mysql_common_argument_spec,
    mysql_connect,
    write_tls_data,
    pymysql,
)


def _size(number):
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if number < 1024 or unit == 'GiB':
            return ('%d %s' if unit == 'B' else '%.1f %s') % (number, unit)
        number /= 1024.0


def main():
    argument_spec = mysql_common_argument_spec()
    argument_spec.update(
        method=dict(type='str', choices=list(METHODS), default='logical'),
        dest=dict(type='path', required=True),
        name=dict(type='str'),
        databases=dict(type='list', elements='str', default=[]),
        compress=dict(type='str', choices=list(COMPRESSIONS), default='gzip'),
        retention_count=dict(type='int'),
        retention_days=dict(type='int'),
        retention_window_days=dict(type='int'),
        retention_min_full=dict(type='int'),
        keep_paths=dict(type='list', elements='path', default=[]),
        keep_partial=dict(type='bool', default=False),
        verify=dict(type='bool', default=True),
        encrypt_recipients=dict(type='list', elements='str', default=[]),
        throttle_mb_per_second=dict(type='float'),
        prefer=dict(type='str', choices=['self', 'replica'], default='self'),
        replicas=dict(type='list', elements='str', default=[]),
        max_replica_lag_seconds=dict(type='int', default=60),
        monitor_login_user=dict(type='str'),
        monitor_login_password=dict(type='str', no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=MYSQL_MUTUALLY_EXCLUSIVE)
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('PyMySQL'), exception=PYMYSQL_IMPORT_ERROR)
    problem = write_tls_data(module)
    if problem:
        module.fail_json(msg=problem)
    params = module.params
    target = describe_target(params)
    started = utcnow()
    clock = time.monotonic()

    outcome = Outcome()
    abandoned = []

    def fail(msg):
        attempt = dict(method=params['method'], name=params.get('name'), started=iso(started), finished=iso(utcnow()),
                       duration_seconds=round(time.monotonic() - clock, 3), partial_path=outcome.partial_path)
        module.fail_json(msg=msg, removed=[], removed_binlogs=[], abandoned=abandoned, backup=attempt)

    for problem in retention_policy(params).problems():
        fail(problem)
    if params['method'] == 'physical' and params['databases']:
        fail('databases applies to logical backups only: a physical backup copies the whole instance')
    if params['throttle_mb_per_second'] is not None and not 0 < params['throttle_mb_per_second'] <= 100000:
        fail('throttle_mb_per_second must be more than 0 (MiB per second), got %s' % params['throttle_mb_per_second'])
    if params['max_replica_lag_seconds'] < 0:
        fail('max_replica_lag_seconds must be 0 or more, got %d' % params['max_replica_lag_seconds'])
    if not os.path.isabs(params['dest']):
        fail('dest must be an absolute path, got %s' % params['dest'])
    if not module.check_mode:
        # Before anything can fail: the runs of this name that died are recorded even if this one fails.
        try:
            name = check_name(params.get('name') or default_name(params))
            abandoned, problems = sweep_abandoned(os.path.join(os.path.normpath(params['dest']), name),
                                                  keep_partial=params['keep_partial'])
        except BackupError as exc:
            fail(str(exc))
        except OSError as exc:
            problems = ['cannot look for the partial directories of dead runs: %s' % (exc.strerror or exc)]
        for problem in problems:
            module.warn(problem)

    try:
        compression = Compression.resolve(params['compress'], module.get_bin_path)
        encryption = Encryption.resolve(params['encrypt_recipients'], module.get_bin_path)
        source = None
        if params['prefer'] == 'replica':
            source, notes = choose_replica(params, mysql_connect, target)
            for note in notes:
                module.warn(note)
            if source is not None:
                # The dump reads the replica; the manifest says so (and which GTID it had reached).
                params['login_host'], params['login_port'] = source['login_host'], source['login_port']
                params['login_unix_socket'] = None
                target = describe_target(params)
                source = dict((key, source[key]) for key in ('replica', 'gtid', 'lag_seconds'))
        connection = mysql_connect(params)
        try:
            server = read_server(connection)
        finally:
            connection.close()
        tool = find_tool(params['method'], module.get_bin_path, module.run_command, server.flavour)
        if params['method'] == 'physical':
            check_local_server(server, target)
            databases = list(server.databases)
        else:
            databases = choose_databases(server, params['databases'], target)
        plan = Plan(params, server, tool, compression, databases, started, encryption)
        plan.source = source
        if module.check_mode:
            plan.check_dest()
            expired = plan.expired(utcnow())
            module.exit_json(changed=True, path=plan.path, manifest=None, removed=[backup.path for backup in expired],
                             removed_binlogs=[], abandoned=[],
                             msg='would write a %s backup of %s (%s) to %s and remove %d older backup(s)'
                             % (plan.method, target, ', '.join(databases), plan.path, len(expired)))
        run_backup(plan, target, outcome)
    except (BackupError, MySQLConnectError) as exc:
        fail(str(exc))
    except pymysql.err.MySQLError as exc:
        fail('cannot read the version, datadir and databases of %s: %s' % (target, exc))
    except OSError as exc:
        fail('backup of %s failed: %s: %s' % (target, getattr(exc, 'filename', None) or '', exc.strerror or exc))

    for warning in outcome.warnings:
        module.warn(warning)
    manifest = outcome.manifest
    module.exit_json(changed=True, path=outcome.path, manifest=manifest, removed=outcome.removed,
                     removed_binlogs=outcome.removed_binlogs, abandoned=abandoned,
                     msg='%s backup of %s written to %s (%s in %.1f s)%s%s%s'
                     % (plan.method, target, outcome.path, _size(manifest['bytes']), manifest['duration_seconds'],
                        ', %d older backup(s) removed' % len(outcome.removed) if outcome.removed else '',
                        ', %d archived binlog(s) removed' % len(outcome.removed_binlogs)
                        if outcome.removed_binlogs else '',
                        ', %d dead run(s) swept' % len(abandoned) if abandoned else ''))


if __name__ == '__main__':
    main()
