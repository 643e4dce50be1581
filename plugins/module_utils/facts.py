# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fact collection for one MySQL/MariaDB server, one collector per gather_subset.

`gather(connection, subsets, options)` runs the requested collectors over one connection.
A collector that fails (typically for a missing privilege) records its error under
`errors[subset]` and the others still run. Flavour and version differences come from
command_resolver.Dialect, never from tests here.
"""

from __future__ import annotations

import fnmatch
import re
import socket
import time
from datetime import datetime, timezone

from ansible_collections.dbfleet.mysql.plugins.module_utils.command_resolver import (
    REPLICA_HOSTS_COLUMNS,
    REPLICA_STATUS_COLUMNS,
    Dialect,
    ServerVersion,
    canonical_row,
)

SUBSETS = ('server', 'host', 'replication', 'schemas', 'variables', 'status', 'engines', 'users')
MINIMAL_SUBSETS = frozenset(['server'])
SYSTEM_SCHEMAS = frozenset(['mysql', 'information_schema', 'performance_schema', 'sys'])

# Variables and status counters returned by default; everything with all_variables / all_status.
IMPORTANT_VARIABLES = (
    'innodb_buffer_pool_size', 'innodb_buffer_pool_instances', 'innodb_log_file_size',
    'innodb_flush_log_at_trx_commit', 'innodb_flush_method', 'innodb_file_per_table',
    'innodb_io_capacity', 'max_connections', 'max_allowed_packet', 'max_user_connections',
    'table_open_cache', 'table_definition_cache', 'thread_cache_size', 'open_files_limit',
    'tmp_table_size', 'max_heap_table_size', 'sort_buffer_size', 'join_buffer_size',
    'wait_timeout', 'interactive_timeout', 'long_query_time', 'slow_query_log', 'sql_mode',
    'sync_binlog', 'binlog_expire_logs_seconds', 'expire_logs_days', 'max_binlog_size',
    'transaction_isolation', 'tx_isolation', 'lower_case_table_names', 'default_storage_engine',
    'performance_schema', 'skip_name_resolve', 'event_scheduler', 'query_cache_type', 'query_cache_size',
)
IMPORTANT_STATUS = (
    'Uptime', 'Threads_connected', 'Threads_running', 'Threads_created', 'Threads_cached',
    'Max_used_connections', 'Connections', 'Aborted_connects', 'Aborted_clients', 'Questions',
    'Queries', 'Slow_queries', 'Com_select', 'Com_insert', 'Com_update', 'Com_delete', 'Com_commit',
    'Com_rollback', 'Innodb_buffer_pool_read_requests', 'Innodb_buffer_pool_reads',
    'Innodb_buffer_pool_pages_total', 'Innodb_buffer_pool_pages_free', 'Innodb_buffer_pool_pages_dirty',
    'Innodb_row_lock_waits', 'Innodb_row_lock_time', 'Innodb_deadlocks', 'Open_tables', 'Opened_tables',
    'Created_tmp_tables', 'Created_tmp_disk_tables', 'Bytes_received', 'Bytes_sent',
    'Select_full_join', 'Sort_merge_passes', 'Table_locks_waited',
)


class SubsetError(ValueError):
    """An unknown gather_subset name."""


def resolve_subsets(gather_subset):
    """The set of subsets to gather, with the semantics of ansible.builtin.setup's gather_subset:
    `min` is always added first, `all` adds everything, `name` adds, `!name` excludes (`!all` excludes
    all but min, `!min` excludes min) and explicit additions win over exclusions. (Ansible's own get_collector_names implements this, but
    importing ansible.module_utils.facts loads every platform's fact collectors into the module payload,
    which cost this module more than all its queries.)"""
    valid = frozenset(SUBSETS)
    added, excluded, explicit = set(MINIMAL_SUBSETS), set(), set()
    unknown = []
    for entry in gather_subset or ['all']:
        name = entry[1:] if entry.startswith('!') else entry
        if entry.startswith('!'):
            excluded.update(MINIMAL_SUBSETS if name == 'min' else (valid - MINIMAL_SUBSETS if name == 'all' else [name]))
        elif name == 'all':
            added.update(valid)
        elif name == 'min':
            added.update(MINIMAL_SUBSETS)
        elif name in valid:
            added.add(name)
            explicit.add(name)
        else:
            unknown.append(name)
    if unknown:
        raise SubsetError('unknown gather_subset %s; valid: all, min, %s (prefix with ! to exclude)'
                          % (', '.join(sorted(unknown)), ', '.join(SUBSETS)))
    return added - (excluded - explicit)


def to_number(value):
    """'123' -> 123, '1.5' -> 1.5, anything else unchanged."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode('utf-8', 'replace')
    if isinstance(value, str):
        if re.match(r'^-?\d+$', value):
            return int(value)
        if re.match(r'^-?\d+\.\d+$', value):
            return float(value)
    return value


def on_off(value):
    """MySQL's ON/OFF/1/0/YES/NO -> bool (None stays None)."""
    if value is None:
        return None
    return str(value).upper() in ('ON', '1', 'YES', 'TRUE', 'FORCE')


def iso_utc(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def ratio(part, whole, digits=4):
    if not whole:
        return None
    return round(float(part) / float(whole), digits)


# Variables and status counters the collectors read besides the IMPORTANT_* ones.
SERVER_VARIABLES = (
    'version', 'server_id', 'server_uuid', 'hostname', 'port', 'socket', 'read_only', 'super_read_only', 'datadir',
    'log_bin', 'log_bin_basename', 'binlog_format', 'character_set_server', 'collation_server', 'time_zone',
    'system_time_zone',
)
SERVER_STATUS = ('Uptime',)


class Session(object):
    """One connection plus what every collector needs from it, fetched at most once.

    Global variables and status counters are read once each, and only the names the requested
    subsets use (unless all_variables / all_status ask for everything): a server sends ~1,200 rows
    for the full lists, which cost more than the rest of a small gather."""

    def __init__(self, connection, options, subsets=None):
        self.connection = connection
        self.options = options
        self._variables = None
        self._status = None
        row = self.one('SELECT @@version AS version, @@version_comment AS comment, UNIX_TIMESTAMP() AS now')
        self.version = ServerVersion(row['version'], row['comment'])
        self.dialect = Dialect(self.version)
        self.server_clock = int(row['now'])
        subsets = SUBSETS if subsets is None else subsets
        self._variable_names = None if options.get('all_variables') and 'variables' in subsets else sorted(
            set(SERVER_VARIABLES) | set(self.dialect.gtid_variables()) | set(IMPORTANT_VARIABLES))
        self._status_names = None if options.get('all_status') and 'status' in subsets else sorted(
            set(SERVER_STATUS) | set(IMPORTANT_STATUS if 'status' in subsets else ()))

    def rows(self, sql, args=None):
        with self.connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def one(self, sql, args=None):
        rows = self.rows(sql, args)
        return rows[0] if rows else None

    def _name_value(self, sql, names):
        if names is not None:
            sql += ' WHERE Variable_name IN (%s)' % ', '.join(['%s'] * len(names))
        return dict((row['Variable_name'].lower(), to_number(row['Value'])) for row in self.rows(sql, names))

    @property
    def variables(self):
        if self._variables is None:
            self._variables = self._name_value('SHOW GLOBAL VARIABLES', self._variable_names)
        return self._variables

    @property
    def status(self):
        if self._status is None:
            self._status = self._name_value('SHOW GLOBAL STATUS', self._status_names)
        return self._status


def collect_server(session):
    variables = session.variables
    dialect = session.dialect
    uptime = int(session.status.get('uptime', 0))
    started = session.server_clock - uptime
    gtid = dict((name, variables.get(name)) for name in dialect.gtid_variables())
    return dict(
        flavour=session.version.flavour,
        version=session.version.as_facts(),
        server_id=variables.get('server_id'),
        server_uuid=variables.get('server_uuid') if dialect.has_server_uuid else None,
        hostname=variables.get('hostname'),
        port=variables.get('port'),
        socket=variables.get('socket'),
        uptime_seconds=uptime,
        start_time=iso_utc(started),
        start_epoch=started,
        read_only=on_off(variables.get('read_only')),
        super_read_only=on_off(variables.get('super_read_only')) if dialect.has_super_read_only else None,
        datadir=variables.get('datadir'),
        log_bin=on_off(variables.get('log_bin')),
        log_bin_basename=variables.get('log_bin_basename'),
        binlog_format=variables.get('binlog_format'),
        gtid_mode=dialect.gtid_mode(variables),
        gtid=gtid,
        character_set_server=variables.get('character_set_server'),
        collation_server=variables.get('collation_server'),
        time_zone=variables.get('time_zone'),
        system_time_zone=variables.get('system_time_zone'),
        connection_tls=connection_tls(session.connection),
    )


def connection_tls(connection):
    """{'version', 'cipher'} of the connection's TLS session, None when it is not encrypted."""
    sock = getattr(connection, '_sock', None)
    if not hasattr(sock, 'version') or not hasattr(sock, 'cipher'):
        return None
    cipher = sock.cipher()
    return dict(version=sock.version(), cipher=cipher[0] if cipher else None)


def _read_boot_time():
    """OS boot time of the machine running the module (Linux /proc/stat, else None)."""
    try:
        with open('/proc/stat') as stat:
            for line in stat:
                if line.startswith('btime '):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def collect_host(session):
    boot = _read_boot_time()
    now = int(time.time())
    hostname = socket.gethostname()
    server_hostname = session.variables.get('hostname')
    return dict(
        hostname=hostname,
        fqdn=socket.getfqdn(),
        boot_time=iso_utc(boot) if boot else None,
        boot_epoch=boot,
        uptime_seconds=(now - boot) if boot else None,
        # The OS facts describe the machine the module ran on; they describe the database host
        # only when that is where the server runs.
        is_database_host=bool(server_hostname) and server_hostname.split('.')[0] == hostname.split('.')[0],
        clock_skew_seconds=session.server_clock - now,
    )


def _channel_facts(row):
    channel = canonical_row(row, REPLICA_STATUS_COLUMNS)
    for key in ('source_port', 'source_server_id', 'seconds_behind', 'sql_delay', 'sql_remaining_delay',
                'last_io_errno', 'last_sql_errno', 'read_source_log_pos', 'exec_source_log_pos'):
        channel[key] = to_number(channel[key])
    channel['channel'] = channel['channel'] or ''
    channel['io_running'] = on_off(channel['io_running'])
    channel['sql_running'] = on_off(channel['sql_running'])
    channel['healthy'] = bool(channel['io_running'] and channel['sql_running']
                              and not channel['last_io_errno'] and not channel['last_sql_errno'])
    return channel


def replication_role(has_channels, has_replicas):
    if has_channels:
        return 'relay' if has_replicas else 'replica'
    return 'primary' if has_replicas else 'standalone'


def collect_replication(session):
    dialect = session.dialect
    channels = [_channel_facts(row) for row in session.rows(dialect.replica_status)]
    registered = [canonical_row(row, REPLICA_HOSTS_COLUMNS) for row in session.rows(dialect.replica_hosts)]
    for replica in registered:
        replica['server_id'] = to_number(replica['server_id'])
        replica['port'] = to_number(replica['port'])
    placeholders = ', '.join(['%s'] * len(dialect.binlog_dump_commands))
    dump_threads = session.rows(
        'SELECT ID AS id, USER AS user, HOST AS host, COMMAND AS command, TIME AS seconds'
        ' FROM information_schema.PROCESSLIST WHERE COMMAND IN (%s)' % placeholders,
        list(dialect.binlog_dump_commands))
    connected = [dict(host=(row['host'] or '').rsplit(':', 1)[0], user=row['user'], thread_id=row['id'],
                      seconds=row['seconds']) for row in dump_threads]
    has_replicas = bool(connected or registered)
    lags = [channel['seconds_behind'] for channel in channels]
    binlog = session.rows(dialect.binary_log_status) if on_off(session.variables.get('log_bin')) else []
    return dict(
        role=replication_role(bool(channels), has_replicas),
        is_replica=bool(channels),
        channels=channels,
        channel_count=len(channels),
        # None when a channel's SQL thread is stopped: lag is then unknown, not zero.
        lag_seconds=None if not channels or None in lags else max(lags),
        all_channels_healthy=all(channel['healthy'] for channel in channels) if channels else None,
        replicas=registered,
        connected_replicas=connected,
        replica_count=max(len(connected), len(registered)),
        binary_log=dict(file=binlog[0].get('File'), position=to_number(binlog[0].get('Position'))) if binlog else None,
    )


_FILENAME_ESCAPE = re.compile(r'@([0-9a-fA-F]{4})')


def decode_tablespace_name(name):
    """InnoDB tablespace 'sch@002dema/table' -> ('sch-ema', 'table')."""
    if '/' not in name:
        return None, None
    schema, table = name.split('/', 1)
    return _decode_filename(schema), _decode_filename(table.split('#')[0])


def _decode_filename(text):
    return _FILENAME_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)


def _like(pattern):
    """A shell pattern as SQL LIKE (None when it has a [class], which LIKE cannot say)."""
    if '[' in pattern:
        return None
    escaped = pattern.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')
    return escaped.replace('*', '%').replace('?', '_')


def _schema_condition(column, patterns):
    """SQL condition (with its arguments) selecting user schemas that may match `patterns`; the exact
    match is still _schema_selected's, this only lets the server skip what cannot match."""
    system = sorted(SYSTEM_SCHEMAS)
    where = '%s NOT IN (%s)' % (column, ', '.join(['%s'] * len(system)))
    args = list(system)
    likes = [_like(pattern) for pattern in patterns]
    if likes and None not in likes:
        where += ' AND (%s)' % ' OR '.join(['%s LIKE %%s' % column] * len(likes))
        args.extend(likes)
    return where, args


def _schema_selected(name, patterns):
    return not patterns or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def collect_schemas(session):
    options = session.options
    exact = options.get('schema_sizes') == 'exact'
    dialect = session.dialect
    if exact and dialect.stats_expiry_variable:
        session.rows('SET SESSION %s = 0' % dialect.stats_expiry_variable)
    patterns = options.get('schema_filter') or []
    where, args = _schema_condition('TABLE_SCHEMA', patterns)
    schemas = session.rows('SELECT SCHEMA_NAME AS name, DEFAULT_CHARACTER_SET_NAME AS charset'
                           ' FROM information_schema.SCHEMATA WHERE %s' % where.replace('TABLE_SCHEMA', 'SCHEMA_NAME'),
                           args)
    # information_schema.TABLES costs a table open per table it reports: the WHERE on TABLE_SCHEMA lets
    # the server skip system schemas and, with schema_filter, every schema that cannot match.
    tables = session.rows(
        'SELECT TABLE_SCHEMA AS name, ENGINE AS engine, COUNT(*) AS tables,'
        ' COALESCE(SUM(DATA_LENGTH), 0) AS data_bytes, COALESCE(SUM(INDEX_LENGTH), 0) AS index_bytes,'
        ' COALESCE(SUM(DATA_FREE), 0) AS free_bytes, COALESCE(SUM(TABLE_ROWS), 0) AS rows_estimate'
        " FROM information_schema.TABLES WHERE %s AND TABLE_TYPE = 'BASE TABLE' GROUP BY TABLE_SCHEMA, ENGINE" % where,
        args)
    items = {}
    for row in schemas:
        if _schema_selected(row['name'], patterns):
            items[row['name']] = dict(tables=0, data_bytes=0, index_bytes=0, total_bytes=0, free_bytes=0,
                                      rows_estimate=0, charset=row['charset'], engines={})
    for row in tables:
        item = items.get(row['name'])
        if item is None:
            continue
        data, index = int(row['data_bytes']), int(row['index_bytes'])
        item['tables'] += int(row['tables'])
        item['data_bytes'] += data
        item['index_bytes'] += index
        item['total_bytes'] += data + index
        item['free_bytes'] += int(row['free_bytes'])
        item['rows_estimate'] += int(row['rows_estimate'])
        if row['engine']:
            item['engines'][row['engine']] = dict(tables=int(row['tables']), bytes=data + index)
    if exact:
        _add_disk_bytes(session, items)
    totals = dict(schemas=len(items), tables=sum(s['tables'] for s in items.values()),
                  data_bytes=sum(s['data_bytes'] for s in items.values()),
                  index_bytes=sum(s['index_bytes'] for s in items.values()))
    totals['total_bytes'] = totals['data_bytes'] + totals['index_bytes']
    if exact:
        totals['disk_bytes'] = sum(s['disk_bytes'] for s in items.values())
    return dict(mode='exact' if exact else 'estimate', items=items, totals=totals,
                largest=max(items, key=lambda name: items[name]['total_bytes']) if items else None)


def _add_disk_bytes(session, items):
    """Exact mode: bytes allocated on disk by file-per-table InnoDB tablespaces, plus the
    data and index length of tables of other engines, whose lengths are exact already."""
    table = session.dialect.innodb_tablespaces_table
    allocated = {}
    for row in session.rows('SELECT NAME AS name, FILE_SIZE AS file_size, ALLOCATED_SIZE AS allocated'
                            ' FROM information_schema.%s' % table):
        schema, _table = decode_tablespace_name(row['name'] or '')
        if schema in items:
            size = row['allocated'] or row['file_size'] or 0
            allocated[schema] = allocated.get(schema, 0) + int(size)
    for name, schema in items.items():
        other = sum(engine['bytes'] for engine_name, engine in schema['engines'].items() if engine_name != 'InnoDB')
        schema['disk_bytes'] = allocated.get(name, 0) + other


def _selected(mapping, names):
    return dict((name, mapping[name]) for name in names if name in mapping)


def collect_variables(session):
    variables = session.variables
    if session.options.get('all_variables'):
        return dict(variables)
    selected = _selected(variables, [name.lower() for name in IMPORTANT_VARIABLES])
    selected['version'] = variables.get('version')
    return selected


def collect_status(session):
    status = session.status
    variables = session.variables
    facts = dict(status) if session.options.get('all_status') else _selected(
        status, [name.lower() for name in IMPORTANT_STATUS])
    read_requests = status.get('innodb_buffer_pool_read_requests') or 0
    disk_reads = status.get('innodb_buffer_pool_reads') or 0
    uptime = status.get('uptime') or 0
    facts['derived'] = dict(
        buffer_pool_hit_ratio=round(1 - float(disk_reads) / read_requests, 6) if read_requests else None,
        connections_used_ratio=ratio(status.get('max_used_connections', 0), variables.get('max_connections')),
        threads_connected_ratio=ratio(status.get('threads_connected', 0), variables.get('max_connections')),
        questions_per_second=round(float(status.get('questions', 0)) / uptime, 3) if uptime else None,
        slow_queries_per_hour=round(float(status.get('slow_queries', 0)) * 3600 / uptime, 3) if uptime else None,
        aborted_connects_ratio=ratio(status.get('aborted_connects', 0), status.get('connections')),
        tmp_disk_tables_ratio=ratio(status.get('created_tmp_disk_tables', 0), status.get('created_tmp_tables')),
    )
    return facts


def collect_engines(session):
    engines = {}
    default = None
    for row in session.rows('SHOW ENGINES'):
        support = (row.get('Support') or '').upper()
        engines[row['Engine']] = dict(support=support, transactions=on_off(row.get('Transactions')),
                                      xa=on_off(row.get('XA')), savepoints=on_off(row.get('Savepoints')),
                                      comment=row.get('Comment'))
        if support == 'DEFAULT':
            default = row['Engine']
    return dict(default=default, available=sorted(name for name, engine in engines.items()
                                                  if engine['support'] in ('YES', 'DEFAULT')), engines=engines)


def collect_users(session):
    accounts = session.rows(session.dialect.user_accounts_query())

    def name(row):
        return '%s@%s' % (row['user'], row['host'])
    without_password = sorted(name(row) for row in accounts if row['without_password'])
    wildcard = sorted(name(row) for row in accounts if '%' in (row['host'] or ''))
    anonymous = sorted(name(row) for row in accounts if not row['user'])
    superusers = sorted(name(row) for row in accounts if row['has_super'])
    plugins = {}
    for row in accounts:
        plugins[row['plugin'] or ''] = plugins.get(row['plugin'] or '', 0) + 1
    return dict(
        count=len(accounts),
        without_password=without_password, without_password_count=len(without_password),
        wildcard_host=wildcard, wildcard_host_count=len(wildcard),
        anonymous=anonymous, anonymous_count=len(anonymous),
        super=superusers, super_count=len(superusers),
        auth_plugins=plugins,
    )


COLLECTORS = dict(
    server=collect_server,
    host=collect_host,
    replication=collect_replication,
    schemas=collect_schemas,
    variables=collect_variables,
    status=collect_status,
    engines=collect_engines,
    users=collect_users,
)


def gather(connection, subsets, options, error_type=Exception):
    """Run the collectors for `subsets`; each failure is kept under errors[subset]."""
    started = time.time()
    session = Session(connection, options, subsets)
    facts = dict(errors={})
    for subset in SUBSETS:
        if subset not in subsets:
            continue
        try:
            facts[subset] = COLLECTORS[subset](session)
        except error_type as exc:
            facts[subset] = None
            facts['errors'][subset] = describe_error(exc)
    facts['gathered_subsets'] = sorted(subsets)
    facts['collected_at'] = iso_utc(time.time())
    facts['collection_seconds'] = round(time.time() - started, 4)
    return facts


def describe_error(exc):
    args = getattr(exc, 'args', ())
    if len(args) >= 2 and isinstance(args[0], int):
        return 'MySQL error %s: %s' % (args[0], args[1])
    return str(exc) or exc.__class__.__name__
