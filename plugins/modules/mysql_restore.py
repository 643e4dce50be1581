#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: mysql_restore
short_description: Restore a dbfleet backup into a sandbox or a server, to a point in time, and verify it
version_added: 0.1.0
description:
  - Restores a backup directory written by M(dbfleet.mysql.mysql_backup) (its C(manifest.json) and a logical dump
    C(dump.sql[.gz|.zst]) or a physical C(backup.xbstream[.gz|.zst])).
  - O(target=sandbox) starts a temporary C(mariadbd) of the version installed on the host, on a fresh datadir in a
    private temporary directory with its own socket and a loopback port, binary logging and the event scheduler off;
    it is stopped and removed at the end unless O(keep_sandbox=true). O(target=server) restores into the server of
    the login options (logical backups only).
  - A logical dump streams from its decompressor into the client with C(SET SESSION sql_log_bin=0) as its init
    command (never a second copy on disk). Over an existing server the backup's databases are dropped first (with
    sql_log_bin=0 too), so that tables created after the backup cannot break the replay; that needs O(force=true)
    when the server has those databases, a binary log or replicas, and the refusal says exactly what would be done.
  - A physical backup is extracted with C(mbstream -x), prepared with C(mariabackup --prepare) and copied into the
    sandbox's datadir with C(mariabackup --copy-back) before the sandbox starts.
  - With O(stop_datetime) or O(stop_gtid) the archived binary logs (C(<dest>/<name>/binlogs/), or O(binlog_dir)) are
    replayed from the backup's binlog position through C(mariadb-binlog | mariadb) with sql_log_bin=0 (C(TZ=UTC)).
    The chain is checked first - every file from the backup's one to the target, each but the newest complete and
    matching its manifest - and a restore whose target is after the newest archived event is refused.
  - Verification - C(CHECK TABLE) of every restored table; tables, views, routines, triggers and events per schema
    against the source (O(source)) or else the dump; row counts and C(CHECKSUM TABLE) against the source when the
    restored GTID position covers the source's current one. RV(verification.compared) says what was compared.
author:
  - dbfleet developers (@dbfleet)
extends_documentation_fragment:
  - dbfleet.mysql.mysql
attributes:
  check_mode:
    support: full
    description: Checks the backup, the binlog chain and the target, and reports what would be done; changes nothing.
  diff_mode:
    support: none
    description: No diff.
options:
  backup:
    description:
      - Absolute path of the backup directory (C(<dest>/<name>/<YYYY-MM-DD>/<time>-<method>)).
    type: path
    required: true
  target:
    description:
      - C(sandbox) restores into a temporary server started for it; C(server) into the server of the login options.
    type: str
    choices: [sandbox, server]
    default: sandbox
  keep_sandbox:
    description:
      - Leave the sandbox running at the end and return its socket, port and datadir in RV(sandbox).
    type: bool
    default: false
  stop_datetime:
    description:
      - Replay the archived binary logs up to this instant, C(YYYY-MM-DD HH:MM:SS) in UTC; every transaction written at
        or before it is applied, none after.
    type: str
  stop_gtid:
    description:
      - Replay the archived binary logs up to and including this MariaDB GTID (C(domain-server-sequence)).
    type: str
  binlog_dir:
    description:
      - Directory of the archived binary logs. Default C(binlogs) in the host's directory of the backup (two levels up).
    type: path
  schema:
    description:
      - Restore only this database of a logical backup (its sections of the dump), and replay only its changes
        (C(mariadb-binlog --database)).
    type: str
  force:
    description:
      - Restore over an existing server that has the backup's databases, a binary log or replicas.
    type: bool
    default: false
  age_identity:
    description:
      - The age identity (private key, C(AGE-SECRET-KEY-1...), as C(age-keygen) writes it) that opens a backup encrypted
        by M(dbfleet.mysql.mysql_backup)'s O(dbfleet.mysql.mysql_backup#module:encrypt_recipients). Required for such a
        backup, ignored for a clear one. It is decrypted in the stream (C(age -d | gzip -dc | mariadb)); the key is
        kept in a 0600 file of the restore's private directory while it runs, never logged. The C(restore) and
        C(drill) templates take it from a dbfleet C(age_identity) credential.
    type: str
  check_sha256:
    description:
      - Check the archive against the manifest's SHA-256 before restoring.
    type: bool
    default: true
  checksum_tables:
    description:
      - Return the row count and C(CHECKSUM TABLE) of every restored table in RV(verification.tables) (a full read
        of the restored data).
    type: bool
    default: true
  source:
    description:
      - Login options (the same keys as this module's) of the server the backup was taken from, to verify against.
        Unreachable, it is a warning and the dump is the reference.
    type: dict
seealso:
  - module: dbfleet.mysql.mysql_backup
notes:
  - Sandboxes need C(mariadbd) and C(mariadb-install-db) (physical - C(mariabackup) and C(mbstream)) on the host, the
    same version as the backup's server for a physical backup. The sandbox's root is the OS user running the module,
    by unix socket; a physical backup must allow that login (the source's C(root@localhost) via unix_socket).
  - A point-in-time recovery needs C(mariadb-binlog) and the binlog archive of dbfleet.mysql.binlog_archive.
requirements:
  - mariadb client, PyMySQL on the host running the module; age for an encrypted backup
'''

EXAMPLES = r'''
- name: Bring db7 back to one second before the accident, in a sandbox kept for inspection
  dbfleet.mysql.mysql_restore:
    backup: /srv/backups/db7/2026-12-04/20261204T010000Z-logical
    stop_datetime: '2026-12-04 03:12:00'
    keep_sandbox: true
  register: restored

- name: Restore one schema into a staging server up to a GTID
  dbfleet.mysql.mysql_restore:
    backup: /srv/backups/db7/2026-12-04/20261204T010000Z-logical
    target: server
    login_host: staging1
    login_user: restore
    login_password: "{{ vault_restore_password }}"
    schema: crm
    stop_gtid: 0-1-184467
    force: true

- name: Restore a physical backup and check it against its source
  dbfleet.mysql.mysql_restore:
    backup: /var/backups/dbfleet/db7/2026-12-04/20261204T020000Z-physical
    source:
      login_host: db7
      login_user: dbfleet_backup
      login_password: "{{ vault_backup_password }}"
'''

RETURN = r'''
backup:
  description: The backup used - path, method, started, binlog_file, binlog_position, gtid, bytes.
  returned: success
  type: dict
target:
  description: Where it was restored (the sandbox's socket, or user@host:port).
  returned: success
  type: str
schemas:
  description: The databases restored.
  returned: success
  type: list
  elements: str
dropped:
  description: The databases dropped on the target before the load (target=server).
  returned: when target is server
  type: list
  elements: str
loaded:
  description: The archive loaded and its bytes (archive_bytes; sql_bytes for a dump, datadir_bytes physical).
  returned: success
  type: dict
replayed:
  description: The binary logs replayed - files, start_position, stop_position, events, bytes, stop_gtid (the last
    transaction applied), stop_event_at, archive_ends_at, archive_last_gtid.
  returned: when stop_datetime or stop_gtid is given
  type: dict
stop_point:
  description: The GTID position reached (gtid), the time of its last event (last_event_at) and what was asked.
  returned: when stop_datetime or stop_gtid is given
  type: dict
verification:
  description: What the verification found; a failed check fails the task (with this in the result).
  returned: success
  type: complex
  contains:
    ok:
      description: Whether every check passed.
      type: bool
      returned: success
    problems:
      description: What failed (at most 50).
      type: list
      elements: str
      returned: success
    compared:
      description: The comparisons made, in words (C(CHECK TABLE of 12 tables), C(object counts per schema vs the
        source ...), C(row counts and CHECKSUM TABLE of 12 tables vs the source)).
      type: list
      elements: str
      returned: success
    check_table:
      description: C(tables) checked and their C(errors).
      type: dict
      returned: success
    objects:
      description: C(restored) counts per schema (tables, views, routines, triggers, events); C(reference) C(source)
        or C(dump), C(expected), C(differences), and C(binding) (compared at the restored instant, so a difference
        fails the task).
      type: dict
      returned: success
    tables:
      description: C(schema.table) to C([rows, checksum]) of every restored table.
      type: dict
      returned: when checksum_tables is true
    data:
      description: Row counts and checksums against the source - C(tables) compared, C(mismatched), or C(skipped)
        with why.
      type: dict
      returned: success
seconds:
  description: Seconds per phase (sandbox, load or extract/prepare/copy_back, replay, verify, cleanup).
  returned: success
  type: dict
sandbox:
  description: The kept sandbox - socket, port, datadir, defaults_file, client_defaults_file, pid, error_log, stop.
  returned: when keep_sandbox is true
  type: dict
plan:
  description: What the restore does (check mode - would do), step by step.
  returned: always
  type: list
  elements: str
msg:
  description: One line about what was done.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.dbfleet.mysql.plugins.module_utils.command_resolver import Dialect, ServerVersion
from ansible_collections.dbfleet.mysql.plugins.module_utils.mysql import (
    MYSQL_MUTUALLY_EXCLUSIVE,
    PYMYSQL_IMPORT_ERROR,
    MySQLConnectError,
    describe_target,
    mysql_common_argument_spec,
    mysql_connect,
    pymysql,
    write_tls_data,
)
from ansible_collections.dbfleet.mysql.plugins.module_utils.restore import Restore, RestoreError, ServerState

SOURCE_KEYS = frozenset(mysql_common_argument_spec()) - {'ca_cert_data', 'client_cert_data', 'client_key_data'}


def main():
    argument_spec = mysql_common_argument_spec()
    argument_spec.update(
        backup=dict(type='path', required=True),
        target=dict(type='str', choices=['sandbox', 'server'], default='sandbox'),
        keep_sandbox=dict(type='bool', default=False),
        stop_datetime=dict(type='str'),
        stop_gtid=dict(type='str'),
        binlog_dir=dict(type='path'),
        schema=dict(type='str'),
        force=dict(type='bool', default=False),
        check_sha256=dict(type='bool', default=True),
        checksum_tables=dict(type='bool', default=True),
        source=dict(type='dict', no_log=False),
        age_identity=dict(type='str', no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=MYSQL_MUTUALLY_EXCLUSIVE + [['stop_datetime', 'stop_gtid']])
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('PyMySQL'), exception=PYMYSQL_IMPORT_ERROR)
    problem = write_tls_data(module)
    if problem:
        module.fail_json(msg=problem)
    params = module.params
    source = params.get('source')
    if source is not None:
        unknown = sorted(set(source) - SOURCE_KEYS)
        if unknown:
            module.fail_json(msg='source takes login options only (%s); unknown: %s'
                             % (', '.join(sorted(SOURCE_KEYS)), ', '.join(str(key)[:50] for key in unknown[:5])))
        for secret in (source.get('login_password'),):
            if secret:
                module.no_log_values.add(secret)
        params['source'] = dict(mysql_common_argument_spec_defaults(), **source)
    if params['target'] == 'server' and params['keep_sandbox']:
        module.fail_json(msg='keep_sandbox applies to target=sandbox only')
    try:
        restore = Restore(params, mysql_connect, module.get_bin_path)
        target = describe_target(params)
        if params['target'] == 'server':
            connection = mysql_connect(params)
            try:
                with connection.cursor() as cursor:
                    cursor.execute('SELECT @@version AS v, @@version_comment AS c')
                    row = cursor.fetchone()
                state = ServerState(connection, Dialect(ServerVersion(row['v'], row['c'])))
            finally:
                connection.close()
            restore.refuse_unless_forced(state, target)
        plan = restore.describe_plan(target if params['target'] == 'server' else 'the sandbox')
        if module.check_mode:
            module.exit_json(changed=True, plan=plan, warnings=restore.result['warnings'],
                             replayed=restore.replay.as_result() if restore.replay else None,
                             msg='would restore %s: %s' % (restore.backup.path, '; '.join(plan)))
        result = restore.run(dict(params) if params['target'] == 'server' else None, target, None)
    except (RestoreError, MySQLConnectError) as exc:
        module.fail_json(msg=str(exc))
    except pymysql.err.MySQLError as exc:
        module.fail_json(msg='restore of %s failed: MySQL error %s' % (params['backup'], exc))
    except OSError as exc:
        module.fail_json(msg='restore of %s failed: %s: %s' % (
            params['backup'], getattr(exc, 'filename', None) or '', exc.strerror or exc))
    warnings = result.pop('warnings', [])
    for warning in warnings:
        module.warn(warning)
    result['plan'] = plan
    verification = result['verification']
    stop = result.get('stop_point') or {}
    message = 'restored %s (%s) into %s%s in %.1f s; verification %s' % (
        result['backup']['path'], ', '.join(result['schemas']), result['target'],
        ' up to %s (%s)' % (stop.get('gtid'), stop.get('last_event_at')) if stop else '',
        sum(result['seconds'].values()), 'ok' if verification['ok'] else 'FAILED: %s' % '; '.join(
            verification['problems'][:3]))
    if not verification['ok']:
        module.fail_json(msg=message, **result)
    module.exit_json(msg=message, **result)


def mysql_common_argument_spec_defaults():
    return dict((key, spec.get('default')) for key, spec in mysql_common_argument_spec().items())


if __name__ == '__main__':
    main()
