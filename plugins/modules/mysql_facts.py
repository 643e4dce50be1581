#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: mysql_facts
short_description: Gather facts about a MySQL, MariaDB or Percona server
version_added: 0.1.0
description:
  - Connects to one MySQL/MariaDB/Percona server and returns what it is under C(ansible_facts.mysql) -
    flavour and version, uptime, replication role and lag, schema sizes, key variables and status
    counters, engines, account risk indicators, and the uptime of the machine the module runs on.
  - Each subset is gathered independently; a subset that fails (for example for a missing privilege)
    reports its error under C(ansible_facts.mysql.errors) and the other subsets are still returned.
  - Password hashes are never read; account risk indicators are computed by the server.
  - Differences between MySQL 5.7, 8.0, 8.2+, 8.4 and MariaDB 10.5+ (C(SHOW REPLICA STATUS),
    C(SHOW ALL REPLICAS STATUS), C(SHOW BINARY LOG STATUS), renamed columns) are handled by the module.
author:
  - dbfleet developers (@dbfleet)
extends_documentation_fragment:
  - dbfleet.mysql.mysql
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: The module changes nothing.
  facts:
    support: full
    description: Facts are returned under C(ansible_facts.mysql).
options:
  gather_subset:
    description:
      - What to gather, with the semantics of M(ansible.builtin.setup)'s O(ansible.builtin.setup#module:gather_subset).
      - C(all) gathers every subset; a name adds that subset; C(!name) excludes it; C(!all) leaves only C(min).
      - C(min) is C(server), which is always gathered unless excluded with C(!min).
      - Subsets are C(server), C(host), C(replication), C(schemas), C(variables), C(status), C(engines), C(users).
    type: list
    elements: str
    default: [all]
  schema_sizes:
    description:
      - C(estimate) sums C(information_schema.TABLES) (fast; InnoDB statistics are estimates).
      - C(exact) also reads the bytes InnoDB tablespaces occupy on disk and, on MySQL 8, bypasses the cached
        table statistics (C(information_schema_stats_expiry=0)); slower on servers with many tables.
    type: str
    choices: [estimate, exact]
    default: estimate
  schema_filter:
    description:
      - Shell-style patterns (C(shop_*)); only matching schemas are reported. Default is every user schema.
      - System schemas (C(mysql), C(information_schema), C(performance_schema), C(sys)) are always excluded.
    type: list
    elements: str
    default: []
  all_variables:
    description:
      - Return every global variable instead of the important ones.
    type: bool
    default: false
  all_status:
    description:
      - Return every global status counter instead of the important ones.
    type: bool
    default: false
seealso:
  - module: community.mysql.mysql_info
notes:
  - Least privilege for every subset on MariaDB 10.5+ is C(PROCESS), C(SLAVE MONITOR), C(BINLOG MONITOR),
    C(REPLICATION MASTER ADMIN) (the only privilege that allows C(SHOW REPLICA HOSTS)), C(SHOW VIEW) on C(*.*)
    (to see every table in C(information_schema.TABLES) without reading rows) and, for C(users), C(SELECT) on the
    columns C(User), C(Host), C(plugin), C(authentication_string), C(Super_priv), C(is_role) of C(mysql.user);
    see C(devtools/fleet/README.md) in the dbfleet repository.
'''

EXAMPLES = r'''
- name: Gather every fact
  dbfleet.mysql.mysql_facts:
    login_host: db1.example.com
    login_user: monitor
    login_password: "{{ vault_monitor_password }}"

- name: Only what a backup plan needs
  dbfleet.mysql.mysql_facts:
    login_unix_socket: /run/mysqld/mysqld.sock
    gather_subset: [replication, schemas]

- name: Everything except accounts, with on-disk sizes
  dbfleet.mysql.mysql_facts:
    gather_subset: ['all', '!users']
    schema_sizes: exact

- name: Use the facts
  ansible.builtin.debug:
    msg: "{{ ansible_facts.mysql.server.version.full }} is a {{ ansible_facts.mysql.replication.role }}"
'''

RETURN = r'''
ansible_facts:
  description: Facts about the server.
  returned: always
  type: complex
  contains:
    mysql:
      description: Everything gathered, by subset. A subset not gathered is absent; one that failed is null.
      returned: always
      type: complex
      contains:
        gathered_subsets:
          description: The subsets that were requested after resolving O(gather_subset).
          returned: always
          type: list
          elements: str
          sample: [engines, host, replication, schemas, server, status, users, variables]
        errors:
          description: Per subset, why it could not be gathered (usually a missing privilege).
          returned: always
          type: dict
          sample: {users: "MySQL error 1142: SELECT command denied to user 'monitor'@'localhost' for table 'user'"}
        collected_at:
          description: When the facts were collected (UTC, ISO 8601).
          returned: always
          type: str
          sample: '2026-11-27T03:00:00Z'
        collection_seconds:
          description: Time spent collecting, connection excluded.
          returned: always
          type: float
          sample: 0.012
        target:
          description: Where the module connected.
          returned: always
          type: dict
          sample: {host: 127.0.0.1, port: 3306, socket: null}
        server:
          description: Identity and state of the server.
          returned: when gathered
          type: complex
          contains:
            flavour:
              description: C(mysql), C(mariadb) or C(percona).
              type: str
              returned: success
              sample: mariadb
            version:
              description: Version parts; C(full) is C(@@version), C(comment) is C(@@version_comment).
              type: dict
              returned: success
              sample: {full: 10.11.6-MariaDB-log, major: 10, minor: 11, patch: 6, suffix: MariaDB-log, comment: Debian 12}
            server_id:
              description: C(@@server_id).
              type: int
              returned: success
            server_uuid:
              description: C(@@server_uuid) (MySQL and Percona; null on MariaDB, which has none).
              type: str
              returned: success
            hostname:
              description: C(@@hostname), the host name as the server sees it.
              type: str
              returned: success
            port:
              description: C(@@port).
              type: int
              returned: success
            socket:
              description: C(@@socket).
              type: str
              returned: success
            uptime_seconds:
              description: Seconds since mysqld started (status C(Uptime)).
              type: int
              returned: success
            start_time:
              description: When mysqld started, by the server's clock (UTC, ISO 8601).
              type: str
              returned: success
            start_epoch:
              description: When mysqld started, seconds since the epoch.
              type: int
              returned: success
            read_only:
              description: C(@@read_only).
              type: bool
              returned: success
            super_read_only:
              description: C(@@super_read_only) (null where the server has no such variable).
              type: bool
              returned: success
            datadir:
              description: C(@@datadir).
              type: str
              returned: success
            log_bin:
              description: Whether the binary log is on.
              type: bool
              returned: success
            log_bin_basename:
              description: C(@@log_bin_basename).
              type: str
              returned: success
            binlog_format:
              description: C(@@binlog_format).
              type: str
              returned: success
            gtid_mode:
              description: MySQL's C(@@gtid_mode); on MariaDB C(ON) when GTID positions are recorded, else C(OFF).
              type: str
              returned: success
            gtid:
              description: The server's GTID variables (MySQL C(gtid_executed), C(gtid_purged)...; MariaDB C(gtid_binlog_pos), C(gtid_slave_pos)...).
              type: dict
              returned: success
            character_set_server:
              description: C(@@character_set_server).
              type: str
              returned: success
            collation_server:
              description: C(@@collation_server).
              type: str
              returned: success
            time_zone:
              description: C(@@time_zone).
              type: str
              returned: success
            system_time_zone:
              description: C(@@system_time_zone).
              type: str
              returned: success
            connection_tls:
              description:
                - TLS of the module's own connection to the server, V(null) when the connection is not encrypted.
                - Without I(ca_cert) the module uses TLS whenever the server offers it, unverified, as PyMySQL does.
              type: dict
              returned: success
              contains:
                version:
                  description: Protocol version, for example V(TLSv1.3).
                  type: str
                cipher:
                  description: Cipher suite name.
                  type: str
        host:
          description: The machine the module ran on.
          returned: when gathered
          type: complex
          contains:
            hostname:
              description: Short host name of the machine running the module.
              type: str
              returned: success
            fqdn:
              description: Fully qualified name of that machine.
              type: str
              returned: success
            boot_time:
              description: When its OS booted (UTC, ISO 8601); null where unknown.
              type: str
              returned: success
            boot_epoch:
              description: OS boot time in seconds since the epoch.
              type: int
              returned: success
            uptime_seconds:
              description: Seconds since the OS booted.
              type: int
              returned: success
            is_database_host:
              description:
                - Whether the module ran on the machine the server runs on (C(@@hostname) matches),
                  that is whether the OS facts describe the database host.
              type: bool
              returned: success
            clock_skew_seconds:
              description: Server clock minus this machine's clock.
              type: int
              returned: success
        replication:
          description: Replication topology as seen from this server.
          returned: when gathered
          type: complex
          contains:
            role:
              description: C(primary) (has replicas), C(replica) (replicates), C(relay) (both) or C(standalone).
              type: str
              returned: success
              sample: replica
            is_replica:
              description: Whether the server has at least one replication channel.
              type: bool
              returned: success
            channel_count:
              description: Number of replication channels (MariaDB multi-source connections, MySQL channels).
              type: int
              returned: success
            lag_seconds:
              description: Largest C(Seconds_Behind_Source) over channels; null when not a replica or when a channel's SQL thread is stopped.
              type: int
              returned: success
            all_channels_healthy:
              description: Whether every channel's IO and SQL threads run without error; null when not a replica.
              type: bool
              returned: success
            channels:
              description: One entry per replication channel, with canonical names whatever the server version.
              type: list
              elements: dict
              returned: success
              contains:
                channel:
                  description: Channel (MySQL) or connection (MariaDB) name; empty for the default one.
                  type: str
                source_host:
                  description: Host the channel replicates from.
                  type: str
                source_port:
                  description: Port the channel replicates from.
                  type: int
                source_user:
                  description: Replication user.
                  type: str
                source_server_id:
                  description: C(server_id) of the source.
                  type: int
                io_state:
                  description: State of the IO thread.
                  type: str
                io_running:
                  description: Whether the IO (receiver) thread runs.
                  type: bool
                sql_running:
                  description: Whether the SQL (applier) thread runs.
                  type: bool
                sql_state:
                  description: State of the SQL thread.
                  type: str
                seconds_behind:
                  description: C(Seconds_Behind_Source) / C(Seconds_Behind_Master); null when unknown.
                  type: int
                sql_delay:
                  description: Configured delay in seconds.
                  type: int
                sql_remaining_delay:
                  description: Seconds left of the delay for the current event.
                  type: int
                last_io_errno:
                  description: Last IO thread error number.
                  type: int
                last_io_error:
                  description: Last IO thread error.
                  type: str
                last_io_error_time:
                  description: When the last IO error happened.
                  type: str
                last_sql_errno:
                  description: Last SQL thread error number.
                  type: int
                last_sql_error:
                  description: Last SQL thread error.
                  type: str
                last_sql_error_time:
                  description: When the last SQL error happened.
                  type: str
                source_log_file:
                  description: Source binary log being read.
                  type: str
                read_source_log_pos:
                  description: Position read in it.
                  type: int
                relay_source_log_file:
                  description: Source binary log of the last applied event.
                  type: str
                exec_source_log_pos:
                  description: Position applied in it.
                  type: int
                using_gtid:
                  description: MariaDB C(Using_Gtid) (C(No), C(Slave_Pos), C(Current_Pos)).
                  type: str
                auto_position:
                  description: MySQL C(Auto_Position).
                  type: int
                gtid_io_pos:
                  description: MariaDB GTID position received.
                  type: str
                retrieved_gtid_set:
                  description: MySQL GTID set received.
                  type: str
                executed_gtid_set:
                  description: MySQL GTID set executed.
                  type: str
                parallel_mode:
                  description: MariaDB parallel replication mode.
                  type: str
                healthy:
                  description: Both threads run and neither reports an error.
                  type: bool
            replicas:
              description: Replicas registered with this server (C(SHOW REPLICAS) / C(SHOW REPLICA HOSTS)).
              type: list
              elements: dict
              returned: success
              sample: [{server_id: 2, host: '', port: 3306, source_id: 1, server_uuid: null}]
            connected_replicas:
              description: Threads currently sending the binary log to a replica.
              type: list
              elements: dict
              returned: success
              sample: [{host: 127.0.0.1, user: repl, thread_id: 12, seconds: 360}]
            replica_count:
              description: Number of replicas attached.
              type: int
              returned: success
            binary_log:
              description: Current binary log file and position; null when the binary log is off.
              type: dict
              returned: success
              sample: {file: mysql-bin.000003, position: 1234}
        schemas:
          description: User schemas and their sizes (system schemas excluded).
          returned: when gathered
          type: complex
          contains:
            mode:
              description: C(estimate) or C(exact), from O(schema_sizes).
              type: str
              returned: success
            largest:
              description: Name of the largest schema; null when there is none.
              type: str
              returned: success
            items:
              description:
                - Per schema C(tables), C(data_bytes), C(index_bytes), C(total_bytes), C(free_bytes), C(rows_estimate),
                  C(charset), C(engines) (tables and bytes per engine) and, in exact mode, C(disk_bytes).
              type: dict
              returned: success
              sample:
                shop: {tables: 3, data_bytes: 24117248, index_bytes: 1589248, total_bytes: 25706496, free_bytes: 4194304,
                       rows_estimate: 100000, charset: utf8mb4, engines: {InnoDB: {tables: 3, bytes: 25706496}}}
            totals:
              description:
                - Sums over the reported schemas (C(schemas), C(tables), C(data_bytes), C(index_bytes), C(total_bytes),
                  and C(disk_bytes) in exact mode).
              type: dict
              returned: success
              sample: {schemas: 3, tables: 9, data_bytes: 30000000, index_bytes: 2000000, total_bytes: 32000000}
        variables:
          description: Important global variables (every one with O(all_variables)), names in lower case, numbers as numbers.
          returned: when gathered
          type: dict
          sample: {innodb_buffer_pool_size: 134217728, max_connections: 151, version: 10.11.6-MariaDB}
        status:
          description: Important global status counters (every one with O(all_status)), names in lower case, plus C(derived) ratios.
          returned: when gathered
          type: complex
          contains:
            derived:
              description:
                - C(buffer_pool_hit_ratio), C(connections_used_ratio), C(threads_connected_ratio), C(questions_per_second),
                  C(slow_queries_per_hour), C(aborted_connects_ratio), C(tmp_disk_tables_ratio) (null when undefined).
              type: dict
              returned: success
              sample: {buffer_pool_hit_ratio: 0.9991, connections_used_ratio: 0.05}
        engines:
          description: Storage engines.
          returned: when gathered
          type: complex
          contains:
            default:
              description: The default storage engine.
              type: str
              returned: success
              sample: InnoDB
            available:
              description: Engines that can be used.
              type: list
              elements: str
              returned: success
            engines:
              description: Per engine C(support), C(transactions), C(xa), C(savepoints), C(comment).
              type: dict
              returned: success
        users:
          description: Account counts and risk indicators (never password hashes). Accounts are C(user@host).
          returned: when gathered
          type: complex
          contains:
            count:
              description: Number of accounts (roles excluded).
              type: int
              returned: success
            without_password:
              description: Accounts that log in with an empty password (socket-authenticated accounts are not counted).
              type: list
              elements: str
              returned: success
            without_password_count:
              description: Their number.
              type: int
              returned: success
            wildcard_host:
              description: Accounts whose host contains C(%).
              type: list
              elements: str
              returned: success
            wildcard_host_count:
              description: Their number.
              type: int
              returned: success
            anonymous:
              description: Accounts with an empty user name.
              type: list
              elements: str
              returned: success
            anonymous_count:
              description: Their number.
              type: int
              returned: success
            super:
              description: Accounts holding C(SUPER).
              type: list
              elements: str
              returned: success
            super_count:
              description: Their number.
              type: int
              returned: success
            auth_plugins:
              description: Number of accounts per authentication plugin.
              type: dict
              returned: success
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.dbfleet.mysql.plugins.module_utils.facts import SubsetError, gather, resolve_subsets
from ansible_collections.dbfleet.mysql.plugins.module_utils.mysql import (
    PYMYSQL_IMPORT_ERROR,
    MySQLConnectError,
    MYSQL_MUTUALLY_EXCLUSIVE,
    mysql_common_argument_spec,
    mysql_connect,
    write_tls_data,
    pymysql,
)


def main():
    argument_spec = mysql_common_argument_spec()
    argument_spec.update(
        gather_subset=dict(type='list', elements='str', default=['all']),
        schema_sizes=dict(type='str', choices=['estimate', 'exact'], default='estimate'),
        schema_filter=dict(type='list', elements='str', default=[]),
        all_variables=dict(type='bool', default=False),
        all_status=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=MYSQL_MUTUALLY_EXCLUSIVE)
    if PYMYSQL_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('PyMySQL'), exception=PYMYSQL_IMPORT_ERROR)
    problem = write_tls_data(module)
    if problem:
        module.fail_json(msg=problem)

    try:
        subsets = resolve_subsets(module.params['gather_subset'])
    except SubsetError as exc:
        module.fail_json(msg=str(exc))

    try:
        connection = mysql_connect(module.params)
    except MySQLConnectError as exc:
        module.fail_json(msg=str(exc))

    try:
        facts = gather(connection, subsets, module.params, error_type=pymysql.err.MySQLError)
    except pymysql.err.MySQLError as exc:
        # Only the first query, which every subset needs, can end here.
        module.fail_json(msg='cannot read the server version from %s: %s' % (
            module.params.get('login_unix_socket') or '%s:%s' % (module.params['login_host'], module.params['login_port']),
            exc))
    finally:
        connection.close()

    facts['target'] = dict(host=None if module.params.get('login_unix_socket') else module.params['login_host'],
                           port=None if module.params.get('login_unix_socket') else module.params['login_port'],
                           socket=module.params.get('login_unix_socket'))
    module.exit_json(changed=False, ansible_facts=dict(mysql=facts))


if __name__ == '__main__':
    main()
