"""Statement and column names per server flavour and version (module_utils/command_resolver.py)."""

import pytest
from ansible_collections.dbfleet.mysql.plugins.module_utils.command_resolver import (
    REPLICA_STATUS_COLUMNS,
    Dialect,
    ServerVersion,
    canonical_row,
)

# (@@version, @@version_comment, flavour, replica status, replica hosts, binary log status, super_read_only)
VERSIONS = [
    ('5.7.44-log', 'MySQL Community Server (GPL)', 'mysql',
     'SHOW SLAVE STATUS', 'SHOW SLAVE HOSTS', 'SHOW MASTER STATUS', True),
    ('5.7.44-48', 'Percona Server (GPL), Release 48', 'percona',
     'SHOW SLAVE STATUS', 'SHOW SLAVE HOSTS', 'SHOW MASTER STATUS', True),
    ('8.0.21', 'MySQL Community Server - GPL', 'mysql',
     'SHOW SLAVE STATUS', 'SHOW SLAVE HOSTS', 'SHOW MASTER STATUS', True),
    ('8.0.22', 'MySQL Community Server - GPL', 'mysql',
     'SHOW REPLICA STATUS', 'SHOW REPLICAS', 'SHOW MASTER STATUS', True),
    ('8.0.36-28', 'Percona Server (GPL), Release 28', 'percona',
     'SHOW REPLICA STATUS', 'SHOW REPLICAS', 'SHOW MASTER STATUS', True),
    ('8.2.0', 'MySQL Community Server - GPL', 'mysql',
     'SHOW REPLICA STATUS', 'SHOW REPLICAS', 'SHOW BINARY LOG STATUS', True),
    ('8.4.3', 'MySQL Community Server - GPL', 'mysql',
     'SHOW REPLICA STATUS', 'SHOW REPLICAS', 'SHOW BINARY LOG STATUS', True),
    ('9.1.0', 'MySQL Community Server - GPL', 'mysql',
     'SHOW REPLICA STATUS', 'SHOW REPLICAS', 'SHOW BINARY LOG STATUS', True),
    ('10.4.34-MariaDB-log', 'MariaDB Server', 'mariadb',
     'SHOW ALL SLAVES STATUS', 'SHOW SLAVE HOSTS', 'SHOW MASTER STATUS', False),
    ('10.5.27-MariaDB', 'MariaDB Server', 'mariadb',
     'SHOW ALL REPLICAS STATUS', 'SHOW REPLICA HOSTS', 'SHOW BINLOG STATUS', False),
    ('10.11.19-MariaDB-0+deb12u1', 'Debian 12', 'mariadb',
     'SHOW ALL REPLICAS STATUS', 'SHOW REPLICA HOSTS', 'SHOW BINLOG STATUS', False),
    ('11.4.4-MariaDB-ubu2404', 'mariadb.org binary distribution', 'mariadb',
     'SHOW ALL REPLICAS STATUS', 'SHOW REPLICA HOSTS', 'SHOW BINLOG STATUS', False),
]


@pytest.mark.parametrize('version,comment,flavour,replica_status,replica_hosts,binlog_status,super_ro', VERSIONS)
def test_statements_per_version(version, comment, flavour, replica_status, replica_hosts, binlog_status, super_ro):
    server = ServerVersion(version, comment)
    dialect = Dialect(server)
    assert server.flavour == flavour
    assert dialect.replica_status == replica_status
    assert dialect.replica_hosts == replica_hosts
    assert dialect.binary_log_status == binlog_status
    assert dialect.has_super_read_only is super_ro
    assert dialect.has_server_uuid is (flavour != 'mariadb')


def test_version_parts():
    server = ServerVersion('10.11.19-MariaDB-0+deb12u1', 'Debian 12')
    assert server.tuple == (10, 11, 19)
    assert server.suffix == 'MariaDB-0+deb12u1'
    assert server.as_facts()['comment'] == 'Debian 12'


def test_unparseable_version_is_an_error():
    with pytest.raises(ValueError, match='cannot parse server version'):
        ServerVersion('garbage')


@pytest.mark.parametrize('version,table,expiry', [
    ('5.7.44', 'INNODB_SYS_TABLESPACES', None),
    ('8.0.36', 'INNODB_TABLESPACES', 'information_schema_stats_expiry'),
    ('10.11.6-MariaDB', 'INNODB_SYS_TABLESPACES', None),
])
def test_schema_size_sources(version, table, expiry):
    dialect = Dialect(ServerVersion(version))
    assert dialect.innodb_tablespaces_table == table
    assert dialect.stats_expiry_variable == expiry


def test_gtid_mode_mysql_and_mariadb():
    assert Dialect(ServerVersion('8.0.36')).gtid_mode({'gtid_mode': 'ON_PERMISSIVE'}) == 'ON_PERMISSIVE'
    mariadb = Dialect(ServerVersion('10.11.6-MariaDB'))
    assert mariadb.gtid_mode({'gtid_binlog_pos': '0-1-42', 'gtid_slave_pos': ''}) == 'ON'
    assert mariadb.gtid_mode({'gtid_binlog_pos': '', 'gtid_slave_pos': ''}) == 'OFF'


def test_user_query_never_selects_the_hash():
    for version in ('5.7.44', '8.4.3', '10.11.6-MariaDB'):
        query = Dialect(ServerVersion(version)).user_accounts_query()
        select_list = query.split(' FROM ', maxsplit=1)[0]
        # authentication_string is only compared server side, never returned.
        assert "authentication_string = ''" in select_list
        assert 'authentication_string,' not in select_list and 'Password' not in select_list


MYSQL_84_ROW = {
    'Channel_Name': 'east', 'Source_Host': 'db1', 'Source_Port': 3306, 'Replica_IO_Running': 'Yes',
    'Replica_SQL_Running': 'No', 'Seconds_Behind_Source': None, 'Last_SQL_Errno': 1062,
    'Retrieved_Gtid_Set': 'uuid:1-10', 'Executed_Gtid_Set': 'uuid:1-9', 'Auto_Position': 1,
}
MARIADB_ROW = {
    'Connection_name': 'east', 'Master_Host': 'db1', 'Master_Port': 3306, 'Slave_IO_Running': 'Yes',
    'Slave_SQL_Running': 'No', 'Seconds_Behind_Master': None, 'Last_SQL_Errno': 1062,
    'Gtid_IO_Pos': '0-1-10', 'Using_Gtid': 'Slave_Pos',
}
MYSQL_57_ROW = {
    'Channel_Name': 'east', 'Master_Host': 'db1', 'Master_Port': 3306, 'Slave_IO_Running': 'Yes',
    'Slave_SQL_Running': 'No', 'Seconds_Behind_Master': None, 'Last_SQL_Errno': 1062,
    'Retrieved_Gtid_Set': 'uuid:1-10', 'Executed_Gtid_Set': 'uuid:1-9', 'Auto_Position': 1,
}


@pytest.mark.parametrize('row', [MYSQL_84_ROW, MARIADB_ROW, MYSQL_57_ROW], ids=['mysql-8.4', 'mariadb', 'mysql-5.7'])
def test_replica_columns_are_canonical(row):
    channel = canonical_row(row, REPLICA_STATUS_COLUMNS)
    assert channel['channel'] == 'east'
    assert channel['source_host'] == 'db1'
    assert channel['source_port'] == 3306
    assert channel['io_running'] == 'Yes' and channel['sql_running'] == 'No'
    assert channel['seconds_behind'] is None
    assert channel['last_sql_errno'] == 1062
    assert set(channel) == set(REPLICA_STATUS_COLUMNS)
