"""The namespace fleet reached as a real inventory would: over SSH with the fleet's key and
host key checking on, from an inventory beside the repository's group_vars; its database hosts
prepared once per session by playbooks/prepare_hosts.yml (the virtualenv with dbfleet[agent])."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, VENV_BIN, ansible_env

DB_HOSTS = ('db1', 'db2', 'db3', 'db4')
VENV = '/opt/dbfleet/venv'  # where prepare_hosts.yml installs dbfleet[agent] on the database hosts


class Fleet:
    """This test fleet's inventory (beside the repository's group_vars, as inventories/ssh_fleet.yml
    is) and ansible-playbook runs against it with the fleet's key."""

    def __init__(self, netfleet, directory: Path):
        self.netfleet = netfleet
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.inventory = directory / 'ssh_fleet.yml'
        self.inventory.write_text(netfleet.inventory())
        (directory / 'group_vars').symlink_to(REPO / 'inventories' / 'group_vars')

    def playbook(self, playbook, *args, **env) -> subprocess.CompletedProcess:
        command = [str(VENV_BIN / 'ansible-playbook'), '-i', str(self.inventory), '--private-key',
                   str(self.netfleet.key), str(playbook), *map(str, args)]
        return subprocess.run(command, cwd=REPO, env=ansible_env(**env), capture_output=True, text=True, timeout=900)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counts per host."""
    return {match.group(1): {key: int(value) for key, value in re.findall(r'(\w+)=(\d+)', match.group(2))}
            for match in re.finditer(r'^(\S+)\s+:\s+(ok=.*)$', output, re.MULTILINE)}


def output_of(run: subprocess.CompletedProcess) -> str:
    return run.stdout + run.stderr


@pytest.fixture(scope='session')
def fleet(netfleet, tmp_path_factory):
    return Fleet(netfleet, tmp_path_factory.mktemp('ssh_fleet'))


@pytest.fixture(scope='session')
def prepared(fleet, netfleet):
    """prepare_hosts.yml twice, on database hosts whose /opt/dbfleet is removed first: the first run
    installs from nothing, the second must change nothing."""
    for host in DB_HOSTS:
        netfleet.ssh(host, 'rm -rf /opt/dbfleet')
    first = fleet.playbook(REPO / 'playbooks' / 'prepare_hosts.yml')
    assert first.returncode == 0, output_of(first)[-6000:]
    second = fleet.playbook(REPO / 'playbooks' / 'prepare_hosts.yml')
    assert second.returncode == 0, output_of(second)[-6000:]
    return first, second


# -- the platform's processes on other hosts --------------------------------------------------------

@pytest.fixture(scope='module')
def platform(netfleet, tmp_path_factory):
    """Redis and the store (MariaDB) on the fleet bridge's address, where every host reaches them."""
    from devtools.netfleet.platform import Platform
    platform = Platform(netfleet, tmp_path_factory.mktemp('platform')).start()
    yield platform
    platform.stop()


def remote_env(service, key: str, **more: str) -> dict:
    """What a platform machine's /etc/dbfleet/dbfleet.env would give a dbfleet process on another
    host: Redis, the store and the secret key of the platform, its own state directory, the
    checkout as its project (the namespace hosts see this machine's files there)."""
    import sys
    env = {
        'PATH': '%s:/usr/sbin:/usr/bin:/sbin:/bin' % Path(sys.executable).parent,
        'HOME': '/root', 'LANG': 'C.UTF-8',
        'DBFLEET_REDIS_URL': service.redis.url, 'DBFLEET_STORE_URL': service.store_url,
        'DBFLEET_SECRET_KEY': key, 'DBFLEET_VAR_DIR': '/var/lib/dbfleet/platform',
        'DBFLEET_PROJECT_DIR': str(REPO), 'DBFLEET_INVENTORY_DIRS': service.inventory_dirs,
        'DBFLEET_LOST_AFTER_SECONDS': '6',
    }
    env.update(more)
    return env


def dbfleet_processes(netfleet, host: str) -> list[int]:
    """The dbfleet processes started on the host with remote_env, and everything under them."""
    import contextlib
    found = []
    for pid in namespaces_pids(netfleet, host):
        with contextlib.suppress(OSError):
            if b'DBFLEET_REDIS_URL=' in Path('/proc/%d/environ' % pid).read_bytes():
                found.append(pid)
    return found


def namespaces_pids(netfleet, host: str) -> list[int]:
    from devtools.netfleet import namespaces
    return namespaces.pids_in(netfleet.host(host))


def stop_remote(netfleet, host: str, pid: int, seconds: float = 30) -> None:
    """SIGTERM the process and wait for it to end; SIGKILL it after `seconds`."""
    import contextlib
    import os
    import signal
    import time
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and pid in dbfleet_processes(netfleet, host):
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def wait_until(predicate, what: str, timeout: float = 60):
    """`predicate()`'s first true value, polled; fails naming `what` after `timeout` (x PATIENCE)."""
    import time
    from devtools.service_harness import PATIENCE
    deadline = time.monotonic() + timeout * PATIENCE
    while not (value := predicate()):
        assert time.monotonic() < deadline, 'timed out: %s' % what
        time.sleep(0.3)
    return value
