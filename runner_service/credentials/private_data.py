"""What a job's run gets from its credentials, the way AWX hands them to ansible-runner, and
their removal when the run ends however it ends.

- ssh: the key, opened with its passphrase in memory, is piped to `ssh-add -` into an ssh-agent
  of the run's own (`ssh-agent -D -a SOCKET`, the socket in the run's temporary directory, the
  way AWX keeps its agent's socket in the job's private directory), living as long as the play;
  the play gets SSH_AUTH_SOCK, the key never lands in a file; the username becomes `--user`.
  (ansible-runner's own `ssh_key` lets ssh-agent pick its socket directory in /tmp, and
  Debian's setgid ssh-agent ignores TMPDIR: a killed agent left it there.)
- vault: the password in a 0600 file under the run's `credentials/` directory, passed as
  `--vault-id ID@file` (or `--vault-password-file file`).
- become: the password in a 0600 file, `--become-password-file file` (never on a command line
  or in the environment), with `--become-method` / `--become-user` when set.
- age_identity: the private key in a 0600 file under the run's `credentials/` directory, its path
  as the extra var `dbfleet_age_identity_file` (what a restore hands to open_backup_stream / age -d -i).
- mysql: `login_user` and `login_password`, the variables the collection's playbooks hand to
  every dbfleet.mysql module, merged into the run's extra vars file (0600, see
  runner_service.worker.run), so they win over inventory variables; docs/decisions.md says why.

Each run has its own temporary directory (TMPDIR of the play, made by `run_temp_dir`): the
ssh-agent's socket and whatever else the play's processes put in TMPDIR land there and go
with the run, also when the agent was killed before it could clean up after itself. The agent
carries the job's environment marker, so whatever kills the play's processes kills it too.

`remove_private_data` deletes the credentials directory, the extra vars file, the key FIFO and
the run's temporary directory; the run calls it when it ends (done, failed, canceled, timed
out) and the reconciler's `lifecycle.lose` when the run's process was killed before it could.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dbfleet.paths import private_directory
from dbfleet.store import UnknownCredential
from runner_service.credentials.kinds import agent_key
from runner_service.secret_box import MIN_SECRET_LENGTH, SecretBox, SecretsError

CREDENTIALS_DIR = 'credentials'
EXTRA_VARS_FILE = ('env', 'extravars')
# The run's link to its temporary directory, which lives in the system's temporary directory:
# an agent socket path must fit in 108 bytes, which a run directory under a deep var_dir does not.
TEMP_LINK = 'tmp'
TEMP_PREFIX = 'dbfleet-run-'
AGENT_SOCKET = 'agent.sock'
AGENT_START_SECONDS = 10.0  # the agent's socket appears within this, or the run fails


class CredentialError(Exception):
    """A job names a credential it cannot have (deleted, unreadable with this key): the job fails with this."""


@dataclass
class RunCredentials:
    """The credentials of one run, opened: [(name, kind, public, secret)]."""

    items: list[tuple[str, str, dict, dict]] = field(default_factory=list)
    # Opening an OpenSSH key runs its KDF (bcrypt, on purpose slow): once per run is enough.
    _agent_keys: dict[str, str] = field(default_factory=dict, repr=False)
    # The run's ssh-agent, once an ssh credential started it (prepare); stopped by close.
    agent: subprocess.Popen | None = field(default=None, repr=False)

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

    def prepare(self, private_dir: Path, temp_dir: Path, marker: dict[str, str]) -> tuple[list[str], dict, dict]:
        """Write the run's credential files and start its ssh-agent (in `temp_dir`, with the
        environment `marker`); returns (ansible-playbook arguments, environment variables for
        the play, extra vars to merge into the run's)."""
        arguments: list[str] = []
        environment: dict[str, str] = {}
        extra_vars: dict = {}
        directory = None
        for name, kind, public, secret in self.items:
            if kind == 'ssh':
                environment['SSH_AUTH_SOCK'] = self._start_agent(name, secret, temp_dir, marker)
                if public.get('username'):
                    arguments += ['--user', public['username']]
            elif kind == 'mysql':
                # The play's login, over the inventory's: a certificate-only login sends no password.
                extra_vars['login_user'] = public['username']
                extra_vars['login_password'] = secret.get('password')
                for field in ('ca_cert', 'client_cert', 'client_key'):
                    if field in secret:  # PEM text: the modules write it where they run, for their run only
                        extra_vars['login_%s_data' % field] = secret[field]
            elif kind == 'age_identity':
                directory = directory or private_directory(private_dir / CREDENTIALS_DIR)
                extra_vars['dbfleet_age_identity_file'] = str(_write_secret(directory / 'age_identity',
                                                                            secret['identity']))
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
        return arguments, environment, extra_vars

    def _start_agent(self, name: str, secret: dict, temp_dir: Path, marker: dict[str, str]) -> str:
        """The run's ssh-agent holding the credential's key; its socket path."""
        socket = temp_dir / AGENT_SOCKET
        if self.agent is None:
            self.agent = subprocess.Popen(['ssh-agent', '-D', '-a', str(socket)], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          env=dict(os.environ, **marker))
            deadline = time.monotonic() + AGENT_START_SECONDS
            while not socket.is_socket():
                if self.agent.poll() is not None or time.monotonic() > deadline:
                    problem = self.agent.stderr.read().decode(errors='replace').strip() if self.agent.poll() \
                        is not None else 'no socket after %g s' % AGENT_START_SECONDS
                    self.close()
                    raise CredentialError('credential %s: ssh-agent did not start: %s' % (name, problem))
                time.sleep(0.01)
        added = subprocess.run(['ssh-add', '-q', '-'], input=self.agent_key(name, secret).encode(),
                               env=dict(os.environ, SSH_AUTH_SOCK=str(socket), **marker), capture_output=True,
                               timeout=30, check=False)
        if added.returncode != 0:
            self.close()
            said = added.stderr.decode(errors='replace').strip().splitlines()
            raise CredentialError('credential %s: ssh-add refused its key: %s'
                                  % (name, said[-1] if said else 'exit code %d' % added.returncode))
        return str(socket)

    def close(self) -> None:
        """Stop the run's ssh-agent (when the play's processes were not killed already)."""
        if self.agent is not None:
            if self.agent.poll() is None:
                self.agent.terminate()
                try:
                    self.agent.wait(5)
                except subprocess.TimeoutExpired:
                    self.agent.kill()
                    self.agent.wait()
            self.agent.stderr.close()
            self.agent = None


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
    file, the key FIFO ansible-runner leaves when ssh-add never read it, and the run's temporary
    directory (the ssh-agent's socket)."""
    shutil.rmtree(private_dir / CREDENTIALS_DIR, ignore_errors=True)
    _remove_temp_dir(private_dir / TEMP_LINK)
    leftovers = [private_dir.joinpath(*EXTRA_VARS_FILE)] + list((private_dir / 'artifacts').glob('*/ssh_key_data'))
    for path in leftovers:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def run_temp_dir(private_dir: Path) -> Path:
    """A new private (0700) temporary directory for the run, linked from its private directory
    (an earlier attempt's is removed first)."""
    link = private_dir / TEMP_LINK
    _remove_temp_dir(link)
    directory = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    link.symlink_to(directory)
    return directory


def _remove_temp_dir(link: Path) -> None:
    try:
        target = Path(os.readlink(link))
    except OSError:
        return
    # Only what run_temp_dir made: a link edited to point elsewhere removes nothing but itself.
    if target.parent == Path(tempfile.gettempdir()) and target.name.startswith(TEMP_PREFIX) and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
    link.unlink(missing_ok=True)


def _write_secret(path: Path, text: str) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, 'w') as handle:
        handle.write(text.rstrip('\n') + '\n')
    return path
