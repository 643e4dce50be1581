"""What a job's run gets from its credentials, the way AWX hands them to ansible-runner, and
their removal when the run ends however it ends.

- ssh: the key, opened with its passphrase in memory, goes to ansible-runner's `ssh_key`: a FIFO
  in the run's artifacts that `ssh-add` reads into an ssh-agent living as long as the play (the
  key never lands in a file); the username becomes `--user`.
- vault: the password in a 0600 file under the run's `credentials/` directory, passed as
  `--vault-id ID@file` (or `--vault-password-file file`).
- become: the password in a 0600 file, `--become-password-file file` (never on a command line
  or in the environment), with `--become-method` / `--become-user` when set.
- mysql: `login_user` and `login_password`, the variables the collection's playbooks hand to
  every dbfleet.mysql module, merged into the run's extra vars file (0600, see
  runner_service.worker.run), so they win over inventory variables; docs/decisions.md says why.

`remove_private_data` deletes the credentials directory, the extra vars file and the key FIFO;
the run calls it when it ends (done, failed, canceled, timed out) and the reconciler's
`lifecycle.lose` when the run's process was killed before it could.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from dbfleet.paths import private_directory
from dbfleet.store import UnknownCredential
from runner_service.credentials.kinds import agent_key
from runner_service.secret_box import MIN_SECRET_LENGTH, SecretBox, SecretsError

CREDENTIALS_DIR = 'credentials'
EXTRA_VARS_FILE = ('env', 'extravars')


class CredentialError(Exception):
    """A job names a credential it cannot have (deleted, unreadable with this key): the job fails with this."""


@dataclass
class RunCredentials:
    """The credentials of one run, opened: [(name, kind, public, secret)]."""

    items: list[tuple[str, str, dict, dict]] = field(default_factory=list)
    # Opening an OpenSSH key runs its KDF (bcrypt, on purpose slow): once per run is enough.
    _agent_keys: dict[str, str] = field(default_factory=dict, repr=False)

    def agent_key(self, name: str, secret: dict) -> str:
        if name not in self._agent_keys:
            self._agent_keys[name] = agent_key(secret)
        return self._agent_keys[name]

    def names(self, kind: str) -> list[str]:
        return [name for name, item_kind, _, _ in self.items if item_kind == kind]

    def secret_texts(self) -> set[str]:
        """Every secret as it could show up in output, for the run's Redactor: passwords, and each
        line of a key or certificate (as given and as handed to ssh-agent)."""
        found: set[str] = set()
        for name, kind, _, secret in self.items:
            texts = list(secret.values()) + ([self.agent_key(name, secret)] if kind == 'ssh' else [])
            for text in texts:
                for piece in [text, text.strip()] + [line.strip() for line in text.splitlines()]:
                    if len(piece) >= MIN_SECRET_LENGTH and not piece.startswith('-----'):
                        found.add(piece)
        return found

    def prepare(self, private_dir: Path) -> tuple[list[str], str | None, dict]:
        """Write the run's credential files; returns (ansible-playbook arguments, the SSH key for
        ansible-runner's ssh_key or None, extra vars to merge into the run's)."""
        arguments: list[str] = []
        ssh_key, extra_vars = None, {}
        directory = None
        for name, kind, public, secret in self.items:
            if kind == 'ssh':
                ssh_key = self.agent_key(name, secret)
                if public.get('username'):
                    arguments += ['--user', public['username']]
            elif kind == 'mysql':
                if 'client_cert' in secret or 'ca_cert' in secret:
                    raise CredentialError('credential %s holds TLS certificates, which dbfleet does not hand to '
                                          'plays yet: use a user and password credential' % name)
                extra_vars['login_user'] = public['username']
                if 'password' in secret:
                    extra_vars['login_password'] = secret['password']
            else:
                directory = directory or private_directory(private_dir / CREDENTIALS_DIR)
                path = _write_secret(directory / ('%s_password' % kind), secret['password'])
                if kind == 'vault':
                    arguments += ['--vault-id', '%s@%s' % (public['vault_id'], path)] if public.get('vault_id') \
                        else ['--vault-password-file', str(path)]
                else:
                    arguments += ['--become-password-file', str(path)]
                    for option in ('become_method', 'become_user'):
                        if public.get(option):
                            arguments += ['--' + option.replace('_', '-'), public[option]]
        return arguments, ssh_key, extra_vars


def open_credentials(store, secrets: SecretBox, names: list[str] | None) -> RunCredentials:
    """The named credentials, unsealed; CredentialError naming one that is gone or unreadable."""
    items = []
    for name in names or []:
        try:
            credential = store.credentials.get(name)
        except UnknownCredential:
            raise CredentialError('credential %s was deleted after the job was launched: add another to the '
                                  'template and launch it again' % name) from None
        try:
            secret = secrets.open(credential['sealed'])
        except SecretsError:
            raise CredentialError('credential %s cannot be opened: this worker has another secret key '
                                  '(DBFLEET_SECRET_KEY or var/secret.key) than the API that sealed it' % name) \
                from None
        items.append((name, credential['kind'], credential['public'], secret))
    return RunCredentials(items)


def command_line(arguments: list[str]) -> str:
    """ansible-runner's `cmdline` text (it splits it as a shell would)."""
    return ' '.join(shlex.quote(argument) for argument in arguments)


def remove_private_data(private_dir: Path) -> None:
    """Remove every file of a run that held a secret: the credentials directory, the extra vars
    file, and the key FIFO ansible-runner leaves when ssh-add never read it."""
    shutil.rmtree(private_dir / CREDENTIALS_DIR, ignore_errors=True)
    leftovers = [private_dir.joinpath(*EXTRA_VARS_FILE)] + list((private_dir / 'artifacts').glob('*/ssh_key_data'))
    for path in leftovers:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _write_secret(path: Path, text: str) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, 'w') as handle:
        handle.write(text.rstrip('\n') + '\n')
    return path
