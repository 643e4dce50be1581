"""A scratch schema on the local fleet's primary for restore tests: its history (a backup, writes, an
accidental DROP TABLE) and the binary logs fetched into the archive layout as binlog_archive writes it,
with a one-shot `mariadb-binlog --read-from-remote-server --raw --to-last-log`."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from devtools.fleet import Fleet

POLL_TIMEOUT = 120


def scratch_schema_name() -> str:
    return 'restore_test_%s' % uuid.uuid4().hex[:10]


def execute(fleet: Fleet, statements, fetch=False, database=None):
    """Statements on the primary as root; with `database` as the default database, as applications write
    (a schema restore replays the statements - DDL - whose default database is that schema)."""
    options = {'database': database} if database else {}
    with contextlib.closing(fleet.admin('primary', **options)) as connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        return cursor.fetchall() if fetch else None


def server_now(fleet: Fleet) -> dt.datetime:
    (row,) = execute(fleet, ['SELECT UTC_TIMESTAMP()'], fetch=True)
    return row[0].replace(tzinfo=dt.timezone.utc)


def wait_past(fleet: Fleet, moment: dt.datetime) -> dt.datetime:
    """Poll the primary's clock until it is past `moment` (second precision); its time then."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        now = server_now(fleet)
        if now > moment:
            return now
        assert time.monotonic() < deadline, 'the primary\'s clock did not pass %s' % moment
        time.sleep(0.05)


def create_schema(fleet: Fleet, schema: str) -> None:
    execute(fleet, ['CREATE DATABASE `%s`' % schema])
    execute(fleet, [
        'CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, note VARCHAR(40) NOT NULL)',
        "INSERT INTO orders (note) VALUES ('before-1'), ('before-2'), ('before-3')",
        'CREATE TABLE precious (id INT PRIMARY KEY, label VARCHAR(40))',
        "INSERT INTO precious VALUES (1, 'one'), (2, 'two')",
        'CREATE VIEW order_notes AS SELECT note FROM orders',
        'CREATE PROCEDURE count_orders() SELECT COUNT(*) FROM orders',
        'CREATE TRIGGER orders_note BEFORE INSERT ON orders FOR EACH ROW SET NEW.note = TRIM(NEW.note)',
    ], database=schema)


def drop_schema(fleet: Fleet, schema: str) -> None:
    execute(fleet, ['DROP DATABASE IF EXISTS `%s`' % schema])


def accident(fleet: Fleet, schema: str) -> dict:
    """After a backup: rows and a table written, then DROP TABLE precious by accident, then more rows.
    Returns the instant one second before the drop (every earlier write is at or before it)."""
    execute(fleet, ["INSERT INTO orders (note) VALUES ('after-1'), ('after-2')",
                    'CREATE TABLE later (id INT PRIMARY KEY)',
                    'INSERT INTO later VALUES (7)'], database=schema)
    written = server_now(fleet)
    before_drop = figures(fleet, schema)
    dropped = wait_past(fleet, written)
    execute(fleet, ['DROP TABLE precious', "INSERT INTO orders (note) VALUES ('after-drop')"], database=schema)
    return dict(target=dropped - dt.timedelta(seconds=1), before_drop=before_drop)


def figures(fleet: Fleet, schema: str) -> dict:
    """{'schema.table': [rows, CHECKSUM TABLE]} of the schema's tables, as mysql_restore reports them."""
    rows = execute(fleet, ["SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '%s' "
                           "AND TABLE_TYPE = 'BASE TABLE'" % schema], fetch=True)
    found = {}
    for (table,) in rows:
        ((count,),) = execute(fleet, ['SELECT COUNT(*) FROM `%s`.`%s`' % (schema, table)], fetch=True)
        ((_name, checksum),) = execute(fleet, ['CHECKSUM TABLE `%s`.`%s`' % (schema, table)], fetch=True)
        found['%s.%s' % (schema, table)] = [count, checksum]
    return found


def gtid_of_last_write(fleet: Fleet) -> str:
    (row,) = execute(fleet, ['SELECT @@gtid_binlog_pos'], fetch=True)
    return row[0]


def fetch_binlogs(fleet: Fleet, host_dir: Path, first_file: str, workdir: Path) -> Path:
    """FLUSH BINARY LOGS, then fetch every binlog from `first_file` into <host_dir>/binlogs/ as raw files."""
    execute(fleet, ['FLUSH BINARY LOGS'])
    binlogs = host_dir / 'binlogs'
    binlogs.mkdir(mode=0o750, parents=True, exist_ok=True)
    defaults = workdir / 'fetch.cnf'
    defaults.write_text('[client]\nsocket=%s\nuser=%s\n' % (fleet.instance('primary').socket, fleet.os_user))
    os.chmod(defaults, 0o600)
    subprocess.run(['mariadb-binlog', '--defaults-file=%s' % defaults, '--read-from-remote-server', '--raw',
                    '--to-last-log', '--result-file=%s/' % binlogs, first_file],
                   env=dict(os.environ, TZ='UTC'), check=True, capture_output=True, timeout=300)
    for path in binlogs.iterdir():
        os.chmod(path, 0o600)
    return binlogs


def manifest_of(backup_dir) -> dict:
    return json.loads(Path(backup_dir, 'manifest.json').read_text())


def stop_sandbox(sandbox: dict) -> None:
    """Stop a sandbox a restore kept (keep_sandbox) and remove its directory."""
    import shutil
    import signal
    pid = sandbox['pid']
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while Path('/proc/%d' % pid).exists() and time.monotonic() < deadline:
        try:
            if Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()[0] == 'Z':
                break
        except (OSError, IndexError):
            break
        time.sleep(0.1)
    shutil.rmtree(Path(sandbox['datadir']).parent, ignore_errors=True)


def sandbox_rows(sandbox: dict, query: str):
    import pymysql
    with contextlib.closing(pymysql.connect(unix_socket=sandbox['socket'], user=Fleet().os_user,
                                            autocommit=True)) as connection, connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def record_archive(store_url: str, host: str, binlogs: Path) -> list[dict]:
    """Give the fetched binlogs (all but the newest, which the server still writes) the manifests the binlog
    archive writes - the collection's own reading of each file - and record them in the store as one archive
    pass would, so that the host has a restorable window. The manifests, oldest first."""
    from ansible_collections.dbfleet.mysql.plugins.module_utils import binlog_archive as archive

    from dbfleet.store import open_store
    names = sorted((path.name for path in binlogs.iterdir() if not path.name.endswith('.json')),
                   key=archive.binlog_number)
    now = dt.datetime.now(dt.timezone.utc)
    manifests = []
    for name in names[:-1]:
        manifest = archive.manifest_for(str(binlogs / name), shutil.which('mariadb-binlog'), now)
        archive.write_json_atomically(str(binlogs / name) + '.json', manifest)
        manifests.append(manifest)
    with open_store(store_url) as store:
        store.binlogs.record_pass(host, dict(archived=manifests, gaps=[], lag_seconds=0.0, current_file=names[-1],
                                             path=str(binlogs)), now)
    return manifests
