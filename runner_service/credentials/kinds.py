"""What each kind of credential holds, checked where it enters (the API, the CLI), and the
fingerprint that identifies it without revealing it.

    ssh     an SSH private key (OpenSSH or PEM), its passphrase, a login user
    mysql   a MySQL login: user and password, or a TLS client certificate and key (and a CA)
    vault   an Ansible Vault password, with the vault id it opens
    become  a privilege escalation password, with the become method and user
    age_identity  an age private key (AGE-SECRET-KEY-1...) that opens encrypted backups, for restores;
            its public key (the recipient backups are encrypted to) is its fingerprint

`split(kind, fields)` returns (public, secret, fingerprint): `public` is what the API may show,
`secret` what is sealed. An SSH key that does not parse, an encrypted key without its
passphrase or with a wrong one, a certificate that is not PEM: CredentialInvalid (422).
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

KINDS = ('ssh', 'mysql', 'vault', 'become', 'age_identity')
# The fields each kind takes: (public ones, secret ones, required ones).
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    'ssh': (('username',), ('ssh_key', 'passphrase'), ('ssh_key',)),
    'mysql': (('username',), ('password', 'client_cert', 'client_key', 'ca_cert'), ('username',)),
    'vault': (('vault_id',), ('password',), ('password',)),
    'become': (('become_method', 'become_user'), ('password',), ('password',)),
    'age_identity': ((), ('identity',), ('identity',)),
}
# An age X25519 identity as age-keygen writes it: bech32, upper case.
AGE_IDENTITY = re.compile(r'^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$')
# Ansible's become plugins (ansible-doc -t become -l, ansible-core and community.general).
BECOME_METHODS = ('sudo', 'su', 'doas', 'pbrun', 'pfexec', 'dzdo', 'ksu', 'runas', 'machinectl', 'sesu', 'pmrun',
                  'sudosu')
# A vault id is a label before `@` in --vault-id: no `@`, no space, no path separator.
VAULT_ID = re.compile(r'^[A-Za-z0-9_.-]{1,64}$')
# A user name for ssh, sudo or MySQL: no space, no option-looking first character.
USER_NAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}$')


class CredentialInvalid(ValueError):
    """What was given cannot make a credential of this kind (the message names the field, never its value)."""


def split(kind: str, fields: dict[str, Any], digest: Callable[[bytes], str]) -> tuple[dict, dict, str]:
    """(public, secret, fingerprint) of a credential of `kind` from the given fields (None: not given).
    `digest` is a keyed hash (the service key's): the fingerprint of a password must not let anyone
    who reads it test guesses."""
    if kind not in FIELDS:
        raise CredentialInvalid('kind must be one of %s' % ', '.join(KINDS))
    public_names, secret_names, required = FIELDS[kind]
    given = {name: value for name, value in fields.items() if value is not None}
    other = sorted(set(given) - set(public_names) - set(secret_names))
    if other:
        raise CredentialInvalid('a %s credential does not take %s; it takes %s' % (
            kind, ', '.join(other), ', '.join(public_names + secret_names)))
    missing = [name for name in required if not given.get(name)]
    if missing:
        raise CredentialInvalid('a %s credential needs %s' % (kind, ', '.join(missing)))
    for name, value in given.items():
        if not isinstance(value, str) or '\0' in value:
            raise CredentialInvalid('%s must be text without NUL characters' % name)
    public = {name: given[name] for name in public_names if name in given}
    secret = {name: given[name] for name in secret_names if name in given}
    _CHECKS[kind](public, secret)
    if kind == 'ssh':
        fingerprint = ssh_fingerprint(load_ssh_key(secret['ssh_key'], secret.get('passphrase')))
    elif kind == 'age_identity':
        fingerprint = age_recipient(secret['identity'])
    else:
        fingerprint = 'HMAC-SHA256:' + digest(('%s\0%s' % (kind, '\0'.join(
            '%s=%s' % item for item in sorted(secret.items())))).encode())[:16]
    return public, secret, fingerprint


# -- SSH ------------------------------------------------------------------------------------------

def load_ssh_key(text: str, passphrase: str | None):
    """The private key object, from OpenSSH or PEM text; CredentialInvalid saying why not."""
    data = text.encode()
    password = passphrase.encode() if passphrase else None
    loaders = (serialization.load_ssh_private_key, serialization.load_pem_private_key) \
        if b'OPENSSH PRIVATE KEY' in data else (serialization.load_pem_private_key,)
    for loader in loaders:
        try:
            return loader(data, password=password)
        except TypeError:
            if password is None:
                raise CredentialInvalid('ssh_key is encrypted: give its passphrase') from None
            raise CredentialInvalid('ssh_key is not encrypted: give no passphrase') from None
        except ValueError as exc:
            if password is not None and _wrong_passphrase(exc):
                raise CredentialInvalid('passphrase does not open ssh_key (wrong passphrase)') from None
        except Exception:  # cryptography's UnsupportedAlgorithm and friends
            pass
    raise CredentialInvalid('ssh_key is not a private key in OpenSSH or PEM format (ssh-keygen writes one)')


def _wrong_passphrase(exc: ValueError) -> bool:
    text = str(exc).lower()
    return 'bad decrypt' in text or 'incorrect password' in text or 'corrupt data' in text or 'decrypt' in text


def ssh_fingerprint(key) -> str:
    """`SHA256:...` as `ssh-keygen -lf` prints it: the SHA-256 of the public key's wire form,
    base64 without padding."""
    openssh = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(openssh.split()[1])
    return 'SHA256:' + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip('=')


def agent_key(secret: dict) -> str:
    """The key as ssh-add reads it without asking: opened with its passphrase, in OpenSSH form.
    It only ever goes to ssh-agent through a FIFO (never a file on disk)."""
    key = load_ssh_key(secret['ssh_key'], secret.get('passphrase'))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()


def _check_ssh(public: dict, secret: dict) -> None:
    _check_user(public, 'username')


# -- the others -----------------------------------------------------------------------------------

def _check_mysql(public: dict, secret: dict) -> None:
    _check_user(public, 'username')
    if ('client_cert' in secret) != ('client_key' in secret):
        raise CredentialInvalid('a mysql credential takes client_cert and client_key together')
    if 'password' not in secret and 'client_cert' not in secret:
        raise CredentialInvalid('a mysql credential needs a password, or client_cert and client_key')
    for name in ('client_cert', 'ca_cert'):
        if name in secret:
            try:
                x509.load_pem_x509_certificates(secret[name].encode())
            except Exception:
                raise CredentialInvalid('%s is not a PEM certificate' % name) from None
    if 'client_key' in secret:
        try:
            serialization.load_pem_private_key(secret['client_key'].encode(), password=None)
        except TypeError:
            raise CredentialInvalid('client_key is encrypted: MySQL clients need it without a passphrase') from None
        except Exception:
            raise CredentialInvalid('client_key is not a PEM private key') from None


def _check_vault(public: dict, secret: dict) -> None:
    if 'vault_id' in public and not VAULT_ID.match(public['vault_id']):
        raise CredentialInvalid('vault_id must be 1 to 64 letters, digits, _ . or - (the label before @ in '
                                '--vault-id)')
    _check_one_line(secret, 'password')


def _check_become(public: dict, secret: dict) -> None:
    if 'become_method' in public and public['become_method'] not in BECOME_METHODS:
        raise CredentialInvalid('become_method must be one of %s' % ', '.join(BECOME_METHODS))
    _check_user(public, 'become_user')
    _check_one_line(secret, 'password')


def _check_age_identity(public: dict, secret: dict) -> None:
    secret['identity'] = secret['identity'].strip()
    if not AGE_IDENTITY.match(secret['identity']):
        raise CredentialInvalid('identity must be one age private key, AGE-SECRET-KEY-1 and 58 letters and digits '
                                '(the last line age-keygen writes)')


def age_recipient(identity: str) -> str:
    """The public key (age1...) of an identity, as age-keygen -y prints it: what backups are encrypted
    to, shown as the credential's fingerprint. CredentialInvalid when age-keygen refuses it."""
    try:
        done = subprocess.run(['age-keygen', '-y'], input=identity + '\n', capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        raise CredentialInvalid('an age_identity credential needs age-keygen on the API host (Debian package '
                                'age)') from None
    if done.returncode != 0 or not done.stdout.strip().startswith('age1'):
        raise CredentialInvalid('identity is not an age private key that age-keygen can read') from None
    return done.stdout.strip()


def _check_user(public: dict, name: str) -> None:
    if name in public and not USER_NAME.match(public[name]):
        raise CredentialInvalid('%s must be a user name (letters, digits, _ . @ -; at most 128)' % name)


def _check_one_line(secret: dict, name: str) -> None:
    # Ansible reads a password file's first line: a second line would be silently dropped.
    if '\n' in secret[name].rstrip('\n') or '\r' in secret[name]:
        raise CredentialInvalid('%s must be one line' % name)


_CHECKS = {'ssh': _check_ssh, 'mysql': _check_mysql, 'vault': _check_vault, 'become': _check_become,
           'age_identity': _check_age_identity}
