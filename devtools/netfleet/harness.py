"""A fleet of namespace hosts on this machine: real sshd, mariadbd and cron per host.

    fleet = NetFleet()           # FLEET_HOSTS (default db=4,worker=2,backup=1), NETFLEET_ID (default 0)
    fleet.start()                # idempotent: adopts what runs, starts what does not
    fleet.ssh('db1', 'hostname') # over SSH with host key checking against fleet.known_hosts
    fleet.stop()                 # no namespace, veth, bridge, process or mount left

Database hosts: db1 is a primary (binlog, GTID), db2 its replica (GTID replication over the
fleet network), the others standalone; each seeded once with schemas of different sizes (a
marker table records the seed version). Worker and backup hosts run sshd and cron only. The
controller (this machine) is the bridge's address; its SSH keys and the known_hosts file the
harness writes (from the host keys it made, no trust on first use) live under var/netfleet/<id>/ssh.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pymysql

from devtools.fleet import seed

from . import hosts as host_files
from . import namespaces
from .topology import Host, Topology, build

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90
ADMIN_USER = 'netfleet_admin'
PASSPHRASE = 'netfleet key passphrase'  # of the second client key, for passphrase-protected credentials
SEED_VERSION = 1
STANDALONE_TENANTS = 12  # tenant schemas on each standalone host (db3 and up), times its number


class NetFleetError(RuntimeError):
    pass


def default_fleet_id() -> int:
    text = os.environ.get('NETFLEET_ID', '0')
    if not text.isdigit():
        raise NetFleetError('NETFLEET_ID must be a number 0..250, not %r' % text)
    return int(text)


class NetFleet:
    def __init__(self, spec: str | None = None, fleet_id: int | None = None, base: Path | None = None):
        fleet_id = default_fleet_id() if fleet_id is None else fleet_id
        self.spec = spec if spec is not None else os.environ.get('FLEET_HOSTS')
        self.topology: Topology = build(self.spec, fleet_id)
        # Resolved, as the local fleet's: checkouts share one fleet through a var/netfleet symlink.
        self.dir = (Path(base) if base else REPO / 'var' / 'netfleet' / str(fleet_id)).resolve()
        self.ssh_dir = self.dir / 'ssh'

    # --- paths and names ------------------------------------------------------------------------

    @property
    def key(self) -> Path:
        """The controller's SSH key (no passphrase), authorized on every host."""
        return self.ssh_dir / 'id_ed25519'

    @property
    def key_with_passphrase(self) -> Path:
        return self.ssh_dir / 'id_ed25519_passphrase'

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / 'known_hosts'

    @property
    def state_file(self) -> Path:
        return self.dir / 'state.json'

    def files(self, host: Host | str) -> host_files.HostFiles:
        host = self.topology.host(host) if isinstance(host, str) else host
        return host_files.HostFiles(self.dir, self.topology, host, checkout=REPO)

    def host(self, name: str) -> Host:
        return self.topology.host(name)

    @property
    def admin_password(self) -> str:
        return (self.dir / 'admin.password').read_text().strip()

    # --- public API -----------------------------------------------------------------------------

    def start(self) -> dict:
        reason = namespaces.can_make_namespaces()
        if reason:
            raise NetFleetError(reason)
        began = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        with self._lock():
            state = self._read_state()
            self._remove_hosts_not_in_topology(state)
            self._client_keys()
            authorized = ''.join(Path(str(key) + '.pub').read_text() for key in (self.key, self.key_with_passphrase))
            namespaces.ensure_bridge(self.topology)
            self._make_mount_points(state)
            started = []
            for host in self.topology.hosts:
                files = self.files(host)
                files.prepare(authorized)
                namespaces.ensure_network(self.topology, host)
                holder = state['holders'].get(host.name)
                if not namespaces.holder_alive(host, holder):
                    self._check_owner(host)
                    namespaces.kill_all(host, grace=10)  # whatever a crashed run left in the namespace
                    holder = namespaces.start_holder(host, files.binds(), files.holder_pid_file)
                    state['daemons'][host.name] = {}
                    started.append(host.name)
                state['holders'][host.name] = holder
                self._write_state(state)
            self._write_known_hosts()
            databases = self.topology.of_kind('db')
            with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(self._install_db, databases))
            for host in self.topology.hosts:
                self._launch_daemons(host, state)
            self._write_state(state)
            for host in self.topology.hosts:
                self._wait_ready(host, state)
            seeded = self._converge()
        info = self.status()
        info['_summary'] = dict(started=started, seeded=seeded, seconds=round(time.monotonic() - began, 1))
        return info

    def stop(self):
        """Remove every host (processes TERMed then KILLed, namespaces, veths) and the bridge;
        the files under var/netfleet/<id> stay so a restart keeps the host keys and data."""
        with self._lock():
            state = self._read_state()
            names = set(state['holders']) | {host.name for host in self.topology.hosts}
            for name in sorted(names, key=lambda name: name != 'db2'):  # the replica first
                namespaces.remove(self.topology, self._any_host(name))
            namespaces.remove_bridge(self.topology)
            self._remove_mount_points(state)
            state.update(holders={}, daemons={})
            self._write_state(state)

    def status(self) -> dict:
        state = self._read_state()
        result = {}
        for host in self.topology.hosts:
            info = dict(kind=host.kind, role=host.role, address=host.address, namespace=host.namespace,
                        holder=state['holders'].get(host.name))
            info['running'] = namespaces.holder_alive(host, info['holder'])
            info['sshd'] = info['running'] and _port_open(host.address, 22)
            if host.kind == 'db':
                info['mariadb'] = info['running'] and _port_open(host.address, 3306)
            result[host.name] = info
        return result

    def leftovers(self) -> list[str]:
        return namespaces.leftovers(self.topology)

    def ssh(self, host: str, command: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        """Run a shell command on the host over SSH, as Ansible would reach it."""
        argv = ['ssh', *self.ssh_options(), 'root@%s' % self.host(host).address, command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise NetFleetError('ssh %s %r exited %d: %s' % (host, command, result.returncode, result.stderr.strip()))
        return result

    def ssh_options(self) -> list[str]:
        return ['-i', str(self.key), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
                '-o', 'StrictHostKeyChecking=yes', '-o', 'UserKnownHostsFile=%s' % self.known_hosts,
                '-o', 'ConnectTimeout=10']

    def run_inside(self, host: str, argv: list[str], input: str | None = None, timeout: float = 300,
                   check: bool = True) -> subprocess.CompletedProcess:
        """Run a command in the host's namespaces directly (no SSH): the harness's own back door."""
        holder = self._read_state()['holders'].get(host)
        if not namespaces.holder_alive(self.host(host), holder):
            raise NetFleetError('namespace host %s is not running (make fleet)' % host)
        result = subprocess.run(namespaces.inside(holder) + argv, input=input, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise NetFleetError('%s on %s exited %d: %s' % (argv[0], host, result.returncode,
                                                          (result.stderr or result.stdout).strip()[-800:]))
        return result

    def spawn(self, host: str, argv: list[str], log: Path, env: dict | None = None) -> int:
        """Start a long-running process on the host (a dbfleet worker, say), detached, its output
        appended to `log` on this machine; returns its pid (stop it with os.kill)."""
        holder = self._read_state()['holders'].get(host)
        if not namespaces.holder_alive(self.host(host), holder):
            raise NetFleetError('namespace host %s is not running (make fleet)' % host)
        return namespaces.launch(holder, argv, log, env=env)

    def sql(self, host: str, statements, timeout: float = 600) -> str:
        """Statements run as root over the host's own socket (unix_socket authentication)."""
        text = statements if isinstance(statements, str) else ';\n'.join(statements) + ';\n'
        return self.run_inside(host, ['mariadb', '--batch', '--skip-column-names'], input=text,
                               timeout=timeout).stdout

    def admin(self, host: str, **kwargs) -> pymysql.Connection:
        """A connection from the controller over the fleet network, as the harness's admin account."""
        options = dict(host=self.host(host).address, port=3306, user=ADMIN_USER, password=self.admin_password,
                       autocommit=True, connect_timeout=5, charset='utf8mb4')
        options.update(kwargs)
        return pymysql.connect(**options)

    def cut(self, host: str):
        """Cut the host off the fleet network (its veth goes down); `restore` brings it back."""
        namespaces.set_link(self.host(host), up=False)

    def restore(self, host: str):
        namespaces.set_link(self.host(host), up=True)

    def inventory(self, known_hosts: str | None = None) -> str:
        """An SSH inventory of this fleet; inventories/ssh_fleet.yml is fleet 0's, with the
        known_hosts path relative to the inventory (`known_hosts` replaces the absolute path)."""
        known_hosts = known_hosts or str(self.known_hosts)
        groups = {'db': 'mysql', 'worker': 'workers', 'backup': 'backup'}
        lines = [
            '---',
            '# The namespace fleet (devtools/netfleet, `make fleet`): %s, reached over SSH as root'
            % ', '.join('%d %s' % (len(self.topology.of_kind(kind)), group) for kind, group in groups.items()),
            '# with host key checking against the known_hosts file the fleet harness writes from the',
            "# host keys it made. No key here: pass one (--private-key, ssh-agent) or let the service's",
            '# SSH credential do it. Database hosts are group `mysql` like the local fleet; they log in',
            '# over their own socket with the accounts of group_vars/mysql.yml. Generated by',
            '# `python -m devtools.netfleet inventory`; tests/netfleet checks it is current.',
            'all:',
            '  children:',
        ]
        anchor_written = False
        for kind, group in groups.items():
            members = self.topology.of_kind(kind)
            if not members:
                continue
            lines += ['    %s:' % group, '      hosts:']
            for host in members:
                lines += ['        %s:' % host.name, '          ansible_host: %s' % host.address]
                if not anchor_written:
                    lines += ['          <<: &ssh_host',
                              '            ansible_connection: ssh',
                              '            ansible_user: root',
                              '            ansible_ssh_common_args: >-',
                              '              -o StrictHostKeyChecking=yes',
                              '              -o UserKnownHostsFile=%s' % known_hosts,
                              '            # the virtualenv playbooks/prepare_hosts.yml makes (PyMySQL, dbfleet[agent])',
                              '            ansible_python_interpreter: /opt/dbfleet/venv/bin/python',
                              '            login_host: localhost',
                              '            login_unix_socket: /run/mysqld/mysqld.sock']
                    anchor_written = True
                else:
                    lines.append('          <<: *ssh_host')
        return '\n'.join(lines) + '\n'

    # --- start steps ----------------------------------------------------------------------------

    def _client_keys(self):
        self.ssh_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.ssh_dir, 0o700)
        for key, passphrase in ((self.key, ''), (self.key_with_passphrase, PASSPHRASE)):
            if not key.exists():
                subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', passphrase, '-C', 'dbfleet-controller',
                                '-f', str(key)], check=True, capture_output=True)
        password_file = self.dir / 'admin.password'
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(18) + '\n')
            os.chmod(password_file, 0o600)

    def _check_owner(self, host: Host):
        owners = namespaces.holder_pid_files(host) - {str(self.files(host).holder_pid_file)}
        if owners:
            raise NetFleetError('namespace %s belongs to the fleet under %s; stop it there, or give this one another'
                                ' NETFLEET_ID' % (host.namespace, Path(sorted(owners)[0]).parents[2]))

    def _make_mount_points(self, state: dict):
        made = state.setdefault('mount_points_made', [])
        for target in host_files.missing_mount_points():
            if target in host_files.FILES:
                Path(target).touch()
            else:
                os.makedirs(target)
            made.append(target)
        self._write_state(state)

    def _remove_mount_points(self, state: dict):
        """The empty mount points this fleet made, once no namespace fleet is left on the machine."""
        if any(name.startswith('dbf') for name in os.listdir(namespaces.NETNS_DIR)) if namespaces.NETNS_DIR.exists() \
                else False:
            return
        for target in reversed(state.get('mount_points_made', [])):
            with contextlib.suppress(OSError):
                path = Path(target)
                if path.is_dir():
                    path.rmdir()  # only when empty
                elif path.stat().st_size == 0:
                    path.unlink()
        state['mount_points_made'] = []

    def _write_known_hosts(self):
        lines = ['%s %s\n' % (host.address, self.files(host).host_public_key()) for host in self.topology.hosts]
        self.known_hosts.write_text(''.join(lines))
        os.chmod(self.known_hosts, 0o644)

    def _install_db(self, host: Host):
        datadir = self.files(host).path('/var/lib/mysql')
        if not any((datadir / name).exists() for name in ('mysql_upgrade_info', 'mariadb_upgrade_info')):
            self.run_inside(host.name, host_files.install_db_command())

    def _launch_daemons(self, host: Host, state: dict):
        files = self.files(host)
        holder = state['holders'][host.name]
        daemons = state['daemons'].setdefault(host.name, {})
        wanted = {'sshd': host_files.sshd_command(), 'cron': host_files.cron_command()}
        if host.kind == 'db':
            wanted['mariadbd'] = host_files.mariadbd_command()
        for name, argv in wanted.items():
            if not _alive(daemons.get(name)):
                daemons[name] = namespaces.launch(holder, argv, files.logs / ('%s.log' % name))

    def _wait_ready(self, host: Host, state: dict):
        files = self.files(host)
        daemons = state['daemons'][host.name]
        deadline = time.monotonic() + READY_TIMEOUT
        ports = [22] + ([3306] if host.kind == 'db' else [])
        while not all(_port_open(host.address, port) for port in ports):
            for name, pid in daemons.items():
                if not _alive(pid):
                    raise NetFleetError('%s: %s exited during start (see %s)' % (host.name, name, files.logs))
            if time.monotonic() > deadline:
                raise NetFleetError('%s: not answering on ports %s after %d s (see %s)'
                                    % (host.name, ports, READY_TIMEOUT, files.logs))
            time.sleep(0.1)

    def _converge(self) -> list[str]:
        """Accounts, data and replication, each once (the marker table says what was done)."""
        seeded = []
        databases = self.topology.of_kind('db')
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            work = {pool.submit(self._seed, host): host for host in databases if host.role != 'replica'}
            for future, host in work.items():
                if future.result():
                    seeded.append(host.name)
        replica = self.topology.replica
        if replica is not None and self._replication_missing(replica):
            self._configure_replica(replica)
            seeded.append(replica.name)
        if replica is not None:
            self.wait_replica_caught_up()
        return seeded

    def _seeded_version(self, host: Host) -> int:
        if not self._has_marker(host):
            return 0
        text = self.sql(host.name, 'SELECT IFNULL(MAX(version), 0) FROM %s.seeded' % seed.MARKER_SCHEMA)
        return int(text.strip() or 0)

    def _has_marker(self, host: Host) -> bool:
        return bool(self.sql(host.name, "SELECT 1 FROM information_schema.tables WHERE table_schema = '%s'"
                                        " AND table_name = 'seeded'" % seed.MARKER_SCHEMA).strip())

    def _seed(self, host: Host) -> bool:
        if self._seeded_version(host) == SEED_VERSION:
            self._admin_account(host)  # the password file may be new (var/netfleet wiped, datadir kept)
            return False
        statements = self._admin_account_sql()
        statements += seed.accounts_sql()
        if host.role == 'primary':
            subnet_host = '%s.%%' % self.topology.controller_address.rsplit('.', 1)[0]
            statements += ["CREATE OR REPLACE USER '%s'@'%s' IDENTIFIED BY '%s'" % (seed.REPL_USER, subnet_host,
                                                                                 seed.REPL_PASSWORD),
                           "GRANT REPLICATION SLAVE ON *.* TO '%s'@'%s'" % (seed.REPL_USER, subnet_host)]
            statements += seed.crm_sql() + seed.audit_sql()
        else:
            for number in range(1, STANDALONE_TENANTS * (host.number - 2) + 1):
                statements += seed.tenant_sql(number)
        statements += [s.replace('VALUES (%d,' % seed.SEED_VERSION, 'VALUES (%d,' % SEED_VERSION)
                       for s in seed.marker_sql(host.role)]
        self.sql(host.name, statements)
        return True

    def _admin_account_sql(self) -> list[str]:
        account = "'%s'@'%s'" % (ADMIN_USER, self.topology.controller_address)
        return ["CREATE OR REPLACE USER %s IDENTIFIED BY '%s'" % (account, self.admin_password),
                'GRANT ALL PRIVILEGES ON *.* TO %s WITH GRANT OPTION' % account]

    def _admin_account(self, host: Host):
        if host.role == 'replica':
            return
        self.sql(host.name, self._admin_account_sql())

    def _replication_missing(self, replica: Host) -> bool:
        status = self.sql(replica.name, 'SHOW SLAVE STATUS')
        return not status.strip()

    def _configure_replica(self, replica: Host):
        primary = self.topology.primary
        self.sql(replica.name, [
            'STOP ALL SLAVES', 'RESET MASTER', "SET GLOBAL gtid_slave_pos = ''",
            "CHANGE MASTER TO MASTER_HOST = '%s', MASTER_PORT = 3306, MASTER_USER = '%s', MASTER_PASSWORD = '%s',"
            ' MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1' % (primary.address, seed.REPL_USER,
                                                                      seed.REPL_PASSWORD),
            'START SLAVE'])

    def wait_replica_caught_up(self, timeout: float = 120) -> str:
        primary, replica = self.topology.primary, self.topology.replica
        target = self.sql(primary.name, 'SELECT @@gtid_binlog_pos').strip()
        wanted = _gtid(target)
        deadline = time.monotonic() + timeout
        while True:
            current = _gtid(self.sql(replica.name, 'SELECT @@gtid_slave_pos').strip())
            if all(current.get(domain, 0) >= sequence for domain, sequence in wanted.items()):
                return target
            if time.monotonic() > deadline:
                status = self.sql(replica.name, 'SHOW SLAVE STATUS\\G')
                raise NetFleetError('replica %s did not reach %s in %d s:\n%s' % (replica.name, target, timeout,
                                                                                 status[-1500:]))
            time.sleep(0.2)

    # --- state ----------------------------------------------------------------------------------

    def _any_host(self, name: str) -> Host:
        """A host of this fleet by name, also one a previous FLEET_HOSTS had and this one has not."""
        with contextlib.suppress(ValueError):
            return self.topology.host(name)
        from .topology import Host as HostRecord, FIRST_OCTET
        kind = name.rstrip('0123456789')
        if kind not in FIRST_OCTET:
            raise NetFleetError('unknown host %r in %s' % (name, self.state_file))
        return HostRecord(name, kind, int(name[len(kind):]), self.topology.fleet_id, 0)

    def _remove_hosts_not_in_topology(self, state: dict):
        wanted = {host.name for host in self.topology.hosts}
        for name in [name for name in state['holders'] if name not in wanted]:
            namespaces.remove(self.topology, self._any_host(name))
            state['holders'].pop(name, None)
            state['daemons'].pop(name, None)

    def _read_state(self) -> dict:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            state = {}
        state.setdefault('holders', {})
        state.setdefault('daemons', {})
        return state

    def _write_state(self, state: dict):
        state['spec'] = self.spec
        temporary = self.state_file.with_suffix('.tmp')
        temporary.write_text(json.dumps(state, indent=1, sort_keys=True))
        temporary.replace(self.state_file)

    @contextlib.contextmanager
    def _lock(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / 'lock', 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _gtid(text: str) -> dict[int, int]:
    position = {}
    for part in filter(None, (item.strip() for item in text.split(','))):
        domain, _server, sequence = part.split('-')
        position[int(domain)] = int(sequence)
    return position


def _alive(pid) -> bool:
    if not pid:
        return False
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def _port_open(address: str, port: int, timeout: float = 1.0) -> bool:
    with contextlib.suppress(OSError):
        with socket.create_connection((address, port), timeout=timeout):
            return True
    return False
