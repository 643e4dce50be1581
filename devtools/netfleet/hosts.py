"""What makes a namespace host a machine of its own: its directories (bind-mounted over the
system's in its mount namespace), its sshd configuration and host key, its my.cnf, its crontab
spool, and the commands that start its daemons.

Each host's files live under <fleet dir>/hosts/<name>/ and appear inside the host at the usual
places, so the host looks like a stock Debian database server: /etc/ssh/sshd_config and the host
keys, /etc/mysql/my.cnf, /var/lib/mysql, /run/mysqld/mysqld.sock, /var/spool/cron/crontabs, and
its own /tmp, /root/.ssh, /opt/dbfleet, /etc/dbfleet and /var/lib/dbfleet.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from .topology import Host, Topology

# Directory inside the host -> mode. Each is a bind mount of <host dir>/<same path>.
DIRECTORIES = {
    '/etc/ssh': 0o755,
    '/etc/mysql': 0o755,
    '/etc/cron.d': 0o755,
    '/etc/dbfleet': 0o755,
    # root's own SSH files and Ansible's remote temp files; not all of /root, which holds the
    # machine's Python (pyenv) that the hosts share with it like the rest of the installed software
    '/root/.ssh': 0o700,
    '/root/.ansible': 0o700,
    '/var/lib/mysql': 0o750,
    '/run': 0o755,  # its own pid files (cron's lock), /run/mysqld, /run/sshd
    '/var/log/mysql': 0o750,
    '/var/spool/cron/crontabs': 0o1730,
    '/var/lib/dbfleet': 0o750,
    '/var/backups/dbfleet': 0o750,
    '/opt': 0o755,  # /opt/dbfleet: the agent's virtualenv
    '/tmp': 0o1777,
}
# Made inside the directories above (in the binds' sources).
SUBDIRECTORIES = {'/run/mysqld': 0o755, '/run/sshd': 0o755}
MYSQL_OWNED = ('/var/lib/mysql', '/run/mysqld', '/var/log/mysql')
FILES = {'/etc/crontab': 0o644}  # the host's own (empty) system crontab, not the machine's


def missing_mount_points() -> list[str]:
    """Mount points the machine lacks (/etc/dbfleet, /var/lib/dbfleet, ... on a machine that never
    ran dbfleet): the harness makes them empty before the first host starts and removes them when
    the last fleet stops."""
    return [target for target in list(DIRECTORIES) + list(FILES) if not os.path.lexists(target)]


class HostFiles:
    """The on-disk side of one host."""

    def __init__(self, fleet_dir: Path, topology: Topology, host: Host, checkout: Path | None = None):
        self.host = host
        self.topology = topology
        self.root = fleet_dir / 'hosts' / host.name
        # The dbfleet checkout (its .venv runs the workers, schedulers and APIs on worker hosts). One
        # under a directory the host has its own of (/tmp, /opt) is bound into that directory too.
        self.checkout = checkout

    def path(self, inside: str) -> Path:
        """Where a path of the host lives on the machine (`/etc/ssh` -> <root>/etc/ssh)."""
        return self.root / inside.lstrip('/')

    @property
    def holder_pid_file(self) -> Path:
        return self.root / 'holder.pid'

    @property
    def logs(self) -> Path:
        return self.root / 'log'

    def binds(self) -> list[tuple[Path, str]]:
        """(source, target) in mount order: a target that holds sources of other binds (/tmp for a
        fleet under /tmp, /opt for a checkout under /opt) is mounted after them. The holder mounts
        recursively (--rbind), so a checkout bound into the host's own /tmp shows through it."""
        binds = [(self.path(target), target) for target in list(DIRECTORIES) + list(FILES)]
        if self.checkout is not None and self._hidden(self.checkout):
            binds.append((self.checkout, str(self.path(str(self.checkout)))))
        return sorted(binds, key=lambda bind: any(str(source).startswith(bind[1] + '/') for source, _ in binds))

    @staticmethod
    def _hidden(path: Path) -> bool:
        """Whether `path` lies under a directory the host has its own of (so the host cannot see it)."""
        return any(str(path).startswith(target + '/') for target in DIRECTORIES)

    def make_checkout_mount_point(self):
        """The empty directory in the host's own files where the checkout is bound (see binds)."""
        if self.checkout is not None and self._hidden(self.checkout):
            self.path(str(self.checkout)).mkdir(parents=True, exist_ok=True)

    def prepare(self, authorized_keys: str):
        """Create the host's directories and configuration (idempotent; a host key once made is
        kept, so known_hosts stays valid across restarts)."""
        mysql = pwd.getpwnam('mysql')
        for target, mode in DIRECTORIES.items():
            path = self.path(target)
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, mode)
            if target in MYSQL_OWNED:
                os.chown(path, mysql.pw_uid, mysql.pw_gid)
        for target, mode in SUBDIRECTORIES.items():
            path = self.path(target)
            path.mkdir(exist_ok=True)
            os.chmod(path, mode)
            if target in MYSQL_OWNED:
                os.chown(path, mysql.pw_uid, mysql.pw_gid)
        spool = self.path('/var/spool/cron/crontabs')
        os.chown(spool, 0, grp.getgrnam('crontab').gr_gid)
        for target, mode in FILES.items():
            path = self.path(target)
            if not path.exists():
                path.write_text('# %s: the system crontab of namespace host %s (empty)\n' % (target, self.host.name))
            os.chmod(path, mode)
        self.logs.mkdir(exist_ok=True)
        self.make_checkout_mount_point()
        self._ssh_files(authorized_keys)
        self.path('/etc/mysql/my.cnf').write_text(self.my_cnf())

    def _ssh_files(self, authorized_keys: str):
        ssh = self.path('/etc/ssh')
        key = ssh / 'ssh_host_ed25519_key'
        if not key.exists():
            subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'root@%s' % self.host.name,
                            '-f', str(key)], check=True, capture_output=True)
        for name in ('ssh_config', 'moduli'):
            if Path('/etc/ssh', name).exists() and not (ssh / name).exists():
                shutil.copy(Path('/etc/ssh', name), ssh / name)
        (ssh / 'sshd_config').write_text(self.sshd_config())
        keys = self.path('/root/.ssh/authorized_keys')
        keys.write_text(authorized_keys)
        os.chmod(keys, 0o600)

    def host_public_key(self) -> str:
        """'ssh-ed25519 AAAA...' of the host key, as known_hosts wants it."""
        return ' '.join(self.path('/etc/ssh/ssh_host_ed25519_key.pub').read_text().split()[:2])

    def sshd_config(self) -> str:
        return '\n'.join([
            '# Written by devtools/netfleet at every start: namespace host %s.' % self.host.name,
            'ListenAddress %s' % self.host.address,
            'Port 22',
            'HostKey /etc/ssh/ssh_host_ed25519_key',
            'PermitRootLogin prohibit-password',
            'PubkeyAuthentication yes',
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'UsePAM no',
            'PidFile none',
            'AuthorizedKeysFile .ssh/authorized_keys',
            # Ansible opens a session per task and host; forks above sshd's defaults.
            'MaxStartups 200:30:400',
            'MaxSessions 100',
            'AcceptEnv LANG LC_*',
            'Subsystem sftp internal-sftp',
            '',
        ])

    def my_cnf(self) -> str:
        host = self.host
        lines = [
            '# Written by devtools/netfleet at every start: namespace host %s (%s).' % (host.name, host.role),
            '[client]',
            'socket = /run/mysqld/mysqld.sock',
            '',
            '[mariadbd]',
            'user = mysql',
            'bind-address = %s' % host.address,
            'port = 3306',
            'socket = /run/mysqld/mysqld.sock',
            'pid-file = /run/mysqld/mysqld.pid',
            'datadir = /var/lib/mysql',
            'log-error = /var/log/mysql/error.log',
            'server-id = %d' % host.server_id,
            'skip-name-resolve',
            'performance_schema = OFF',
            'character-set-server = utf8mb4',
            'collation-server = utf8mb4_general_ci',
            'innodb_buffer_pool_size = 48M',
            'innodb_log_file_size = 16M',
            'innodb_flush_log_at_trx_commit = 2',
            'max_connections = 100',
            'table_open_cache_instances = 1',
        ]
        if host.role in ('primary', 'replica'):
            lines += ['log-bin = mysql-bin', 'binlog_format = ROW', 'sync_binlog = 0', 'gtid_strict_mode = ON',
                      'log_slave_updates = ON', 'expire_logs_days = 7']
        else:
            lines.append('skip-log-bin')
        if host.role == 'replica':
            lines += ['relay-log = relay-bin', 'relay_log_recovery = ON', 'read_only = ON', 'gtid_domain_id = 2']
        return '\n'.join(lines) + '\n'


def sshd_command() -> list[str]:
    return ['/usr/sbin/sshd', '-D', '-e', '-f', '/etc/ssh/sshd_config']


def mariadbd_command() -> list[str]:
    return [shutil.which('mariadbd') or '/usr/sbin/mariadbd', '--defaults-file=/etc/mysql/my.cnf']


def install_db_command() -> list[str]:
    return [shutil.which('mariadb-install-db') or '/usr/bin/mariadb-install-db', '--defaults-file=/etc/mysql/my.cnf',
            '--user=mysql', '--auth-root-authentication-method=socket', '--skip-test-db']


def cron_command() -> list[str]:
    return ['/usr/sbin/cron', '-f']
