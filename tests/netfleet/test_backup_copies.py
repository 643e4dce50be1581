"""Off-host copies: playbooks/backup.yml backs up the local fleet's primary (encrypted with age) and its
copy step puts the backup and the archived binlogs on the namespace fleet's backup host, over SSH
(rsync, host key checking on) and through an rclone SFTP remote, each verified by SHA-256 there and
recorded in the store; a repository whose host key is unknown fails the copy step, not the backup; what
retention removes locally is removed from the repositories too, and its copies leave the store."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.collection.backup_helpers import PLAYBOOK, INVENTORY
from tests.conftest import REPO, VENV_BIN, ansible_env

pytestmark = [pytest.mark.netfleet, pytest.mark.fleet]

BACKUP_HOST = 'backup1'


@pytest.fixture
def agent(netfleet, tmp_path):
    """An ssh-agent of this test holding the fleet's key, as a run's agent holds an ssh credential's."""
    socket = tmp_path / 'agent.sock'
    process = subprocess.Popen(['ssh-agent', '-D', '-a', str(socket)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if socket.is_socket():
                break
            if process.poll() is not None:
                pytest.fail('ssh-agent did not start')
            subprocess.run(['sleep', '0.01'], check=True)
        subprocess.run(['ssh-add', '-q', str(netfleet.key)], env=dict(os.environ, SSH_AUTH_SOCK=str(socket)),
                       check=True, capture_output=True, timeout=30)
        yield str(socket)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture
def local_fleet():
    """The local fleet, which must be running (tests/netfleet's `fleet` is the SSH fleet)."""
    from devtools.fleet import Fleet
    fleet = Fleet()
    if not fleet.status()['primary'].get('running'):
        pytest.skip('the local fleet is not running: python -m devtools.fleet start')
    return fleet


def archived_binlog(fleet, dest: Path) -> tuple[str, str]:
    """A completed archived binlog of the primary as the contract lays it out (the file and its .json):
    the first binary log of the primary's datadir, which the server has rotated past."""
    datadir = fleet.instance('primary').datadir
    files = sorted(path for path in datadir.glob('mysql-bin.[0-9]*'))
    assert len(files) >= 2, files
    directory = dest / 'primary' / 'binlogs'
    directory.mkdir(parents=True)
    target = directory / files[0].name
    shutil.copyfile(files[0], target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    (directory / (files[0].name + '.json')).write_text(json.dumps(dict(
        manifest_version=1, file=files[0].name, server_id=1, bytes=target.stat().st_size, sha256=digest,
        first_gtid=None, last_gtid=None, first_event_at=None, last_event_at=None, archived_at='2026-12-05T00:00:00Z')))
    return files[0].name, digest


def run_backup(dest, store_url, repositories, agent_socket, recipients=(), keep=7):
    variables = dict(dbfleet_backup_dest=str(dest), dbfleet_backup_databases=['crm'],
                     dbfleet_backup_repositories=repositories, dbfleet_backup_encrypt_recipients=list(recipients),
                     dbfleet_backup_retention_count=keep)
    command = [str(VENV_BIN / 'ansible-playbook'), '-i', str(INVENTORY), str(PLAYBOOK), '--limit', 'primary',
               '-e', json.dumps(variables)]
    done = subprocess.run(command, cwd=REPO, env=ansible_env(DBFLEET_STORE_URL=store_url, SSH_AUTH_SOCK=agent_socket),
                          capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def test_backup_and_binlogs_copied_to_the_backup_host_verified_and_recorded(local_fleet, netfleet, agent, tmp_path):
    from dbfleet.store import open_store
    address = netfleet.host(BACKUP_HOST).address
    remote_root = '/var/backups/dbfleet/copies-%s' % tmp_path.name[-12:]
    rclone_root = remote_root + '-rclone'
    rclone_config = tmp_path / 'rclone.conf'
    rclone_config.write_text('[backup1]\ntype = sftp\nhost = %s\nuser = root\nknown_hosts_file = %s\n'
                             'shell_type = unix\n' % (address, netfleet.known_hosts))
    repositories = [
        dict(name='vault', kind='ssh', host=address, user='root', path=remote_root,
             known_hosts=str(netfleet.known_hosts)),
        dict(name='sftp', kind='rclone', remote='backup1:%s' % rclone_root, config=str(rclone_config)),
    ]
    dest, store_url = tmp_path / 'backups', 'sqlite:///%s' % (tmp_path / 'store.db')
    binlog, binlog_sha = archived_binlog(local_fleet, dest)
    recipient = subprocess.run(['age-keygen'], capture_output=True, text=True, check=True).stdout
    public = next(line.split(': ')[1] for line in recipient.splitlines() if 'public key' in line)
    try:
        rc, output = run_backup(dest, store_url, repositories, agent, recipients=[public])
        assert rc == 0, output[-5000:]
        with open_store(store_url) as store:
            (backup,) = store.backups.list(host='primary')
            binlog_copies = store.copies.of_binlogs('primary')
        assert backup['status'] == 'ok' and backup['path'].startswith(str(dest))
        relative = os.path.relpath(backup['path'], dest)
        archive = Path(backup['path']) / 'dump.sql.gz.age'
        # On the backup host, both copies: the same bytes as the manifest says, encrypted.
        for root in (remote_root, rclone_root):
            remote = netfleet.ssh(BACKUP_HOST, 'sha256sum %s/%s/dump.sql.gz.age %s/primary/binlogs/%s; '
                                  'head -c 21 %s/%s/dump.sql.gz.age'
                                  % (root, relative, root, binlog, root, relative)).stdout
            assert remote.split()[0] == backup['checksum'] == hashlib.sha256(archive.read_bytes()).hexdigest()
            assert remote.split()[2] == binlog_sha and remote.rstrip().endswith('age-encryption.org/v1')
        copies = {copy['repository']: copy for copy in backup['copies']}
        assert set(copies) == {'vault', 'sftp'}
        for copy in copies.values():
            assert copy['status'] == 'ok' and copy['sha256'] == backup['checksum'] and copy['verified_at']
        assert copies['vault']['location'] == 'root@%s:%s/%s/dump.sql.gz.age' % (address, remote_root, relative)
        assert copies['sftp']['location'] == 'backup1:%s/%s/dump.sql.gz.age' % (rclone_root, relative)
        assert sorted((copy['repository'], copy['binlog_file'], copy['status']) for copy in binlog_copies) == [
            ('sftp', binlog, 'ok'), ('vault', binlog, 'ok')]
        assert 'copies: 4 of 4 copies verified in vault, sftp' in output

        # The catalog shows them: the CLI (from the store) and its JSON.
        listed = subprocess.run([str(VENV_BIN / 'dbfleet'), 'backups', 'list', '--store', store_url, '--json'],
                                capture_output=True, text=True, timeout=120, env=ansible_env())
        assert listed.returncode == 0, listed.stderr
        (entry,) = json.loads(listed.stdout)['backups']
        assert sorted(copy['repository'] for copy in entry['copies']) == ['sftp', 'vault']
        table = subprocess.run([str(VENV_BIN / 'dbfleet'), 'backups', 'list', '--store', store_url],
                               capture_output=True, text=True, timeout=120, env=ansible_env(COLUMNS='250'))
        assert 'vault ok, sftp ok' in table.stdout, table.stdout

        # A repository whose host key is not known: the copy step fails with why, the backup is fine;
        # the binlog already verified in vault is not sent again.
        unknown = tmp_path / 'empty_known_hosts'
        unknown.write_text('')
        repositories.append(dict(name='stranger', kind='ssh', host=address, user='root', path=remote_root,
                                 known_hosts=str(unknown)))
        rc, output = run_backup(dest, store_url, repositories, agent)
        assert rc != 0 and 'Host key verification failed' in output, output[-5000:]
        assert 'Fail the hosts whose off-host copy failed' in output
        with open_store(store_url) as store:
            newest = store.backups.list(host='primary')[0]
            binlog_copies = store.copies.of_binlogs('primary')
        assert newest['status'] == 'ok' and newest['id'] != backup['id']
        status = {copy['repository']: (copy['status'], copy['error']) for copy in newest['copies']}
        assert status['vault'][0] == 'ok' and status['sftp'][0] == 'ok'
        assert status['stranger'][0] == 'failed' and 'Host key verification failed' in status['stranger'][1]
        assert [copy['repository'] for copy in binlog_copies if copy['status'] == 'failed'] == ['stranger']
        assert len(binlog_copies) == 3, 'vault and sftp had it verified already'

        # Retention keeps one: the two older backups leave the disk, both repositories and the store.
        older = [backup, newest]
        rc, output = run_backup(dest, store_url, repositories[:2], agent, keep=1)
        assert rc == 0, output[-5000:]
        assert 'retention removed 2 backup(s)' in output and 'from 2 of 2 repositories' in output
        with open_store(store_url) as store:
            rows = store.backups.list(host='primary')
        kept = rows[0]
        assert kept['removed_at'] is None and all(row['removed_at'] for row in rows[1:])
        assert {row['id']: [copy['repository'] for copy in row['copies'] if copy['repository'] != 'stranger']
                for row in rows} == {kept['id']: ['vault', 'sftp'], backup['id']: [], newest['id']: []}
        for root in (remote_root, rclone_root):
            there = netfleet.ssh(BACKUP_HOST, 'cd %s/primary && ls -d */*-logical*' % root).stdout.split()
            assert there == [os.path.relpath(kept['path'], dest / 'primary')], (root, there, older)
    finally:
        netfleet.ssh(BACKUP_HOST, 'rm -rf %s %s' % (remote_root, rclone_root), check=False)
