"""Credential kinds and what a run gets of them, without a service: fingerprints as ssh-keygen
prints them, the checks at the boundary, the files and arguments for ansible-playbook, their removal."""

from __future__ import annotations

import hashlib
import hmac
import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from runner_service.credentials.kinds import CredentialInvalid, agent_key, split
from runner_service.credentials.private_data import RunCredentials, command_line, remove_private_data, run_temp_dir

KEY = b'k' * 32


def digest(data: bytes) -> str:
    return hmac.new(KEY, data, hashlib.sha256).hexdigest()


def keygen(tmp_path, kind: str, passphrase: str = '', pem: bool = False) -> tuple[str, str]:
    """(private key text, fingerprint as `ssh-keygen -l` prints it) of a fresh key."""
    path = tmp_path / ('%s-%s' % (kind, 'locked' if passphrase else 'plain'))
    options = ['-t', kind] + (['-b', '2048'] if kind == 'rsa' else []) + (['-m', 'PEM'] if pem else [])
    subprocess.run(['ssh-keygen', '-q', *options, '-N', passphrase, '-f', str(path)], check=True)
    printed = subprocess.run(['ssh-keygen', '-l', '-f', str(path) + '.pub'], check=True, capture_output=True,
                             text=True).stdout.split()[1]
    return path.read_text(), printed


@pytest.mark.parametrize('kind,pem', [('ed25519', False), ('rsa', False), ('rsa', True), ('ecdsa', False),
                                      ('ecdsa', True)])
@pytest.mark.parametrize('passphrase', ['', 'a passphrase 14'])
def test_ssh_fingerprints_are_what_ssh_keygen_prints(tmp_path, kind, pem, passphrase):
    text, printed = keygen(tmp_path, kind, passphrase, pem)
    public, secret, fingerprint = split('ssh', {'ssh_key': text, 'passphrase': passphrase or None,
                                                'username': 'deploy'}, digest)
    assert fingerprint == printed
    assert public == {'username': 'deploy'} and set(secret) == ({'ssh_key', 'passphrase'} if passphrase else
                                                                {'ssh_key'})
    opened = agent_key(secret)  # what ssh-agent gets: no passphrase needed
    assert 'OPENSSH PRIVATE KEY' in opened and split('ssh', {'ssh_key': opened}, digest)[2] == printed


def test_ssh_keys_that_cannot_be_used_are_refused_with_the_reason(tmp_path):
    locked, _ = keygen(tmp_path, 'ed25519', 'right passphrase')
    plain, _ = keygen(tmp_path, 'rsa')
    for fields, reason in (({'ssh_key': 'hello'}, 'not a private key'),
                           ({'ssh_key': locked[:200]}, 'not a private key'),
                           ({'ssh_key': locked}, 'give its passphrase'),
                           ({'ssh_key': locked, 'passphrase': 'wrong'}, 'wrong passphrase'),
                           ({'ssh_key': plain, 'passphrase': 'unneeded'}, 'not encrypted'),
                           ({'ssh_key': plain, 'username': '-oProxyCommand=x'}, 'username'),
                           ({'passphrase': 'x'}, 'needs ssh_key')):
        with pytest.raises(CredentialInvalid, match=reason) as error:
            split('ssh', fields, digest)
        assert 'right passphrase' not in str(error.value)


def test_other_fingerprints_are_keyed_short_and_change_with_the_secret():
    first = split('vault', {'password': 'first password'}, digest)[2]
    assert first == split('vault', {'password': 'first password', 'vault_id': 'prod'}, digest)[2]
    assert first != split('vault', {'password': 'other password'}, digest)[2]
    assert first != split('become', {'password': 'first password'}, digest)[2]
    unkeyed = hashlib.sha256(b'vault\0password=first password').hexdigest()
    assert first.startswith('HMAC-SHA256:') and unkeyed[:16] not in first and len(first) == 28


@pytest.mark.parametrize('kind,fields,reason', [
    ('vault', {'password': 'p' * 8, 'vault_id': '../x'}, 'vault_id'),
    ('vault', {'password': 'one\ntwo'}, 'one line'),
    ('become', {'password': 'p' * 8, 'become_method': 'evil'}, 'become_method'),
    ('become', {'password': 'p' * 8, 'become_user': 'a b'}, 'become_user'),
    ('mysql', {'username': 'u'}, 'needs a password'),
    ('mysql', {'username': 'u', 'client_cert': 'x'}, 'together'),
    ('mysql', {'password': 'p'}, 'needs username'),
    ('mysql', {'username': 'u', 'password': 'p', 'ssh_key': 'k'}, 'does not take ssh_key'),
    ('other', {'password': 'p'}, 'kind must be'),
    ('vault', {'password': 'a\0b'}, 'NUL'),
])
def test_each_kind_checks_its_fields(kind, fields, reason):
    with pytest.raises(CredentialInvalid, match=reason):
        split(kind, fields, digest)


def test_a_run_gets_0600_files_and_arguments_and_they_all_go(tmp_path):
    key, printed = keygen(tmp_path, 'ed25519', 'pass phrase 14')
    run = tmp_path / 'run'
    (run / 'env').mkdir(parents=True)
    (run / 'env' / 'extravars').write_text('{}')
    (run / 'artifacts' / '1').mkdir(parents=True)
    (run / 'artifacts' / '1' / 'ssh_key_data').write_text('left by a killed run')
    credentials = RunCredentials([
        ('k', 'ssh', {'username': 'deploy'}, {'ssh_key': key, 'passphrase': 'pass phrase 14'}),
        ('v', 'vault', {'vault_id': 'prod'}, {'password': 'vault password 14'}),
        ('b', 'become', {'become_method': 'su', 'become_user': 'postgres'}, {'password': 'become password 14'}),
        ('m', 'mysql', {'username': 'backup'}, {'password': 'mysql password 14'}),
    ])
    temp = run_temp_dir(run)
    arguments, environment, extra_vars = credentials.prepare(run, temp, {'DBFLEET_JOB_ID': 'job-under-test'})
    directory = run / 'credentials'
    vault, become = directory / 'vault_password', directory / 'become_password'
    assert arguments == ['--user', 'deploy', '--vault-id', 'prod@%s' % vault, '--become-password-file', str(become),
                         '--become-method', 'su', '--become-user', 'postgres']
    assert shlex.split(command_line(arguments)) == arguments
    assert vault.read_text() == 'vault password 14\n' and become.read_text() == 'become password 14\n'
    for path in (vault, become):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert extra_vars == {'login_user': 'backup', 'login_password': 'mysql password 14'}
    # The key is in the run's own agent, whose socket is in the run's temporary directory and
    # which carries the job's marker (what kills the play's processes kills it too).
    assert environment == {'SSH_AUTH_SOCK': str(temp / 'agent.sock')}
    assert stat.S_IMODE(temp.stat().st_mode) == 0o700 and (run / 'tmp').resolve() == temp
    listed = subprocess.run(['ssh-add', '-l'], env=dict(os.environ, **environment), capture_output=True, text=True)
    assert listed.returncode == 0 and printed in listed.stdout, listed
    agent = credentials.agent.pid
    assert b'DBFLEET_JOB_ID=job-under-test\0' in Path('/proc/%d/environ' % agent).read_bytes()
    assert not any(path.is_file() for path in temp.rglob('*')), 'the key is never a file'
    texts = credentials.secret_texts()
    assert {'pass phrase 14', 'vault password 14', 'become password 14', 'mysql password 14'} <= texts
    assert all(line in texts for line in key.splitlines()[1:-1])
    assert not any(text.startswith('-----') for text in texts)
    credentials.close()
    assert not Path('/proc/%d' % agent).exists() and credentials.agent is None
    remove_private_data(run)
    assert sorted(str(path.relative_to(run)) for path in run.rglob('*')) == ['artifacts', 'artifacts/1', 'env']
    assert not temp.exists()


def test_a_key_the_agent_refuses_fails_the_run_naming_the_credential(tmp_path):
    from runner_service.credentials.private_data import CredentialError
    credentials = RunCredentials([('broken', 'ssh', {}, {'ssh_key': 'x'})])
    credentials._agent_keys['broken'] = '-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n'
    with pytest.raises(CredentialError, match='credential broken: ssh-add refused its key'):
        credentials.prepare(tmp_path, run_temp_dir(tmp_path), {})
    assert credentials.agent is None
    remove_private_data(tmp_path)


def test_a_vault_without_an_id_is_a_password_file(tmp_path):
    arguments, environment, extra_vars = RunCredentials([('v', 'vault', {}, {'password': 'vault password'})]).prepare(
        tmp_path, tmp_path, {})
    assert arguments == ['--vault-password-file', str(tmp_path / 'credentials' / 'vault_password')]
    assert environment == {} and extra_vars == {}


def test_a_mysql_tls_credential_hands_the_play_its_pem_text_and_no_password(tmp_path):
    """The modules write certificates given as text where they run (their own temporary directory):
    the run hands the PEM text as login_*_data extra vars, and no password (the inventory's must
    not go with a certificate login); no file is written on the controller."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'backup')])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(
        1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    fields = {'username': 'backup', 'client_cert': cert.public_bytes(serialization.Encoding.PEM).decode(),
              'client_key': key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode()}
    public, secret, _ = split('mysql', fields, digest)
    assert public == {'username': 'backup'} and set(secret) == {'client_cert', 'client_key'}
    arguments, environment, extra_vars = RunCredentials([('tls-login', 'mysql', public, secret)]).prepare(
        tmp_path, tmp_path, {})
    assert arguments == [] and environment == {}
    assert extra_vars == {'login_user': 'backup', 'login_password': None,
                          'login_client_cert_data': fields['client_cert'], 'login_client_key_data': fields['client_key']}
    assert list(tmp_path.iterdir()) == []
