"""The platform's own services on the controller, reachable from the namespace hosts: a Redis
(with a password) and a MariaDB for the store, both bound to the fleet bridge's address. Workers
started on the worker hosts join the service through these two and nothing else.

    platform = Platform(fleet, directory).start()
    platform.redis_url   # redis://:PASSWORD@10.213.N.1:PORT/0
    platform.store_url   # mysql+pymysql://dbfleet:PASSWORD@10.213.N.1:PORT/dbfleet
    platform.stop()
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql

READY_TIMEOUT = 60


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


class Platform:
    def __init__(self, fleet, directory: Path):
        self.address = fleet.topology.controller_address
        self.subnet_host = fleet.topology.controller_address.rsplit('.', 1)[0] + '.%'
        self.directory = Path(directory)
        self.password = secrets.token_urlsafe(16)
        self.redis_port = _free_port(self.address)
        self.store_port = _free_port(self.address)
        self.processes: list[subprocess.Popen] = []
        # mariadbd's socket path must fit sockaddr_un: a short private directory of its own
        self.socket_dir = Path(tempfile.mkdtemp(prefix='dbfp-'))

    @property
    def redis_url(self) -> str:
        return 'redis://:%s@%s:%d/0' % (self.password, self.address, self.redis_port)

    @property
    def store_url(self) -> str:
        return 'mysql+pymysql://dbfleet:%s@%s:%d/dbfleet' % (self.password, self.address, self.store_port)

    def start(self) -> 'Platform':
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._start_redis()
            self._start_mariadb()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        self.processes.clear()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _start_redis(self):
        log = open(self.directory / 'redis.log', 'ab')
        with log:
            self.processes.append(subprocess.Popen(
                ['redis-server', '--bind', self.address, '--port', str(self.redis_port), '--requirepass',
                 self.password, '--save', '', '--appendonly', 'no', '--dir', str(self.directory)],
                stdout=log, stderr=subprocess.STDOUT))
        self._wait(lambda: _port_open(self.address, self.redis_port), 'redis-server', self.directory / 'redis.log')

    def _start_mariadb(self):
        datadir = self.directory / 'mysql'
        if not datadir.exists():
            datadir.mkdir()
            # Its own tmpdir: mariadb-install-db beside another one in a shared /tmp fails about one time in
            # six ("Unknown table 'mysql.tmp_proxies_priv'"), seen when two test sessions started platforms.
            tmpdir = self.directory / 'tmp'
            tmpdir.mkdir(exist_ok=True)
            installed = subprocess.run(['mariadb-install-db', '--no-defaults', '--user=root', '--datadir=%s' % datadir,
                                        '--tmpdir=%s' % tmpdir, '--auth-root-authentication-method=socket',
                                        '--skip-test-db'], capture_output=True, text=True, timeout=300)
            if installed.returncode != 0:
                raise RuntimeError('mariadb-install-db for the platform store exited %d: %s'
                                   % (installed.returncode, (installed.stdout + installed.stderr).strip()[-2000:]))
        socket_path = self.socket_dir / 'mysqld.sock'
        log = open(self.directory / 'mariadbd.log', 'ab')
        with log:
            self.processes.append(subprocess.Popen(
                ['mariadbd', '--no-defaults', '--user=root', '--datadir=%s' % datadir, '--bind-address=%s' % self.address,
                 '--port=%d' % self.store_port, '--socket=%s' % socket_path, '--skip-log-bin',
                 '--tmpdir=%s' % (self.directory / 'tmp'),
                 '--pid-file=%s' % (self.socket_dir / 'mysqld.pid'), '--innodb-buffer-pool-size=64M',
                 '--skip-name-resolve', '--character-set-server=utf8mb4', '--collation-server=utf8mb4_general_ci'],
                stdout=log, stderr=subprocess.STDOUT))
        self._wait(socket_path.exists, 'mariadbd', self.directory / 'mariadbd.log')
        connection = pymysql.connect(unix_socket=str(socket_path), user='root', autocommit=True)
        with contextlib.closing(connection):
            cursor = connection.cursor()
            cursor.execute('CREATE DATABASE IF NOT EXISTS dbfleet CHARACTER SET utf8mb4')
            cursor.execute("CREATE OR REPLACE USER 'dbfleet'@'%s' IDENTIFIED BY '%s'" % (self.subnet_host,
                                                                                       self.password))
            cursor.execute("GRANT ALL PRIVILEGES ON dbfleet.* TO 'dbfleet'@'%s'" % self.subnet_host)

    def _wait(self, ready, what: str, log: Path):
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready():
            if self.processes[-1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('%s did not start on %s (see %s)' % (what, self.address, log))
            time.sleep(0.1)


def _port_open(address: str, port: int) -> bool:
    with contextlib.suppress(OSError):
        with socket.create_connection((address, port), timeout=1):
            return True
    return False
