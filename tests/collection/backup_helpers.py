"""What the backup tests share (tests/collection/test_backup*.py, tests/netfleet/test_backup_copies.py):
playbooks/backup.yml over the local fleet, and dbfleet.mysql.mysql_backup run on its own with the fleet's
backup account."""

from __future__ import annotations

import json
import subprocess

from devtools.fleet import INSTANCES
from devtools.fleet.seed import BACKUP_PASSWORD, BACKUP_USER
from tests.conftest import REPO, VENV_BIN, ansible_env

PLAYBOOK = REPO / 'playbooks' / 'backup.yml'
INVENTORY = REPO / 'inventories' / 'local_fleet.yml'


def playbook(dest, store_url, *args, inventories=(), extra_vars=None, background=False):
    """ansible-playbook playbooks/backup.yml over the local fleet (plus `inventories`)."""
    command = [str(VENV_BIN / 'ansible-playbook'), '-i', str(INVENTORY)]
    for inventory in inventories:
        command += ['-i', str(inventory)]
    variables = dict(dbfleet_backup_dest=str(dest))
    variables.update(extra_vars or {})
    command += [str(PLAYBOOK), '-e', json.dumps(variables), *args]
    env = ansible_env(DBFLEET_STORE_URL=store_url)
    if background:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return completed.returncode, completed.stdout + completed.stderr


def backup_host(name, user=BACKUP_USER, password=BACKUP_PASSWORD, **extra):
    values = dict(login_host='127.0.0.1', login_port=INSTANCES[name].port, login_user=user, login_password=password)
    values.update(extra)
    return values


def module_args(dest, **extra):
    args = dict(login_host='{{ login_host }}', login_port='{{ login_port }}', login_user='{{ login_user }}',
                login_password='{{ login_password }}', config_file='', dest=str(dest), name='{{ inventory_hostname }}')
    args.update(extra)
    return args


def run_backup_module(run_module, dest, hosts=('primary',), extra_args=(), **args):
    return run_module(dict((name, backup_host(name)) for name in hosts), module_args(dest, **args),
                      extra_args=extra_args, module='dbfleet.mysql.mysql_backup')
