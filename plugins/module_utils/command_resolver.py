# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every difference between MySQL 5.7 / 8.x and MariaDB that dbfleet cares about, in one place.

Collectors ask a `Dialect` for the statement or column name to use instead of testing the
flavour and version themselves.
"""

from __future__ import annotations

import re

MYSQL = 'mysql'
MARIADB = 'mariadb'
PERCONA = 'percona'

_VERSION_RE = re.compile(r'^(\d+)\.(\d+)\.(\d+)')


class ServerVersion(object):
    """Flavour and version parts from @@version and @@version_comment."""

    def __init__(self, version, version_comment=''):
        self.full = version or ''
        self.comment = version_comment or ''
        match = _VERSION_RE.match(self.full)
        if not match:
            raise ValueError('cannot parse server version %r' % (self.full,))
        self.major, self.minor, self.patch = (int(part) for part in match.groups())
        self.suffix = self.full[match.end():].lstrip('-')
        lowered = (self.full + ' ' + self.comment).lower()
        if 'mariadb' in lowered:
            self.flavour = MARIADB
        elif 'percona' in lowered:
            self.flavour = PERCONA
        else:
            self.flavour = MYSQL

    @property
    def tuple(self):
        return (self.major, self.minor, self.patch)

    @property
    def is_mariadb(self):
        return self.flavour == MARIADB

    def at_least(self, *parts):
        return self.tuple >= tuple(parts)

    def as_facts(self):
        return dict(full=self.full, major=self.major, minor=self.minor, patch=self.patch,
                    suffix=self.suffix, comment=self.comment)


# Canonical key -> column names in the replica status row, newest name first.
# MySQL 8.0.22 renamed Master/Slave columns to Source/Replica; MariaDB kept the old names.
REPLICA_STATUS_COLUMNS = {
    'channel': ('Channel_Name', 'Channel_name', 'Connection_name'),
    'source_host': ('Source_Host', 'Master_Host'),
    'source_port': ('Source_Port', 'Master_Port'),
    'source_user': ('Source_User', 'Master_User'),
    'source_server_id': ('Source_Server_Id', 'Master_Server_Id'),
    'io_state': ('Replica_IO_State', 'Slave_IO_State'),
    'io_running': ('Replica_IO_Running', 'Slave_IO_Running'),
    'sql_running': ('Replica_SQL_Running', 'Slave_SQL_Running'),
    'sql_state': ('Replica_SQL_Running_State', 'Slave_SQL_Running_State'),
    'seconds_behind': ('Seconds_Behind_Source', 'Seconds_Behind_Master'),
    'sql_delay': ('SQL_Delay',),
    'sql_remaining_delay': ('SQL_Remaining_Delay',),
    'last_io_errno': ('Last_IO_Errno',),
    'last_io_error': ('Last_IO_Error',),
    'last_io_error_time': ('Last_IO_Error_Timestamp',),
    'last_sql_errno': ('Last_SQL_Errno',),
    'last_sql_error': ('Last_SQL_Error',),
    'last_sql_error_time': ('Last_SQL_Error_Timestamp',),
    'source_log_file': ('Source_Log_File', 'Master_Log_File'),
    'read_source_log_pos': ('Read_Source_Log_Pos', 'Read_Master_Log_Pos'),
    'relay_source_log_file': ('Relay_Source_Log_File', 'Relay_Master_Log_File'),
    'exec_source_log_pos': ('Exec_Source_Log_Pos', 'Exec_Master_Log_Pos'),
    'using_gtid': ('Using_Gtid',),
    'auto_position': ('Auto_Position',),
    'gtid_io_pos': ('Gtid_IO_Pos',),
    'retrieved_gtid_set': ('Retrieved_Gtid_Set',),
    'executed_gtid_set': ('Executed_Gtid_Set',),
    'parallel_mode': ('Parallel_Mode',),
}

REPLICA_HOSTS_COLUMNS = {
    'server_id': ('Server_Id', 'Server_id'),
    'host': ('Host',),
    'port': ('Port',),
    'source_id': ('Source_Id', 'Master_Id', 'Master_id'),
    'server_uuid': ('Replica_UUID', 'Slave_UUID'),
}


def pick(row, names):
    """The value of the first of `names` present in `row` (None when none is)."""
    for name in names:
        if name in row:
            return row[name]
    return None


def canonical_row(row, columns):
    return dict((key, pick(row, names)) for key, names in columns.items())


class Dialect(object):
    """Statements and variable names for one server flavour and version."""

    def __init__(self, version):
        self.version = version

    @property
    def replica_status(self):
        """Statement listing every replication channel of this server."""
        version = self.version
        if version.is_mariadb:
            # SHOW ALL SLAVES STATUS lists every named connection (multi-source); REPLICAS from 10.5.1.
            return 'SHOW ALL REPLICAS STATUS' if version.at_least(10, 5, 1) else 'SHOW ALL SLAVES STATUS'
        return 'SHOW REPLICA STATUS' if version.at_least(8, 0, 22) else 'SHOW SLAVE STATUS'

    @property
    def replica_hosts(self):
        """Statement listing replicas registered with this server."""
        version = self.version
        if version.is_mariadb:
            return 'SHOW REPLICA HOSTS' if version.at_least(10, 5, 1) else 'SHOW SLAVE HOSTS'
        return 'SHOW REPLICAS' if version.at_least(8, 0, 22) else 'SHOW SLAVE HOSTS'

    @property
    def binary_log_status(self):
        """Statement giving the current binary log file and position."""
        version = self.version
        if version.is_mariadb:
            return 'SHOW BINLOG STATUS' if version.at_least(10, 5, 2) else 'SHOW MASTER STATUS'
        # SHOW MASTER STATUS was deprecated in 8.2 and removed in 8.4.
        return 'SHOW BINARY LOG STATUS' if version.at_least(8, 2, 0) else 'SHOW MASTER STATUS'

    @property
    def binlog_dump_commands(self):
        """Processlist Command values of threads that stream the binlog to a replica."""
        return ('Binlog Dump', 'Binlog Dump GTID')

    @property
    def has_super_read_only(self):
        return not self.version.is_mariadb and self.version.at_least(5, 7, 8)

    @property
    def has_server_uuid(self):
        return not self.version.is_mariadb

    @property
    def innodb_tablespaces_table(self):
        """information_schema table with on-disk InnoDB tablespace sizes."""
        if not self.version.is_mariadb and self.version.at_least(8, 0, 0):
            return 'INNODB_TABLESPACES'
        return 'INNODB_SYS_TABLESPACES'

    @property
    def stats_expiry_variable(self):
        """MySQL 8 caches information_schema table statistics; this session variable turns that off."""
        if not self.version.is_mariadb and self.version.at_least(8, 0, 3):
            return 'information_schema_stats_expiry'
        return None

    def gtid_variables(self):
        if self.version.is_mariadb:
            return ('gtid_domain_id', 'gtid_strict_mode', 'gtid_binlog_pos', 'gtid_slave_pos', 'gtid_current_pos')
        return ('gtid_mode', 'enforce_gtid_consistency', 'gtid_executed', 'gtid_purged')

    def gtid_mode(self, variables):
        """ON / OFF / OFF_PERMISSIVE / ON_PERMISSIVE (MySQL) or ON / OFF (MariaDB, where GTIDs always exist
        but are only in use when a binlog position has been recorded)."""
        if self.version.is_mariadb:
            in_use = bool(variables.get('gtid_binlog_pos') or variables.get('gtid_slave_pos'))
            return 'ON' if in_use else 'OFF'
        return variables.get('gtid_mode') or 'OFF'

    def user_accounts_query(self):
        """Account list with risk indicators, computed server side so password hashes never leave it."""
        role_filter = " WHERE is_role <> 'Y'" if self.version.is_mariadb and self.version.at_least(10, 0, 5) else ''
        return (
            "SELECT User AS user, Host AS host, plugin,"
            " (authentication_string = '' AND plugin NOT IN ('unix_socket', 'auth_socket', 'gssapi', 'pam',"
            " 'auth_pam', 'authentication_pam', 'auth_gssapi_client', 'named_pipe')) AS without_password,"
            " (Super_priv = 'Y') AS has_super"
            " FROM mysql.user" + role_filter
        )
