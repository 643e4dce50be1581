"""The plumbing of a namespace host: a network namespace on the fleet's bridge, and a holder
process that owns the host's other namespaces (UTS for its hostname, mount for its own /etc/ssh,
/var/lib/mysql, crontabs..., time for its boot time). Every daemon of the host is started inside
all of them with nsenter, so an SSH session on db1 sees db1's hostname, files and uptime.

Only `ip`, `unshare` and `nsenter` (iproute2, util-linux); needs root.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from .topology import Host, Topology

NETNS_DIR = Path('/run/netns')


class NamespaceError(RuntimeError):
    pass


def run(argv, check=True, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NamespaceError('%s: %s' % (' '.join(argv), exc)) from exc
    if check and result.returncode != 0:
        raise NamespaceError('%s exited %d: %s' % (' '.join(argv), result.returncode,
                                                 (result.stderr or result.stdout).strip()[-500:]))
    return result


def can_make_namespaces() -> str | None:
    """None when this process can build namespace hosts, else why not (for a skip reason)."""
    if os.geteuid() != 0:
        return 'namespace hosts need root (ip netns, unshare)'
    for tool in ('/usr/sbin/sshd', '/usr/bin/unshare', '/usr/bin/nsenter'):
        if not os.access(tool, os.X_OK):
            return '%s is missing (make setup installs it)' % tool
    probe = run(['unshare', '--net', '--uts', '--mount', '--time', 'true'], check=False)
    if probe.returncode != 0:
        return 'this kernel refuses new namespaces: %s' % probe.stderr.strip()
    return None


def link_exists(name: str) -> bool:
    return run(['ip', 'link', 'show', 'dev', name], check=False).returncode == 0


def namespace_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def ensure_bridge(topology: Topology):
    if not link_exists(topology.bridge):
        run(['ip', 'link', 'add', topology.bridge, 'type', 'bridge'])
    address = '%s/24' % topology.controller_address
    shown = run(['ip', '-o', '-4', 'addr', 'show', 'dev', topology.bridge]).stdout
    if address not in shown:
        run(['ip', 'addr', 'add', address, 'dev', topology.bridge])
    run(['ip', 'link', 'set', topology.bridge, 'up'])


def ensure_network(topology: Topology, host: Host):
    """The host's namespace with `eth0` on the bridge at its address; no default route, so a
    namespace host reaches the fleet's subnet and nothing else."""
    if not namespace_exists(host.namespace):
        run(['ip', 'netns', 'add', host.namespace])
    inside = ['ip', 'netns', 'exec', host.namespace]
    if run(inside + ['ip', 'link', 'show', 'dev', 'eth0'], check=False).returncode != 0:
        if link_exists(host.veth):
            run(['ip', 'link', 'del', host.veth])
        peer = host.veth + 'n'
        run(['ip', 'link', 'add', host.veth, 'type', 'veth', 'peer', 'name', peer])
        run(['ip', 'link', 'set', peer, 'netns', host.namespace])
        run(inside + ['ip', 'link', 'set', peer, 'name', 'eth0'])
    run(['ip', 'link', 'set', host.veth, 'master', topology.bridge, 'up'])
    address = '%s/24' % host.address
    if address not in run(inside + ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']).stdout:
        run(inside + ['ip', 'addr', 'add', address, 'dev', 'eth0'])
    run(inside + ['ip', 'link', 'set', 'eth0', 'up'])
    run(inside + ['ip', 'link', 'set', 'lo', 'up'])


def set_link(host: Host, up: bool):
    """Cut (or restore) the host's network: its end of the veth pair goes down."""
    run(['ip', 'link', 'set', host.veth, 'up' if up else 'down'])


def _machine_uptime() -> float:
    return float(Path('/proc/uptime').read_text().split()[0])


def holder_alive(host: Host, pid: int | None) -> bool:
    """The recorded holder still runs in the host's network namespace."""
    if not pid:
        return False
    try:
        return os.stat('/proc/%d/ns/net' % pid).st_ino == os.stat(NETNS_DIR / host.namespace).st_ino
    except OSError:
        return False


def start_holder(host: Host, binds: list[tuple[Path, str]], pid_file: Path, timeout: float = 10) -> int:
    """Start the process that owns the host's UTS, mount and time namespaces: it sets the
    hostname, bind-mounts the host's own directories over the system's (private propagation:
    nothing leaks to the machine) and sleeps. Returns its pid."""
    pid_file.unlink(missing_ok=True)
    offset = max(0, int(host.boot_age - _machine_uptime()))
    # The pid file is opened first (a bind over /tmp may hide its directory) and written last,
    # when every bind is in place.
    lines = ['set -e', "exec 3> '%s'" % pid_file, 'hostname %s' % host.name]
    for source, target in binds:
        lines.append("mount --rbind '%s' '%s'" % (source, target))
    lines += ['echo $$ >&3', 'exec 3>&-', 'exec sleep infinity']
    argv = ['ip', 'netns', 'exec', host.namespace, 'unshare', '--uts', '--mount', '--propagation', 'private',
            '--time', '--boottime', str(offset), '--fork', '--kill-child', '/bin/sh', '-c', '\n'.join(lines)]
    log = open(pid_file.with_suffix('.log'), 'ab')
    with log:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            if holder_alive(host, pid):
                return pid
        time.sleep(0.05)
    raise NamespaceError('%s: the namespace holder did not start (see %s)' % (host.name, pid_file.with_suffix('.log')))


def inside(pid: int) -> list[str]:
    """The argv prefix that runs a command in the host whose holder is `pid`."""
    return ['nsenter', '--target', str(pid), '--net', '--uts', '--mount', '--time', '--']


def launch(holder: int, argv: list[str], log: Path, env: dict | None = None) -> int:
    """Start a daemon in the host, detached (it outlives this process), its output appended to
    `log`. The log is opened here and handed down as a file descriptor: inside the host, a path
    under /tmp or /root is the host's own, not this machine's. Returns the daemon's pid."""
    with open(log, 'ab') as output:
        # The shell's stderr is the log; the daemon's stdout joins it, the shell's stdout says its pid.
        result = subprocess.run(inside(holder) + ['/bin/sh', '-c', '"$@" </dev/null >&2 & echo $!', 'sh', *argv],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=output, text=True,
                                start_new_session=True, env=env)
    if result.returncode != 0 or not result.stdout.strip().isdigit():
        raise NamespaceError('could not start %s (see %s)' % (argv[0], log))
    return int(result.stdout.strip())


def pids_in(host: Host) -> list[int]:
    if not namespace_exists(host.namespace):
        return []
    output = run(['ip', 'netns', 'pids', host.namespace], check=False).stdout
    return [int(word) for word in output.split() if word.isdigit()]


def holder_pid_files(host: Host) -> set[str]:
    """The pid files named by the holders running in the host's namespace: which checkout's
    fleet the namespace belongs to."""
    found = set()
    for pid in pids_in(host):
        with contextlib.suppress(OSError):
            script = Path('/proc/%d/cmdline' % pid).read_bytes().decode(errors='replace')
            match = re.search(r"exec 3> '([^']+)'", script)
            if match:
                found.add(match.group(1))
    return found


def _alive(pid: int) -> bool:
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def kill_all(host: Host, grace: float = 30):
    """TERM every process of the host (mariadbd shuts down cleanly on TERM), KILL what is left."""
    pids = pids_in(host)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids_in(host):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids_in(host)):
        time.sleep(0.05)


def remove(topology: Topology, host: Host):
    kill_all(host)
    if namespace_exists(host.namespace):
        run(['ip', 'netns', 'del', host.namespace])
    if link_exists(host.veth):
        run(['ip', 'link', 'del', host.veth], check=False)


def remove_bridge(topology: Topology):
    if link_exists(topology.bridge):
        run(['ip', 'link', 'del', topology.bridge])


def leftovers(topology: Topology) -> list[str]:
    """What of this fleet is still on the machine: namespaces, links (for tests of the clean-up)."""
    prefix = 'dbf%d' % topology.fleet_id
    found = ['netns ' + name for name in (os.listdir(NETNS_DIR) if NETNS_DIR.exists() else [])
             if name.startswith(prefix + '-')]
    links = run(['ip', '-o', 'link', 'show'], check=False).stdout
    for line in links.splitlines():
        name = line.split(':')[1].strip().split('@')[0] if ':' in line else ''
        if name == topology.bridge or any(name == host.veth for host in topology.hosts):
            found.append('link ' + name)
    return found
