"""What the local fleet contains: accounts, grants, schemas and data, as SQL statements.

Every statement is idempotent (CREATE OR REPLACE, DROP ... IF EXISTS), so a seed interrupted
half-way, or replayed by a replica that already holds an older copy, converges to the same state.
The harness (harness.py) decides where and when each list runs.
"""

from __future__ import annotations

# Bump when anything below changes: start() then re-seeds instances carrying an older version.
SEED_VERSION = 2

MARKER_SCHEMA = 'dbfleet_fleet'

MONITOR_USER = 'dbfleet_monitor'
MONITOR_PASSWORD = 'monitor-pw-Secret1'
LIMITED_USER = 'dbfleet_limited'
LIMITED_PASSWORD = 'limited-pw-Secret2'
REPL_USER = 'dbfleet_repl'
REPL_PASSWORD = 'repl-pw-Secret3'
BACKUP_USER = 'dbfleet_backup'
BACKUP_PASSWORD = 'backup-pw-Secret4'

# Accounts are created for both ways of reaching a local server: the unix socket ('localhost')
# and TCP to 127.0.0.1 (the servers run with skip-name-resolve, so the client address is matched).
ACCOUNT_HOSTS = ('localhost', '127.0.0.1')

# Least privilege for every fact subset of dbfleet.mysql.mysql_facts on MariaDB 10.11, found by
# experiment (see README.md). (privilege, object, reason)
MONITOR_GRANTS = (
    ('PROCESS', '*.*',
     'information_schema.INNODB_SYS_TABLESPACES (exact schema sizes) and the replicas\' Binlog Dump threads'
     ' in information_schema.PROCESSLIST (other users\' threads are hidden without it)'),
    ('SLAVE MONITOR', '*.*',
     'SHOW [ALL] SLAVES|REPLICAS STATUS (BINLOG MONITOR and REPLICATION SLAVE ADMIN do not allow it)'),
    ('BINLOG MONITOR', '*.*', 'SHOW BINARY LOGS and SHOW BINLOG STATUS (REPLICATION CLIENT is its old name)'),
    ('REPLICATION MASTER ADMIN', '*.*',
     'SHOW SLAVE|REPLICA HOSTS; nothing weaker allows it, and it is not read-only: it also allows'
     ' SET GLOBAL server_id, gtid_domain_id, gtid_binlog_state, master_verify_checksum, rpl_semi_sync_master_*'),
    ('SHOW VIEW', '*.*',
     'every schema and table visible in information_schema.SCHEMATA/TABLES with sizes, without reading rows'
     ' (SELECT would work too but reads data)'),
    ('SELECT (User, Host, plugin, authentication_string, Super_priv, is_role)', 'mysql.user',
     'account risk counts; mysql.user is a SQL SECURITY DEFINER view over mysql.global_priv, so SELECT on'
     ' global_priv alone is refused (1142); only the columns the query reads'),
)

# Least privilege for a consistent logical backup with its binlog position (dbfleet.mysql.mysql_backup,
# mariadb-dump --single-transaction --routines --triggers --events --master-data=2 --gtid) on MariaDB 10.11,
# found by experiment (see README.md). (privilege, object, reason)
BACKUP_GRANTS = (
    ('SELECT', '*.*',
     'the rows, and mysql.proc for --routines: without it routines are left out silently. On *.* because new'
     ' databases are backed up without a new grant; it also reads mysql.global_priv (password hashes)'),
    ('SHOW VIEW', '*.*', 'SHOW CREATE VIEW for every view; the dump fails (1142) without it'),
    ('TRIGGER', '*.*', 'SHOW TRIGGERS lists only triggers the account may manage: without it they are left out'
     ' silently'),
    ('EVENT', '*.*', 'SHOW EVENTS for --events; the dump fails (1044) without it'),
)

LIMITED_GRANTS = (
    ('SHOW VIEW', '*.*', 'schema sizes work; replication, binlog and account facts are denied'),
)

PRIMARY_SCHEMAS = ('shop', 'crm', 'audit')
TENANT_TABLES = (
    'events', 'sessions', 'users', 'pageviews', 'clicks', 'orders', 'refunds', 'campaigns', 'ad_spend',
    'funnels', 'cohorts', 'experiments', 'features', 'invoices', 'payments', 'tickets', 'feedback',
    'devices', 'geo', 'daily_rollup',
)
ANALYTICS_SCHEMAS = tuple('tenant_%03d' % number for number in range(1, 61))

# User schemas each instance holds (the replica gets the primary's through replication);
# the marker schema is left out.
SCHEMAS = {
    'primary': PRIMARY_SCHEMAS,
    'replica': PRIMARY_SCHEMAS,
    'analytics': ANALYTICS_SCHEMAS,
}


def _account(user, host):
    return "'%s'@'%s'" % (user, host)


def _grants(user, host, grants):
    return ['GRANT %s ON %s TO %s' % (privilege, target, _account(user, host)) for privilege, target, _ in grants]


def replication_user_sql():
    """The account the replica connects with (primary only; it replicates like everything else)."""
    statements = []
    for host in ACCOUNT_HOSTS:
        statements.append("CREATE OR REPLACE USER %s IDENTIFIED BY '%s'" % (_account(REPL_USER, host), REPL_PASSWORD))
        statements.append('GRANT REPLICATION SLAVE ON *.* TO %s' % _account(REPL_USER, host))
    return statements


def accounts_sql():
    """The monitoring account, the backup account and the deliberately under-privileged one."""
    statements = []
    for user, password, grants in ((MONITOR_USER, MONITOR_PASSWORD, MONITOR_GRANTS),
                                   (BACKUP_USER, BACKUP_PASSWORD, BACKUP_GRANTS),
                                   (LIMITED_USER, LIMITED_PASSWORD, LIMITED_GRANTS)):
        for host in ACCOUNT_HOSTS:
            statements.append("CREATE OR REPLACE USER %s IDENTIFIED BY '%s'" % (_account(user, host), password))
            statements.extend(_grants(user, host, grants))
    return statements


def marker_sql(role):
    """Written last: its presence with SEED_VERSION means the seed completed."""
    return [
        'CREATE DATABASE IF NOT EXISTS %s' % MARKER_SCHEMA,
        'CREATE OR REPLACE TABLE %s.seeded (version INT NOT NULL, role VARCHAR(16) NOT NULL,'
        ' seeded_at DATETIME NOT NULL) ENGINE=InnoDB' % MARKER_SCHEMA,
        "INSERT INTO %s.seeded VALUES (%d, '%s', NOW())" % (MARKER_SCHEMA, SEED_VERSION, role),
    ]


SEEDED_VERSION_SQL = 'SELECT MAX(version) FROM %s.seeded' % MARKER_SCHEMA


def _recreate(schema):
    return ['DROP DATABASE IF EXISTS %s' % schema,
            'CREATE DATABASE %s CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci' % schema]


def shop_sql():
    """~25 MB: customers, products, orders, order_items, a view, a routine, a trigger and an event."""
    return _recreate('shop') + [
        'CREATE TABLE shop.customers (id INT UNSIGNED NOT NULL PRIMARY KEY, email VARCHAR(120) NOT NULL,'
        ' name VARCHAR(80) NOT NULL, country CHAR(2) NOT NULL, created_at DATETIME NOT NULL,'
        ' UNIQUE KEY uk_email (email), KEY k_country (country)) ENGINE=InnoDB',
        "INSERT INTO shop.customers SELECT seq, CONCAT('customer', seq, '@example.com'), CONCAT('Customer ', seq),"
        " ELT(1 + seq % 6, 'DE', 'FR', 'US', 'GB', 'NL', 'SE'), '2020-01-01' + INTERVAL (seq % 1500) DAY"
        ' FROM shop.seq_1_to_20000',
        'CREATE TABLE shop.products (id INT UNSIGNED NOT NULL PRIMARY KEY, sku CHAR(12) NOT NULL,'
        ' name VARCHAR(100) NOT NULL, category VARCHAR(30) NOT NULL, price DECIMAL(10,2) NOT NULL,'
        ' UNIQUE KEY uk_sku (sku), KEY k_category (category)) ENGINE=InnoDB',
        "INSERT INTO shop.products SELECT seq, CONCAT('SKU', LPAD(seq, 9, '0')), CONCAT('Product ', seq),"
        " ELT(1 + seq % 5, 'books', 'garden', 'toys', 'kitchen', 'tools'), 1 + (seq * 37 % 20000) / 100"
        ' FROM shop.seq_1_to_2000',
        "CREATE TABLE shop.orders (id INT UNSIGNED NOT NULL PRIMARY KEY, customer_id INT UNSIGNED NOT NULL,"
        " status ENUM('new', 'paid', 'shipped', 'cancelled') NOT NULL, total DECIMAL(10,2) NOT NULL,"
        ' created_at DATETIME NOT NULL, note VARCHAR(100) NOT NULL,'
        ' KEY k_customer (customer_id), KEY k_created (created_at), KEY k_status_created (status, created_at))'
        ' ENGINE=InnoDB',
        'INSERT INTO shop.orders SELECT seq, 1 + seq * 7919 % 20000, 1 + seq % 4, (seq * 131 % 50000) / 100,'
        " '2021-01-01' + INTERVAL (seq * 17 % 1000000) MINUTE, CONCAT('order note ', MD5(seq))"
        ' FROM shop.seq_1_to_80000',
        'CREATE TABLE shop.order_items (order_id INT UNSIGNED NOT NULL, line TINYINT UNSIGNED NOT NULL,'
        ' product_id INT UNSIGNED NOT NULL, quantity SMALLINT UNSIGNED NOT NULL, price DECIMAL(10,2) NOT NULL,'
        ' PRIMARY KEY (order_id, line), KEY k_product (product_id)) ENGINE=InnoDB',
        'INSERT INTO shop.order_items SELECT 1 + (seq - 1) DIV 2, 1 + (seq - 1) % 2, 1 + seq * 31 % 2000,'
        ' 1 + seq % 5, 1 + (seq * 37 % 20000) / 100 FROM shop.seq_1_to_120000',
        'CREATE VIEW shop.order_totals AS SELECT customer_id, COUNT(*) AS orders, SUM(total) AS total'
        ' FROM shop.orders GROUP BY customer_id',
        # A routine, a trigger and an event, so backups are seen to keep them (DISABLE: it never runs).
        'CREATE PROCEDURE shop.customer_order_count(IN customer INT UNSIGNED)'
        ' SELECT COUNT(*) FROM shop.orders WHERE customer_id = customer',
        'CREATE TRIGGER shop.orders_trim_note BEFORE INSERT ON shop.orders FOR EACH ROW SET NEW.note = TRIM(NEW.note)',
        "CREATE EVENT shop.purge_cancelled ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM shop.orders"
        " WHERE status = 'cancelled' AND created_at < NOW() - INTERVAL 5 YEAR",
        'ANALYZE TABLE shop.customers, shop.products, shop.orders, shop.order_items',
    ]


def crm_sql():
    """~5 MB: companies, contacts, notes."""
    return _recreate('crm') + [
        'CREATE TABLE crm.companies (id INT UNSIGNED NOT NULL PRIMARY KEY, name VARCHAR(100) NOT NULL,'
        ' domain VARCHAR(100) NOT NULL, UNIQUE KEY uk_domain (domain)) ENGINE=InnoDB',
        "INSERT INTO crm.companies SELECT seq, CONCAT('Company ', seq), CONCAT('company', seq, '.example')"
        ' FROM crm.seq_1_to_2000',
        'CREATE TABLE crm.contacts (id INT UNSIGNED NOT NULL PRIMARY KEY, company_id INT UNSIGNED NOT NULL,'
        ' email VARCHAR(120) NOT NULL, phone VARCHAR(20) NOT NULL, created_at DATETIME NOT NULL,'
        ' KEY k_company (company_id), KEY k_email (email)) ENGINE=InnoDB',
        "INSERT INTO crm.contacts SELECT seq, 1 + seq % 2000, CONCAT('contact', seq, '@example.org'),"
        " CONCAT('+49 30 ', LPAD(seq, 7, '0')), '2022-01-01' + INTERVAL seq MINUTE FROM crm.seq_1_to_20000",
        'CREATE TABLE crm.notes (id INT UNSIGNED NOT NULL PRIMARY KEY, contact_id INT UNSIGNED NOT NULL,'
        ' body VARCHAR(255) NOT NULL, KEY k_contact (contact_id)) ENGINE=InnoDB',
        "INSERT INTO crm.notes SELECT seq, 1 + seq * 13 % 20000, CONCAT('Called, left a message. ', MD5(seq))"
        ' FROM crm.seq_1_to_15000',
        'ANALYZE TABLE crm.companies, crm.contacts, crm.notes',
    ]


def audit_sql():
    """~1.5 MB of InnoDB plus a small MyISAM table, so engine mixes exist."""
    return _recreate('audit') + [
        "CREATE TABLE audit.events (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, actor VARCHAR(40) NOT NULL,"
        " action ENUM('login', 'logout', 'update', 'delete') NOT NULL, at DATETIME NOT NULL,"
        ' KEY k_actor_at (actor, at)) ENGINE=InnoDB',
        "INSERT INTO audit.events SELECT seq, CONCAT('user', seq % 300), 1 + seq % 4,"
        " '2023-01-01' + INTERVAL seq SECOND FROM audit.seq_1_to_12000",
        'CREATE TABLE audit.legacy_log (id INT UNSIGNED NOT NULL PRIMARY KEY, message VARCHAR(200) NOT NULL,'
        ' logged_at DATETIME NOT NULL, KEY k_logged (logged_at)) ENGINE=MyISAM',
        "INSERT INTO audit.legacy_log SELECT seq, CONCAT('legacy event ', seq), '2019-06-01' + INTERVAL seq HOUR"
        ' FROM audit.seq_1_to_2000',
        'ANALYZE TABLE audit.events, audit.legacy_log',
    ]


def primary_sql():
    """Accounts and schemas of the primary (the replica receives them through replication)."""
    return accounts_sql() + shop_sql() + crm_sql() + audit_sql() + marker_sql('primary')


def tenant_sql(number):
    """One analytics tenant: 20 small InnoDB tables, a few dozen rows each (varies by tenant)."""
    schema = 'tenant_%03d' % number
    rows = 10 * (1 + number % 7)
    statements = _recreate(schema)
    for table in TENANT_TABLES:
        statements.append(
            'CREATE TABLE %s.%s (id INT UNSIGNED NOT NULL PRIMARY KEY, k INT NOT NULL, v VARCHAR(64) NOT NULL,'
            ' created_at DATETIME NOT NULL, KEY k_k (k)) ENGINE=InnoDB' % (schema, table))
        statements.append(
            "INSERT INTO %s.%s SELECT seq, seq %% 10, CONCAT('%s ', seq), '2024-01-01' + INTERVAL seq HOUR"
            ' FROM %s.seq_1_to_%d' % (schema, table, table, schema, rows))
    return statements


def analytics_sql():
    """Accounts and the 60 tenant schemas of the standalone analytics server (1,200 tables)."""
    statements = accounts_sql()
    for number in range(1, len(ANALYTICS_SCHEMAS) + 1):
        statements.extend(tenant_sql(number))
    return statements + marker_sql('analytics')
