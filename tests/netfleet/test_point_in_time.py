"""A dropped table brought back on the SSH fleet, through the API, from an encrypted backup copied off the host.

As a platform team runs it: the platform's store and Redis on the fleet network, the API and a worker on this
machine; `dbfleet archive run` on the primary db1 streaming its binary logs into db1's backup repository; the
nightly backup template over SSH (the fleet's key as a credential) writing db1's backup encrypted to an age key
and copying it, with the archived binlogs, to the backup host backup1 over SSH (the run's agent forwarded).
Then more writes, a table dropped by accident, more writes; an operator asks for db1 as it was one second before
the drop (`POST /api/v1/backups/restore`): the restore template (the key and the age identity as credentials)
restores the backup into a sandbox on db1, decrypting it in the stream, replays the archive to that second and
verifies it. The catalog shows db1's restorable window with no gap, and a drill of db1 restores the same backup
to the window's end. Once db1's disk is lost, the backup and its binlogs come back from backup1's copy, and a
drill of that copy proves it. The age identity is never in a job's output or events."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from cryptography.fernet import Fernet

from tests.netfleet.conftest import remote_env, stop_remote, wait_until
from devtools.service_harness import REPO, Service

pytestmark = [pytest.mark.netfleet, pytest.mark.service]

HOST, BACKUP_HOST = 'db1', 'backup1'
# The inventory the templates use, under the project as the API requires (git-ignored).
SSH_DIR = 'var/pitr-tests/%s' % os.environ.get('NETFLEET_ID', '0')
TEMPLATE = 'nightly-backup-db1'


def age_key() -> tuple[str, str]:
    """(the private key line, the public key) of a new age key pair."""
    made = subprocess.run(['age-keygen'], capture_output=True, text=True, check=True, timeout=30)
    lines = made.stdout.splitlines()
    return (next(line for line in lines if line.startswith('AGE-SECRET-KEY-1')),
            next(line.split(': ')[1] for line in lines if 'public key' in line))


@pytest.fixture(scope='module')
def setting(netfleet, platform, prepared, tmp_path_factory):
    """The SSH fleet's inventory with db1's backup settings as group vars (where an admin keeps them: the
    repository on backup1, the age recipient, a destination of this test's own), the service over the
    platform, and the archive stream on db1."""
    run = uuid.uuid4().hex[:10]
    dest, remote_root = '/var/backups/dbfleet/pitr-%s' % run, '/var/backups/dbfleet/pitr-%s-copies' % run
    identity, public = age_key()
    directory = REPO / SSH_DIR
    directory.mkdir(parents=True, exist_ok=True)
    inventory = yaml.safe_load(netfleet.inventory())
    inventory['all']['children']['mysql']['vars'] = {
        'dbfleet_backup_dest': dest, 'dbfleet_backup_retention_count': 10,
        'dbfleet_backup_encrypt_recipients': [public],
        'dbfleet_backup_repositories': [dict(name='vault', kind='ssh', host=netfleet.host(BACKUP_HOST).address,
                                             user='root', path=remote_root, known_hosts=str(netfleet.known_hosts))],
    }
    (directory / 'ssh_fleet.yml').write_text(yaml.safe_dump(inventory, sort_keys=False))
    if not (directory / 'group_vars').exists():
        (directory / 'group_vars').symlink_to(REPO / 'inventories' / 'group_vars')
    key = Fernet.generate_key().decode()
    stream = {}

    def stop_stream():
        if stream.get('pid') is not None:
            stop_remote(netfleet, HOST, stream.pop('pid'))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('DBFLEET_SECRET_KEY', key)
        service = Service(tmp_path_factory.mktemp('pitr-service'), workers=1, store_url=platform.store_url,
                          redis_url=platform.redis_url,
                          inventory_dirs=json.dumps(['inventories', 'tests/service', SSH_DIR])).start()
        try:
            # The archive on the primary itself, as root over its socket (a systemd unit would run it there).
            netfleet.run_inside(HOST, ['sh', '-c', 'umask 077; mkdir -p /etc/dbfleet; printf "[client]\\nuser=root\\n'
                                       'socket=/run/mysqld/mysqld.sock\\n" > /etc/dbfleet/archive.cnf'])
            stream['pid'] = netfleet.spawn(HOST, [sys.executable, '-m', 'runner_service.cli', 'archive', 'run', '--host', HOST,
                                           '--dest', dest, '--defaults-file', '/etc/dbfleet/archive.cnf',
                                           '--poll', '1'],
                                    service.directory / 'archive-db1.log', env=remote_env(service, key))
            yield dict(service=service, dest=dest, remote_root=remote_root, identity=identity, public=public,
                       inventory='%s/ssh_fleet.yml' % SSH_DIR, stop_stream=stop_stream)
        finally:
            stop_stream()
            service.stop()
            netfleet.run_inside(HOST, ['rm', '-rf', dest, '/etc/dbfleet/archive.cnf'], check=False)
            netfleet.run_inside(BACKUP_HOST, ['rm', '-rf', remote_root], check=False)
            (directory / 'group_vars').unlink(missing_ok=True)
            (directory / 'ssh_fleet.yml').unlink(missing_ok=True)


def request(service, role, method, path, status, **kwargs):
    with service.client(role) as client:
        response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


def server_now() -> str:
    return 'SELECT DATE_FORMAT(UTC_TIMESTAMP(6), "%Y-%m-%d %H:%i:%s.%f")'


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip().replace('Z', '+00:00')).replace(tzinfo=dt.timezone.utc)


def module_results(service, job_id: str, action: str) -> list[dict]:
    """The results of the job's tasks running `action`, in order."""
    found = [(event.get('data') or {}).get('res') or {} for event in service.events(job_id)
             if (event.get('data') or {}).get('task_action') == action
             and event['event'] in ('runner_on_ok', 'runner_on_failed')]
    assert found, 'no %s result in job %s' % (action, job_id)
    return found


def module_result(service, job_id: str, action: str) -> dict:
    return module_results(service, job_id, action)[0]


def restore_through_api(service, target: dt.datetime, backup: dict, schema: str, more: dict | None = None):
    """An operator's restore of db1 to `target` (from `backup`): (the job, the mysql_restore result, {table:
    rows} of `schema` restored)."""
    answer = request(service, 'operator', 'POST', '/api/v1/backups/restore', 201,
                     json={'host': HOST, 'to': target.strftime('%Y-%m-%d %H:%M:%S'), **(more or {})})
    assert answer['backup']['id'] == backup['id']
    job = service.wait(answer['job']['id'], timeout=900)
    result = module_result(service, job['id'], 'dbfleet.mysql.mysql_restore')
    assert job['status'] == 'successful', result.get('msg')
    return job, result, {name.split('.', 1)[1]: figures[0] for name, figures in result['verification']['tables'].items()
                         if name.startswith(schema + '.')}


# Seven jobs end to end over SSH (a backup, three restores, two drills, a copy of the binlogs): more than the
# suite's 15 minutes per test on a loaded machine.
@pytest.mark.timeout(2400)
def test_a_table_dropped_on_an_ssh_host_comes_back_as_it_was_one_second_before(netfleet, setting):
    service = setting['service']
    schema = 'pitr_%s' % uuid.uuid4().hex[:8]
    netfleet.sql(HOST, ['CREATE DATABASE %s' % schema,
                        'CREATE TABLE %s.orders (id INT PRIMARY KEY AUTO_INCREMENT, note VARCHAR(40))' % schema,
                        "INSERT INTO %s.orders (note) VALUES ('before-1'), ('before-2')" % schema,
                        'CREATE TABLE %s.precious (id INT PRIMARY KEY, label VARCHAR(40))' % schema,
                        "INSERT INTO %s.precious VALUES (1, 'one'), (2, 'two')" % schema])
    try:
        # The admin's side: the fleet's key and the age identity as credentials, the backup template.
        from devtools.netfleet.harness import PASSPHRASE
        request(service, 'admin', 'POST', '/api/v1/credentials', 201, json={
            'name': 'fleet-key', 'kind': 'ssh', 'ssh_key': netfleet.key_with_passphrase.read_text(),
            'passphrase': PASSPHRASE, 'username': 'root'})
        request(service, 'admin', 'POST', '/api/v1/credentials', 201, json={
            'name': 'backup-key', 'kind': 'age_identity', 'identity': setting['identity']})
        request(service, 'admin', 'POST', '/api/v1/templates', 201, json={
            'name': TEMPLATE, 'playbook': 'playbooks/backup.yml', 'inventory': setting['inventory'],
            'limit': HOST, 'credentials': ['fleet-key']})

        # The nightly backup, launched by an operator: encrypted, copied to backup1 and verified there.
        job = request(service, 'operator', 'POST', '/api/v1/templates/%s/launch' % TEMPLATE, 201, json={})
        done = service.wait(job['id'], timeout=600)
        with service.client('viewer') as viewer:
            stdout = viewer.get('/api/v1/jobs/%s/stdout' % job['id']).text
        assert done['status'] == 'successful', stdout[-4000:]
        [backup] = request(service, 'viewer', 'GET', '/api/v1/backups', 200, params={'host': HOST})['backups']
        assert backup['status'] == 'ok' and backup['path'].startswith(setting['dest'] + '/%s/' % HOST)
        [copy] = backup['copies']
        assert copy['repository'] == 'vault' and copy['status'] == 'ok' and copy['sha256'] == backup['checksum']
        relative = os.path.relpath(backup['path'], setting['dest'])
        there = netfleet.ssh(BACKUP_HOST, 'sha256sum {0}/{1}/dump.sql.gz.age; head -c 21 {0}/{1}/dump.sql.gz.age'
                             .format(shlex.quote(setting['remote_root']), shlex.quote(relative))).stdout
        assert there.split()[0] == backup['checksum'] and there.rstrip().endswith('age-encryption.org/v1')
        assert netfleet.ssh(HOST, 'ls %s' % shlex.quote(backup['path'])).stdout.split() == ['dump.sql.gz.age',
                                                                                            'manifest.json']

        # After the backup: rows and a table written, then the accident one second later, then more rows.
        netfleet.sql(HOST, ["INSERT INTO %s.orders (note) VALUES ('after-1'), ('after-2')" % schema,
                            'CREATE TABLE %s.later (id INT PRIMARY KEY)' % schema,
                            'INSERT INTO %s.later VALUES (7)' % schema])
        written = utc(netfleet.sql(HOST, server_now()))
        expected = {table: int(count) for table, count in (
            line.split('\t') for line in netfleet.sql(HOST, [
                "SELECT 'orders', COUNT(*) FROM %s.orders" % schema, "SELECT 'precious', COUNT(*) FROM %s.precious"
                % schema, "SELECT 'later', COUNT(*) FROM %s.later" % schema]).split('\n') if line)}
        wait_until(lambda: utc(netfleet.sql(HOST, server_now())).replace(microsecond=0)
                   > written.replace(microsecond=0), 'the server clock past the second of the last good write')
        netfleet.sql(HOST, ['DROP TABLE %s.precious' % schema,
                            "INSERT INTO %s.orders (note) VALUES ('after-drop')" % schema, 'FLUSH BINARY LOGS'])
        target = written.replace(microsecond=0)
        dropped_second = target + dt.timedelta(seconds=1)

        # The archive took the rotated file: db1's window reaches past the drop, with no gap.
        def window():
            [found] = request(service, 'viewer', 'GET', '/api/v1/backups/windows', 200,
                              params={'host': HOST})['windows']
            return found if found['end'] and utc(found['end']) >= dropped_second else None
        found = wait_until(window, 'the archive of db1 past the drop', timeout=120)
        assert found['chain'] and not found['gaps'] and not found['open_gap'], found
        assert found['from_backup'] == backup['id'] and utc(found['start']) <= target

        # The restore and drill templates over the SSH fleet, with the key and the identity: an admin's edit
        # (the first one seeds dbfleet's own template).
        request(service, 'viewer', 'GET', '/api/v1/templates/restore', 404)
        for name in ('restore', 'drill'):
            edited = service.dbfleet('templates', 'edit', name, '-i', setting['inventory'], '--credential', 'fleet-key',
                                     '--credential', 'backup-key', token=service.tokens['admin'])
            assert edited.returncode == 0, edited.stdout + edited.stderr
        restore_template = request(service, 'viewer', 'GET', '/api/v1/templates/restore', 200)
        assert restore_template['inventory'] == setting['inventory'] and restore_template['survey']
        assert restore_template['credentials'] == ['fleet-key', 'backup-key']
        restored, result, tables = restore_through_api(service, target, backup, schema)
        # The dropped table is back with its two rows; the rows written before the drop are there, the one
        # written after it is not.
        assert tables == expected == {'orders': 4, 'precious': 2, 'later': 1}
        assert result['replayed']['events'] > 0 and result['verification']['ok']
        assert result['stop_point']['last_event_at'] <= target.strftime('%Y-%m-%dT%H:%M:%SZ')
        assert result['backup']['path'] == backup['path']

        # A drill restores the same backup to the window's end (after the accident) and records its RTO.
        drill_job = request(service, 'operator', 'POST', '/api/v1/backups/drills', 201,
                            json={'limit': HOST})['job']
        assert service.wait(drill_job['id'], timeout=900)['status'] == 'successful'
        [drill] = request(service, 'viewer', 'GET', '/api/v1/backups/drills', 200, params={'host': HOST})['drills']
        assert drill['status'] == 'ok' and drill['backup_id'] == backup['id'] and drill['rto_seconds'] > 0
        assert utc(drill['restored_to']) >= dropped_second

        # db1's disk is lost with its backups and archive. Its archived binlogs had been shipped to backup1
        # (playbooks/binlog_copy.yml, scheduled beside the stream; the stream stopped first, as it would
        # with the disk): the backup and the binlogs come back from the vault, and the table with them.
        setting['stop_stream']()
        request(service, 'admin', 'POST', '/api/v1/templates', 201, json={
            'name': 'ship-binlogs', 'playbook': 'playbooks/binlog_copy.yml', 'inventory': setting['inventory'],
            'limit': HOST, 'credentials': ['fleet-key']})
        shipped = request(service, 'operator', 'POST', '/api/v1/templates/ship-binlogs/launch', 201, json={})
        assert service.wait(shipped['id'], timeout=600)['status'] == 'successful'
        netfleet.ssh(HOST, 'rm -rf %s' % shlex.quote('%s/%s' % (setting['dest'], HOST)))
        from_vault, result, tables = restore_through_api(service, target, backup, schema, {'from': 'vault'})
        assert tables == expected and result['verification']['ok'] and result['replayed']['events'] > 0
        fetched = module_result(service, from_vault['id'], 'dbfleet.mysql.backup_fetch')
        assert fetched['files'][0] == '%s/dump.sql.gz.age' % relative and len(fetched['files']) > 1, fetched
        assert result['backup']['path'] == '%s/%s' % (fetched['staging_dir'], relative)
        assert netfleet.ssh(HOST, 'ls -A %s/.staging' % shlex.quote(setting['dest'])).stdout.split() == []
        # Not told where from: the backup is not on db1's disk, so its verified copy in the vault is used.
        by_itself, result, tables = restore_through_api(service, target, backup, schema)
        assert tables == expected and result['verification']['ok']
        assert module_result(service, by_itself['id'], 'dbfleet.mysql.backup_fetch')['files'][0] == \
            '%s/dump.sql.gz.age' % relative
        with service.client('viewer') as viewer:
            said = viewer.get('/api/v1/jobs/%s/stdout' % by_itself['id']).text
        # (The output is YAML: the message's apostrophe is doubled there, and long lines are folded.)
        assert "disk: restoring its verified copy in repository vault" in ' '.join(said.split())

        # The vault's copy drilled, as a nightly drill of the off-host copies would: the backup with a verified
        # copy there, fetched with its binlogs, decrypted, replayed to the window's end; recorded with the vault.
        vault_drill = request(service, 'operator', 'POST', '/api/v1/backups/drills', 201,
                              json={'limit': HOST, 'from': 'vault'})['job']
        assert service.wait(vault_drill['id'], timeout=900)['status'] == 'successful'
        newest = request(service, 'viewer', 'GET', '/api/v1/backups/drills', 200,
                         params={'host': HOST, 'limit': 1})['drills'][0]
        assert newest['status'] == 'ok' and newest['job_id'] == vault_drill['id'], newest
        assert newest['detail']['repository'] == 'vault' and newest['backup_id'] == backup['id']
        assert utc(newest['restored_to']) >= dropped_second and newest['rto_seconds'] > 0
        fetched = module_result(service, vault_drill['id'], 'dbfleet.mysql.backup_fetch')
        assert fetched['files'][0] == '%s/dump.sql.gz.age' % relative and len(fetched['files']) > 1, fetched
        # Two steps of restore_drill: the pick (check mode), then the drill of what was fetched.
        picked, drilled = module_results(service, vault_drill['id'], 'dbfleet.mysql.restore_drill')
        assert picked['backup_id'] == backup['id'] and picked['sha256'] == backup['checksum'], picked
        assert drilled['restore']['backup']['path'] == '%s/%s' % (fetched['staging_dir'], relative)
        assert 'its copy in vault' in drilled['msg']
        assert netfleet.ssh(HOST, 'ls -A %s/.staging' % shlex.quote(setting['dest'])).stdout.split() == []

        # The identity never shows: not in any job's output or events, not in the credential's answers.
        for job_id in (job['id'], restored['id'], drill_job['id'], from_vault['id'], by_itself['id'],
                       vault_drill['id']):
            with service.client('admin') as admin:
                text = admin.get('/api/v1/jobs/%s/stdout' % job_id).text
                events = admin.get('/api/v1/jobs/%s/events' % job_id, params={'limit': 1000}).text
            assert setting['identity'] not in text and setting['identity'] not in events
        listed = request(service, 'admin', 'GET', '/api/v1/credentials', 200)
        assert setting['identity'] not in json.dumps(listed)
    finally:
        netfleet.sql(HOST, ['DROP DATABASE IF EXISTS %s' % schema])

