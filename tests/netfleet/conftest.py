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
