"""Credentials end to end: admins only, sealed at rest, validated at the boundary, named by
templates, handed to real ansible-playbook runs (vault, become, SSH against the namespace fleet)
and gone from the run's directory however the run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy

from devtools.service_harness import PATIENCE, PLAYBOOKS, REPO, Service, job_processes

pytestmark = pytest.mark.service

VAULT_PASSWORD = 'vault test password 14'  # what tests/service/vaulted/group_vars/all.yml is encrypted with
VAULT_INVENTORY = 'tests/service/vaulted/inventory.yml'
BECOME_PASSWORD = 'become test password 14'
MYSQL_PASSWORD = 'mysql test password 14'
# The SSH test's inventory, generated for this NETFLEET_ID (git-ignored, under the project as the API requires).
SSH_DIR = 'var/credential-tests/%s' % os.environ.get('NETFLEET_ID', '0')


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    """The service, also allowed to read the SSH test's generated inventory."""
    service = Service(tmp_path_factory.mktemp('service'),
                      inventory_dirs=json.dumps(['inventories', 'tests/service', SSH_DIR])).start()
    yield service
    service.stop()


@pytest.fixture(scope='module')
def key_pair(tmp_path_factory) -> tuple[str, str, str]:
    """(private key text, passphrase, fingerprint as ssh-keygen prints it) of a fresh ed25519 key."""
    path = tmp_path_factory.mktemp('key') / 'id_ed25519'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', 'key pass phrase', '-f', str(path)], check=True)
    printed = subprocess.run(['ssh-keygen', '-l', '-f', str(path) + '.pub'], check=True, capture_output=True,
                             text=True).stdout.split()[1]
    return path.read_text(), 'key pass phrase', printed


def post(service, role: str | None = 'admin', **body):
    with service.client(role) as client:
        return client.post('/api/v1/credentials', json=body)


def created(service, **body) -> dict:
    response = post(service, **body)
    assert response.status_code == 201, response.text
    return response.json()


def template(service, name: str, playbook: str, inventory: str = VAULT_INVENTORY, **fields):
    with service.client('admin') as client:
        return client.post('/api/v1/templates', json={'name': name, 'playbook': '%s/%s' % (PLAYBOOKS, playbook),
                                                      'inventory': inventory, **fields})


def launch(service, name: str, **body) -> dict:
    with service.client('operator') as client:
        response = client.post('/api/v1/templates/%s/launch' % name, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def stdout(service, job_id: str) -> str:
    with service.client('viewer') as client:
        return client.get('/api/v1/jobs/%s/stdout' % job_id).text


def run_dir(service, job_id: str) -> Path:
    return service.directory / 'var' / 'runs' / job_id


def secret_files(service, job_id: str) -> list[str]:
    """What of the run's private directory held secrets, if still there: its credentials
    directory, its extra vars file, an unread key FIFO."""
    directory = run_dir(service, job_id)
    found = [path for path in (directory / 'credentials', directory / 'env' / 'extravars') if path.exists()]
    found += list((directory / 'artifacts').glob('*/ssh_key_data'))
    found += [path for path in [directory / 'tmp'] if path.is_symlink() or path.exists()]  # the run's TMPDIR
    return sorted(str(path.relative_to(directory)) for path in found)


def wait_for(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout * PATIENCE
    while not (value := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return value


@pytest.fixture(scope='module')
def vault(service) -> dict:
    return created(service, name='fleet-vault', kind='vault', vault_id='fleet', password=VAULT_PASSWORD)


@pytest.fixture(scope='module')
def become(service) -> dict:
    return created(service, name='sudo', kind='become', password=BECOME_PASSWORD, become_method='sudo',
                   become_user='root')


# -- the API -----------------------------------------------------------------------------------

def test_only_admins_reach_credentials(service, vault):
    with service.client('admin') as client:
        agent = client.post('/api/v1/tokens', json={'name': 'agent-db1', 'role': 'agent', 'host': 'db1'}).json()
    body = {'name': 'by-someone', 'kind': 'become', 'password': BECOME_PASSWORD}
    calls = [('POST', '/api/v1/credentials', body), ('GET', '/api/v1/credentials', None),
             ('GET', '/api/v1/credentials/fleet-vault', None), ('DELETE', '/api/v1/credentials/fleet-vault', None)]
    for method, path, json_body in calls:
        for role, token in (('viewer', service.tokens['viewer']), ('operator', service.tokens['operator']),
                            ('agent', agent['token'])):
            with service.client(None) as client:
                answer = client.request(method, path, json=json_body, headers={'Authorization': 'Bearer ' + token})
            assert answer.status_code == 403, (role, method, path, answer.text)
        with service.client(None) as client:
            assert client.request(method, path, json=json_body).status_code == 401, (method, path)
    with service.client('admin') as client:
        assert [item['name'] for item in client.get('/api/v1/credentials').json()] == ['fleet-vault']


def test_the_api_never_returns_a_secret_and_the_store_holds_none_in_clear(service, key_pair):
    key, passphrase, printed = key_pair
    ssh = created(service, name='deploy-key', kind='ssh', ssh_key=key, passphrase=passphrase, username='deploy')
    login = created(service, name='backup-login', kind='mysql', username='backup', password=MYSQL_PASSWORD)
    assert ssh['fingerprint'] == printed and ssh['username'] == 'deploy' and ssh['kind'] == 'ssh'
    assert login['fingerprint'].startswith('HMAC-SHA256:') and len(login['fingerprint']) == len('HMAC-SHA256:') + 16
    key_lines = [line for line in key.splitlines() if not line.startswith('-----')]
    secrets = [passphrase, MYSQL_PASSWORD] + key_lines
    with service.client('admin') as client:
        answers = [client.get('/api/v1/credentials').text, client.get('/api/v1/credentials/deploy-key').text,
                   client.get('/api/v1/credentials/backup-login').text, json.dumps(ssh), json.dumps(login),
                   client.get('/api/v1/audit', params={'action': 'credential.'}).text]
    engine = sqlalchemy.create_engine(service.store_url)
    with engine.connect() as connection:
        rows = [repr(tuple(row)) for row in connection.execute(sqlalchemy.text('SELECT * FROM credentials'))]
        rows += [repr(tuple(row)) for row in connection.execute(sqlalchemy.text('SELECT * FROM audit_log'))]
    engine.dispose()
    assert len(rows) >= 3
    for text in answers + rows:
        for secret in secrets:
            assert secret not in text
    assert '"action":"credential.create"' in answers[-1].replace(' ', '')


def test_invalid_credentials_are_422_with_a_reason(service, key_pair):
    key, passphrase, _ = key_pair
    cases = [
        (dict(kind='ssh', ssh_key='not a key'), 'not a private key'),
        (dict(kind='ssh', ssh_key=key), 'give its passphrase'),
        (dict(kind='ssh', ssh_key=key, passphrase='wrong passphrase'), 'wrong passphrase'),
        (dict(kind='ssh', ssh_key=key, passphrase=passphrase, vault_id='x'), 'does not take vault_id'),
        (dict(kind='vault', password=VAULT_PASSWORD, vault_id='a@b'), 'vault_id'),
        (dict(kind='become', password=BECOME_PASSWORD, become_method='rootme'), 'become_method'),
        (dict(kind='become', password='two\nlines'), 'one line'),
        (dict(kind='mysql', username='backup'), 'needs a password'),
        (dict(kind='mysql', username='backup', client_cert='x', client_key='y'), 'client_cert is not a PEM'),
        (dict(kind='vault'), 'needs password'),
    ]
    for body, reason in cases:
        response = post(service, name='bad', **body)
        assert response.status_code == 422 and reason in response.json()['detail'], (body.get('kind'), response.text)
        assert passphrase not in response.text and 'wrong passphrase' not in response.text.replace(
            '(wrong passphrase)', '')
    for name in ('has space', '-dash', 'a/b', ''):
        assert post(service, name=name, kind='vault', password=VAULT_PASSWORD).status_code == 422, name
    assert post(service, name='other', kind='token', password=VAULT_PASSWORD).status_code == 422


def test_templates_name_credentials_and_a_used_one_cannot_be_deleted(service, vault, become):
    response = template(service, 'uses-missing', 'vaulted.yml', credentials=['no-such'])
    assert response.status_code == 422 and 'no-such' in response.json()['detail']
    created(service, name='other-vault', kind='vault', password='another vault password')
    response = template(service, 'two-vaults', 'vaulted.yml', credentials=['fleet-vault', 'other-vault'])
    assert response.status_code == 422 and 'at most one of each kind' in response.json()['detail']
    response = template(service, 'vault-user', 'vaulted.yml', credentials=['fleet-vault', 'sudo'])
    assert response.status_code == 201, response.text
    with service.client('viewer') as client:
        assert client.get('/api/v1/templates/vault-user').json()['credentials'] == ['fleet-vault', 'sudo']
    with service.client('admin') as client:
        refused = client.delete('/api/v1/credentials/sudo')
        assert refused.status_code == 409 and 'vault-user' in refused.json()['detail']
        assert client.delete('/api/v1/credentials/other-vault').status_code == 200
        assert client.get('/api/v1/credentials/other-vault').status_code == 404
        actions = [entry['action'] for entry in client.get('/api/v1/audit', params={'target': 'other-vault'})
                   .json()['entries']]
    assert actions == ['credential.delete', 'credential.create']


def test_the_cli_reads_secrets_from_files_only(service, vault, tmp_path):
    password = tmp_path / 'become.pw'
    password.write_text(BECOME_PASSWORD + '\n')
    made = service.dbfleet('credentials', 'create', 'cli-become', '--kind', 'become', '--password-file',
                           str(password), '--become-user', 'root', '--json', token=service.tokens['admin'])
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)['become_user'] == 'root' and BECOME_PASSWORD not in made.stdout
    listed = service.dbfleet('credentials', 'list', token=service.tokens['admin'])
    assert 'cli-become' in listed.stdout and BECOME_PASSWORD not in listed.stdout
    missing = service.dbfleet('credentials', 'create', 'x', '--kind', 'vault', '--password-file', str(tmp_path / 'no'),
                              token=service.tokens['admin'])
    assert missing.returncode == 2 and 'No such file' in missing.stderr
    no_tty = service.dbfleet('credentials', 'create', 'x', '--kind', 'vault', token=service.tokens['admin'])
    assert no_tty.returncode == 2 and '--password-file' in no_tty.stderr
    viewer = service.dbfleet('credentials', 'list', token=service.tokens['viewer'])
    assert viewer.returncode == 2
    templated = service.dbfleet('templates', 'create', 'cli-creds', '%s/vaulted.yml' % PLAYBOOKS, '-i',
                                VAULT_INVENTORY, '--credential', 'fleet-vault', '--credential', 'cli-become',
                                token=service.tokens['admin'])
    assert templated.returncode == 0, templated.stderr
    assert 'fleet-vault, cli-become' in templated.stdout
    gone = service.dbfleet('credentials', 'delete', 'cli-become', token=service.tokens['admin'])
    assert gone.returncode == 2 and 'cli-creds' in gone.stderr


# -- runs --------------------------------------------------------------------------------------

def test_a_vaulted_play_runs_with_the_vault_credential_and_leaves_no_secret_file(service, vault, become):
    assert template(service, 'vaulted', 'vaulted.yml', credentials=['fleet-vault', 'sudo']).status_code == 201
    job = service.wait(launch(service, 'vaulted')['id'])
    output = stdout(service, job['id'])
    assert job['status'] == 'successful', (job['status_reason'], output)
    assert 'greeting: opened by the vault credential' in output
    assert job['credentials'] == ['fleet-vault', 'sudo']
    assert secret_files(service, job['id']) == []
    events = json.dumps(service.events(job['id']))
    for secret in (VAULT_PASSWORD, BECOME_PASSWORD):
        assert secret not in output and secret not in events
    for path in run_dir(service, job['id']).rglob('*'):
        if path.is_file():
            text = path.read_bytes()
            assert VAULT_PASSWORD.encode() not in text and BECOME_PASSWORD.encode() not in text, path


def test_a_mysql_credential_gives_the_play_its_login_masked(service):
    created(service, name='echo-login', kind='mysql', username='backup', password=MYSQL_PASSWORD)
    assert template(service, 'mysql-login', 'mysql_login.yml', credentials=['echo-login'],
                    inventory='tests/service/inventory.yml', limit='node1').status_code == 201
    job = service.wait(launch(service, 'mysql-login')['id'])
    output = stdout(service, job['id'])
    assert job['status'] == 'successful', (job['status_reason'], output)
    assert 'login as backup with a password of %d characters' % len(MYSQL_PASSWORD) in output
    assert MYSQL_PASSWORD not in output and MYSQL_PASSWORD not in json.dumps(service.events(job['id']))
    assert '********' in output
    assert secret_files(service, job['id']) == []


@pytest.mark.fleet
def test_a_mysql_tls_credential_logs_in_with_its_client_certificate(service, fleet):
    """The local fleet's primary serves TLS; an account there requires an X509 certificate and has
    no password. The credential's certificate, key and CA reach the module as text; the
    inventory's password does not go with them; nothing of the key is left or shown."""
    import contextlib

    from devtools.fleet import INSTANCES
    account = "'dbfleet_tls_login'@'127.0.0.1'"
    with contextlib.closing(fleet.admin('primary')) as admin, admin.cursor() as cursor:
        cursor.execute('SET SESSION sql_log_bin = 0')
        cursor.execute('CREATE OR REPLACE USER %s REQUIRE X509' % account)
    tls = INSTANCES['primary'].tls_files
    key = tls.client_key.read_text()
    try:
        created(service, name='tls-login', kind='mysql', username='dbfleet_tls_login',
                client_cert=tls.client_cert.read_text(), client_key=key, ca_cert=tls.ca.read_text())
        assert template(service, 'mysql-tls', 'mysql_tls.yml', credentials=['tls-login'],
                        inventory='inventories/local_fleet.yml', limit='primary').status_code == 201
        job = service.wait(launch(service, 'mysql-tls')['id'], timeout=180)
        output = stdout(service, job['id'])
        assert job['status'] == 'successful', (job['status_reason'], output)
        assert 'logged in as dbfleet_tls_login over TLS' in output
        texts = [output, json.dumps(service.events(job['id']))]
        texts += [path.read_bytes().decode(errors='replace') for path in run_dir(service, job['id']).rglob('*')
                  if path.is_file()]
        for text in texts:
            assert not any(line in text for line in key.splitlines()[1:-1])
        assert secret_files(service, job['id']) == []
    finally:
        with contextlib.closing(fleet.admin('primary')) as admin, admin.cursor() as cursor:
            cursor.execute('SET SESSION sql_log_bin = 0')
            cursor.execute('DROP USER IF EXISTS %s' % account)


def test_a_vaulted_play_without_the_credential_fails_naming_it(service):
    assert template(service, 'vaulted-bare', 'vaulted.yml').status_code == 201
    job = service.wait(launch(service, 'vaulted-bare')['id'])
    assert job['status'] == 'failed'
    assert 'no vault credential' in job['status_reason'] and 'vaulted-bare' in job['status_reason'], job


def test_credential_files_are_gone_after_a_cancel(service, vault, become):
    assert template(service, 'sleepy', 'sleep.yml', credentials=['fleet-vault', 'sudo'],
                    inventory='tests/service/inventory.yml', limit='node1').status_code == 201
    job = launch(service, 'sleepy')
    wait_for(lambda: job_processes(job['id']), 'the play never started')
    listed = secret_files(service, job['id'])
    assert listed == ['credentials', 'env/extravars', 'tmp'] or listed == ['credentials', 'tmp'], listed
    assert sorted(path.name for path in (run_dir(service, job['id']) / 'credentials').iterdir()) == \
        ['become_password', 'vault_password']
    assert oct((run_dir(service, job['id']) / 'credentials' / 'vault_password').stat().st_mode & 0o777) == '0o600'
    with service.client('operator') as client:
        assert client.post('/api/v1/jobs/%s/cancel' % job['id']).status_code in (200, 202)
    assert service.wait(job['id'])['status'] == 'canceled'
    assert secret_files(service, job['id']) == []


def test_credential_files_are_gone_after_a_timeout(service, vault, become):
    assert template(service, 'sleepy-deadline', 'sleep.yml', credentials=['fleet-vault', 'sudo'],
                    inventory='tests/service/inventory.yml', limit='node1', timeout=3).status_code == 201
    job = service.wait(launch(service, 'sleepy-deadline')['id'])
    assert job['status'] == 'timed_out', job
    assert secret_files(service, job['id']) == []


def test_credential_files_are_gone_after_the_work_horse_is_killed(service, vault, become):
    job = launch(service, 'sleepy')
    plays = wait_for(lambda: job_processes(job['id']), 'the play never started')
    assert secret_files(service, job['id'])
    running = service.job(job['id'])
    worker = int(running['worker'].rsplit('/', 1)[1])
    horses = [pid for pid in _children(worker) if set(plays) & set(_descendants(pid))]
    assert len(horses) == 1, 'one child of the worker runs the play'
    os.kill(horses[0], signal.SIGKILL)
    assert service.wait(job['id'], timeout=90)['status'] == 'worker_lost'  # the reconciler: no heartbeat
    wait_for(lambda: secret_files(service, job['id']) == [], 'secret files left: %s'
             % secret_files(service, job['id']), timeout=30)


# -- SSH against the namespace fleet -------------------------------------------------------------

@pytest.mark.netfleet
def test_an_ssh_credential_is_the_only_way_in(service, netfleet):
    """The passphrase-protected key, only in the credential, logs in to db1 with host key checking on;
    the same job without it is refused by sshd."""
    from devtools.netfleet.harness import PASSPHRASE
    directory = REPO / SSH_DIR
    directory.mkdir(parents=True, exist_ok=True)
    (directory / 'ssh_fleet.yml').write_text(netfleet.inventory())
    inventory = '%s/ssh_fleet.yml' % SSH_DIR
    key = netfleet.key_with_passphrase.read_text()
    made = created(service, name='netfleet-key', kind='ssh', ssh_key=key, passphrase=PASSPHRASE, username='root')
    printed = subprocess.run(['ssh-keygen', '-l', '-f', str(netfleet.key_with_passphrase) + '.pub'], check=True,
                             capture_output=True, text=True).stdout.split()[1]
    assert made['fingerprint'] == printed
    for name, credentials in (('hostname-key', ['netfleet-key']), ('hostname-bare', [])):
        response = template(service, name, 'hostname.yml', inventory=inventory, limit='db1', credentials=credentials)
        assert response.status_code == 201, response.text
    job = service.wait(launch(service, 'hostname-key')['id'], timeout=180)
    events = service.events(job['id'])
    assert job['status'] == 'successful', (job['status_reason'], stdout(service, job['id']))
    results = {event['data']['task']: event['data']['res'] for event in events if event['event'] == 'runner_on_ok'}
    assert results['Hostname']['stdout_lines'] == ['db1']
    assert job['hosts']['db1']['ok'] == 2
    assert secret_files(service, job['id']) == []
    # The agent's socket was in the run's own temporary directory, and went with it.
    socket = Path(results["Where the run's ssh-agent listens (a lookup runs on the controller)"]['msg'])
    assert socket.parent.parent == Path(tempfile.gettempdir()), socket
    assert socket.parent.name.startswith('dbfleet-run-'), socket
    assert not socket.parent.exists()
    texts = [stdout(service, job['id']), json.dumps(events)]
    texts += [path.read_bytes().decode(errors='replace') for path in run_dir(service, job['id']).rglob('*')
              if path.is_file()]
    for text in texts:
        assert PASSPHRASE not in text and not any(line in text for line in key.splitlines()[1:-1])
    bare = service.wait(launch(service, 'hostname-bare')['id'], timeout=180)
    assert bare['status'] == 'failed' and 'Permission denied' in stdout(service, bare['id']), bare


def _descendants(pid: int) -> list[int]:
    from runner_service.worker.process_tree import descendants
    return descendants(pid)


def _children(pid: int) -> list[int]:
    def parent(child: int) -> int | None:
        try:
            return int(Path('/proc/%d/stat' % child).read_text().rsplit(')', 1)[1].split()[1])
        except OSError:
            return None
    return [child for child in _descendants(pid) if parent(child) == pid]


def test_an_age_identity_credential_opens_what_was_encrypted_to_it_and_is_never_shown(service, tmp_path):
    """The API shows the identity's public key (what backups are encrypted to), never the key; a run
    gets it as a 0600 file named by dbfleet_age_identity_file, gone when the run ends."""
    key_file = tmp_path / 'backup.agekey'
    subprocess.run(['age-keygen', '-o', str(key_file)], check=True, capture_output=True)
    identity = [line for line in key_file.read_text().splitlines() if line.startswith('AGE-SECRET-KEY-1')][0]
    recipient = subprocess.run(['age-keygen', '-y', str(key_file)], check=True, capture_output=True,
                               text=True).stdout.strip()
    for role in ('viewer', 'operator'):
        assert post(service, role, name='restore-key', kind='age_identity', identity=identity).status_code == 403
    bad = post(service, name='restore-key', kind='age_identity', identity='AGE-SECRET-KEY-1 not a key')
    assert bad.status_code == 422 and 'identity must be one age private key' in bad.text and 'not a key' not in bad.text
    credential = created(service, name='restore-key', kind='age_identity', identity=identity)
    assert credential['fingerprint'] == recipient and credential['kind'] == 'age_identity'
    with service.client('admin') as client:
        shown = client.get('/api/v1/credentials').text + client.get('/api/v1/credentials/restore-key').text
    assert identity not in shown and identity[16:] not in shown and recipient in shown

    encrypted = tmp_path / 'note.age'
    subprocess.run(['age', '-r', recipient, '-o', str(encrypted)], input=b'the restored secret note', check=True)
    survey = [{'name': 'encrypted_file', 'type': 'string', 'default': str(encrypted)}]
    assert template(service, 'age-open', 'age_identity.yml', credentials=['restore-key'], survey=survey,
                    inventory='tests/service/inventory.yml', limit='node1').status_code == 201
    job = service.wait(launch(service, 'age-open')['id'])
    output = stdout(service, job['id'])
    assert job['status'] == 'successful', (job['status_reason'], output)
    assert 'opened: the restored secret note; key file mode 600' in output
    assert identity not in output and identity not in json.dumps(service.events(job['id']))
    assert secret_files(service, job['id']) == []
