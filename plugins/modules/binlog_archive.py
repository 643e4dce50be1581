#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: binlog_archive
short_description: Archive a MySQL or MariaDB server's complete binary logs next to its backups
version_added: 0.1.0
description:
  - One pass of the binary log archive of one server. Every binary log the server has rotated past (all but its
    current one, per C(SHOW BINARY LOGS)) that is newer than the newest archived file is fetched raw with
    C(mariadb-binlog --read-from-remote-server --raw) (C(mysqlbinlog) for MySQL) into
    C(<dest>/<name>/binlogs/), the directory beside the host's backups.
  - Each fetched file is read offline (C(TZ=UTC mariadb-binlog)) for its server id, first and last GTID and the
    times of its first and last event, hashed (SHA-256), and described by C(<file>.json), written atomically. A file
    without its C(.json) is incomplete.
  - Gaps that break the chain a point-in-time restore replays are reported - a log the server purged before it was
    archived, a GTID discontinuity between consecutive files, a change of server id (a failover).
  - For a continuous archive (seconds behind instead of one file behind), run C(dbfleet archive run), which keeps
    C(--stop-never) streams open; this module catches up what is complete.
  - The password never appears on a command line, in the environment or in the output; the tool reads it from a
    temporary 0600 option file that is removed when the run ends.
  - An action plugin of the same name records the archived files in the dbfleet store on the controller when one is
    available.
author:
  - dbfleet developers (@dbfleet)
extends_documentation_fragment:
  - dbfleet.mysql.mysql
attributes:
  check_mode:
    support: full
    description: Connects and reports the files that would be fetched and the gaps; writes nothing.
  diff_mode:
    support: none
    description: No diff.
  action:
    support: full
    description: The action plugin runs the module on the target and records the archived files in the dbfleet store.
options:
  dest:
    description:
      - Root directory of the backup repository, the O(dest) of M(dbfleet.mysql.mysql_backup). Must be absolute.
    type: path
    required: true
  name:
    description:
      - The per-host directory under O(dest); playbooks pass C(inventory_hostname).
      - Default is O(login_host)C(:)O(login_port).
    type: str
seealso:
  - module: dbfleet.mysql.mysql_backup
notes:
  - "Grants: C(REPLICATION SLAVE, BINLOG MONITOR ON *.*) on MariaDB (C(REPLICATION SLAVE, REPLICATION CLIENT) on MySQL).
    See C(docs/backups.md) in the dbfleet repository."
requirements:
  - mariadb-binlog or mysqlbinlog on the host running the module
  - PyMySQL on the host running the module
  - dbfleet>=0.1.0 (the base Python package, C(pip install 'dbfleet>=0.1.0')) on the controller, to record the files
    in the store (without it the archive is written and a warning says it was not recorded)
'''

EXAMPLES = r'''
- name: Archive the primary's complete binary logs next to its backups
  dbfleet.mysql.binlog_archive:
    login_host: db1.example.com
    login_user: dbfleet_archive
    login_password: "{{ vault_archive_password }}"
    dest: /srv/backups
    name: "{{ inventory_hostname }}"
  register: archive

- name: Fail when the archive has a gap
  ansible.builtin.assert:
    that: archive.gaps | length == 0
'''

RETURN = r'''
path:
  description: The archive directory.
  returned: success
  type: str
  sample: /srv/backups/db1/binlogs
archived:
  description: The manifests of the files archived by this pass (in check mode, none).
  returned: success
  type: list
  elements: dict
  sample:
    - {manifest_version: 1, file: mysql-bin.000007, server_id: 1, bytes: 1048576, sha256: 9f2c..., first_gtid: 0-1-101,
       last_gtid: 0-1-180, domains: {'0': [0-1-101, 0-1-180]}, first_event_at: '2026-12-04T03:00:01Z',
       last_event_at: '2026-12-04T04:10:00Z', archived_at: '2026-12-04T04:10:02Z'}
pending:
  description: In check mode, the files that would be fetched.
  returned: success
  type: list
  elements: str
gaps:
  description:
    - Breaks in the archive's chain, oldest first. C(kind) is C(purged), C(gtid) or C(server); the chain breaks
      between C(previous) (its last event at C(at)) and C(file); C(missing) lists purged files.
  returned: success
  type: list
  elements: dict
busy:
  description:
    - Why this pass fetched nothing - another archiver (a C(dbfleet archive run) stream, or another pass) held the
      archive directory's lock (C(.archive.lock)); null otherwise. One writer at a time; a stream makes passes
      unnecessary.
  returned: success
  type: str
current_file:
  description: The server's current binary log (being written; archived once the server rotates past it).
  returned: success
  type: str
complete:
  description: Number of complete files in the archive.
  returned: success
  type: int
newest:
  description: The manifest of the newest archived file, or null.
  returned: success
  type: dict
lag_seconds:
  description:
    - Seconds the archive is behind the server - now minus the last event of the newest archived file while the
      server writes a later one; null when nothing is archived yet.
  returned: success
  type: float
recorded:
  description: Whether the action plugin recorded the archived files in the dbfleet store.
  returned: always
  type: bool
msg:
  description: One line about what was done.
  returned: always
  type: str
'''

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.dbfleet.mysql.plugins.module_utils.binlog_archive import (
    ArchiveError,
    archive_dir,
    archive_pass,
    find_tool,
)
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import read_server
from ansible_collections.dbfleet.mysql.plugins.module_utils.mysql import (
    MYSQL_MUTUALLY_EXCLUSIVE,
    PYMYSQL_IMPORT_ERROR,
    MySQLConnectError,
    describe_target,
    mysql_common_argument_spec,
    mysql_connect,
    pymysql,
    redact,
    write_tls_data,
)


def main():
    argument_spec = mysql_common_argument_spec()
    argument_spec.update(dest=dict(type='path', required=True), name=dict(type='str'))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=MYSQL_MUTUALLY_EXCLUSIVE)
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('PyMySQL'), exception=PYMYSQL_IMPORT_ERROR)
    problem = write_tls_data(module)
    if problem:
        module.fail_json(msg=problem)
    params = module.params
    target = describe_target(params)
    if not os.path.isabs(params['dest']):
        module.fail_json(msg='dest must be an absolute path, got %r' % params['dest'])
    name = params.get('name') or (
        'localhost' if params.get('login_unix_socket') else '%s:%s' % (params['login_host'], params['login_port']))
    if name in ('.', '..') or '/' in name or '\x00' in name or not name.strip():
        module.fail_json(msg='name must be one directory name (no slash, not . or ..), got %r' % name)
    directory = archive_dir(params['dest'], name)
    try:
        connection = mysql_connect(params)
        try:
            server = read_server(connection)
            tool_path = find_tool(module.get_bin_path, server.flavour)
            outcome = archive_pass(params, connection, tool_path, directory, check_mode=module.check_mode)
        finally:
            connection.close()
    except (ArchiveError, MySQLConnectError) as exc:
        module.fail_json(msg=redact('binlog archive of %s failed: %s' % (target, exc), params.get('login_password')))
    except pymysql.err.MySQLError as exc:
        module.fail_json(msg=redact('binlog archive of %s failed: %s' % (target, exc), params.get('login_password')))
    except OSError as exc:
        module.fail_json(msg='binlog archive of %s failed: %s: %s'
                         % (target, getattr(exc, 'filename', None) or directory, exc.strerror or exc))
    for gap in outcome['gaps']:
        module.warn('archive gap before %s: %s' % (gap['file'], gap['detail']))
    if outcome['busy']:
        module.warn(outcome['busy'])
    if module.check_mode:
        msg = 'would archive %d binary log(s) of %s into %s' % (len(outcome['pending']), target, directory)
    else:
        msg = 'archived %d binary log(s) of %s into %s (%d complete, current %s, %d gap(s))' % (
            len(outcome['archived']), target, directory, outcome['complete'], outcome['current_file'],
            len(outcome['gaps']))
    module.exit_json(changed=bool(outcome['archived'] or outcome['pending']), path=directory, msg=msg, **outcome)


if __name__ == '__main__':
    main()
