"""A scratch mariadbd with binary logs and GTIDs in a temporary directory, for the tests that purge logs,
change the server id or kill connections, so the shared local fleet is never touched. Started as the
fleet harness starts its servers (mariadb-install-db, then mariadbd with a generated my.cnf, socket
authentication for the invoking OS user) and always stopped."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pymysql

READY_TIMEOUT = 90
ARCHIVE_USER = 'archiver'
ARCHIVE_PASSWORD = 'arch#"pw Secret\\5'


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class ScratchServer:
    def __init__(self, base: Path, server_id: int = 71):
        self.base = Path(base)
        self.datadir = self.base / 'data'
        self.socket = self.base / 'mysqld.sock'
        self.port = free_port()
        self.server_id = server_id
        self.os_user = pwd.getpwuid(os.getuid()).pw_name
        self.process: subprocess.Popen | None = None

    @property
    def config(self) -> Path:
        return self.base / 'my.cnf'

    @property
    def tmpdir(self) -> Path:
        """Its own: mariadb-install-db beside another one in a shared /tmp fails now and then."""
        return self.base / 'tmp'

    def _write_config(self) -> None:
        self.tmpdir.mkdir(exist_ok=True)
        self.config.write_text('\n'.join([
            '[mariadbd]', 'port = %d' % self.port, 'bind-address = 127.0.0.1', 'socket = %s' % self.socket,
            'datadir = %s' % self.datadir, 'pid-file = %s' % (self.base / 'mysqld.pid'),
            'tmpdir = %s' % self.tmpdir, 'log-error = %s' % (self.base / 'error.log'), 'server-id = %d' % self.server_id, 'skip-name-resolve',
            'performance_schema = OFF', 'innodb_buffer_pool_size = 16M', 'innodb_log_file_size = 8M',
            'log-bin = mysql-bin', 'binlog_format = ROW', 'gtid_strict_mode = ON', 'max_connections = 50', '']))

    def start(self) -> 'ScratchServer':
        self.base.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not self.datadir.exists():
            subprocess.run([shutil.which('mariadb-install-db') or 'mariadb-install-db',
                            '--defaults-file=%s' % self.config, '--user=%s' % self.os_user,
                            '--auth-root-authentication-method=socket', '--auth-root-socket-user=%s' % self.os_user,
                            '--skip-test-db'], check=True, capture_output=True, timeout=300)
        self.process = subprocess.Popen([shutil.which('mariadbd') or '/usr/sbin/mariadbd',
                                         '--defaults-file=%s' % self.config, '--user=%s' % self.os_user],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                self.admin().close()
                break
            except pymysql.err.MySQLError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError('scratch mariadbd did not start: %s'
                                       % (self.base / 'error.log').read_text()[-2000:])
                time.sleep(0.2)
        self.execute("CREATE OR REPLACE USER '%s'@'127.0.0.1' IDENTIFIED BY %s"
                     % (ARCHIVE_USER, pymysql.converters.escape_string(ARCHIVE_PASSWORD).join("''")),
                     "GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO '%s'@'127.0.0.1'" % ARCHIVE_USER)
        return self

    def restart(self, server_id: int | None = None) -> None:
        """Stop and start again (with another server id when given): the server's next binlog opens."""
        self.stop()
        if server_id is not None:
            self.server_id = server_id
        self.start()

    def admin(self) -> pymysql.Connection:
        return pymysql.connect(unix_socket=str(self.socket), user=self.os_user, autocommit=True, connect_timeout=5)

    def execute(self, *statements) -> list:
        with contextlib.closing(self.admin()) as connection, connection.cursor() as cursor:
            rows = []
            for statement in statements:
                cursor.execute(statement)
                rows = cursor.fetchall()
            return rows

    def scalar(self, statement):
        return self.execute(statement)[0][0]

    def binlogs(self) -> list[str]:
        return [row[0] for row in self.execute('SHOW BINARY LOGS')]

    def purge_to(self, name: str, timeout: float = 60) -> None:
        """PURGE BINARY LOGS TO `name`, again until the logs before it are gone: MariaDB keeps a rotated
        log until its binlog checkpoint has moved past it, and one a dump thread still reads."""
        deadline = time.monotonic() + timeout
        while True:
            self.execute("PURGE BINARY LOGS TO '%s'" % name)
            if self.binlogs()[0] == name:
                return
            assert time.monotonic() < deadline, 'the logs before %s were not purged: %s' % (name, self.binlogs())
            time.sleep(0.2)

    def login(self) -> dict:
        """The archive account's login options, as module parameters."""
        return dict(login_host='127.0.0.1', login_port=self.port, login_user=ARCHIVE_USER,
                    login_password=ARCHIVE_PASSWORD)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None
