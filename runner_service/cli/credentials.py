"""`dbfleet credentials ...`: secrets that job runs need, through the API (admins only).

A secret is read from a file the user names or typed at a prompt, never taken from the command
line (where `ps` and shell history would show it):

    dbfleet credentials create deploy-key --kind ssh --key-file ~/.ssh/id_ed25519 --passphrase-file pp.txt
    dbfleet credentials create backup-login --kind mysql --user backup --password-file backup.pw
    dbfleet credentials create prod-vault --kind vault --vault-id prod --password-file vault.pw
    dbfleet credentials create sudo --kind become --password-file sudo.pw
    dbfleet credentials create backup-key --kind age_identity --identity-file backup.agekey
"""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.inputs import read_secret, request_model
from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import api_answer, console, fail, fields_table, print_wide, table

credentials_app = typer.Typer(help='Credentials (SSH keys, MySQL logins, vault and become passwords) for job runs, '
                                   'through the API: list, show, create, delete. Admins only.', no_args_is_help=True)

NAME_ARGUMENT = typer.Argument(..., help='A credential name, e.g. deploy-key.')
def _password(path: str | None, option: str, what: str) -> str:
    """A one-line password from a file (its first line, as Ansible reads a password file) or a prompt."""
    if path is not None:
        return read_secret(path, option).splitlines()[0]
    if not sys.stdin.isatty():
        fail('give %s (a file holding it) or run this on a terminal to type it' % option)
    return typer.prompt(what, hide_input=True, confirmation_prompt=True)


def _show(credential: dict) -> None:
    fields_table({key: credential.get(key) for key in ('name', 'kind', 'username', 'vault_id', 'become_method',
                                                       'become_user', 'fingerprint', 'created_at', 'created_by')})


@credentials_app.command('create', short_help='Store a credential, sealed (needs an admin token).')
def credentials_create(
        name: str = NAME_ARGUMENT,
        kind: str = typer.Option(..., '--kind', help='ssh, mysql, vault, become or age_identity.'),
        key_file: Optional[str] = typer.Option(None, '--key-file', help='ssh: the private key file.'),
        passphrase_file: Optional[str] = typer.Option(None, '--passphrase-file', help="ssh: a file holding the "
                                                      "key's passphrase."),
        ask_passphrase: bool = typer.Option(False, '--ask-passphrase', help="ssh: type the key's passphrase."),
        username: Optional[str] = typer.Option(None, '--username', '--user', help='ssh: the login user; mysql: the '
                                               'MySQL user.'),
        password_file: Optional[str] = typer.Option(None, '--password-file', help='mysql, vault, become: a file '
                                                    'holding the password (else it is asked for).'),
        client_cert: Optional[str] = typer.Option(None, '--client-cert', help='mysql: a TLS client certificate '
                                                  'file (PEM).'),
        client_key: Optional[str] = typer.Option(None, '--client-key', help='mysql: its key file (PEM).'),
        ca_cert: Optional[str] = typer.Option(None, '--ca-cert', help='mysql: the CA certificate file (PEM).'),
        vault_id: Optional[str] = typer.Option(None, '--vault-id', help='vault: the vault id it opens.'),
        become_method: Optional[str] = typer.Option(None, '--become-method', help='become: sudo, su, ...'),
        become_user: Optional[str] = typer.Option(None, '--become-user', help='become: the user to become.'),
        identity_file: Optional[str] = typer.Option(None, '--identity-file', help='age_identity: the age key file '
                                                    '(age-keygen -o FILE).'),
        as_json: bool = JSON_OPTION) -> None:
    """Create a credential; its secret is sealed by the service and never shown again."""
    from runner_service.schemas import CredentialCreate
    fields: dict = {'username': username, 'vault_id': vault_id, 'become_method': become_method,
                    'become_user': become_user}
    if kind == 'ssh':
        if key_file is None:
            fail('an ssh credential needs --key-file')
        fields['ssh_key'] = read_secret(key_file, '--key-file')
        if passphrase_file is not None:
            fields['passphrase'] = read_secret(passphrase_file, '--passphrase-file').splitlines()[0]
        elif ask_passphrase:
            fields['passphrase'] = _password(None, '--passphrase-file', 'passphrase of %s' % key_file)
    elif kind == 'mysql':
        for field, path, option in (('client_cert', client_cert, '--client-cert'),
                                    ('client_key', client_key, '--client-key'), ('ca_cert', ca_cert, '--ca-cert')):
            if path is not None:
                fields[field] = read_secret(path, option)
        if password_file is not None or client_cert is None:
            fields['password'] = _password(password_file, '--password-file', 'MySQL password of %s' % username)
    elif kind in ('vault', 'become'):
        fields['password'] = _password(password_file, '--password-file', '%s password' % kind)
    elif kind == 'age_identity':
        if identity_file is None:
            fail('an age_identity credential needs --identity-file (the file age-keygen wrote)')
        # age-keygen writes comments (creation time, public key) before the key itself.
        keys = [line.strip() for line in read_secret(identity_file, '--identity-file').splitlines()
                if line.strip() and not line.startswith('#')]
        if len(keys) != 1:
            fail('--identity-file must hold exactly one age private key, it holds %d' % len(keys))
        fields['identity'] = keys[0]
    else:
        fail('--kind must be ssh, mysql, vault, become or age_identity, not %r' % kind[:40])
    request = request_model(CredentialCreate, whole='credential', name=name, kind=kind,
                            **{key: value for key, value in fields.items() if value is not None})
    _show(api_answer(lambda client: client.create_credential(request), as_json))


@credentials_app.command('list')
def credentials_list(as_json: bool = JSON_OPTION) -> None:
    """Credentials with their kind, user and fingerprint (never a secret)."""
    credentials = api_answer(lambda client: client.credentials(), as_json)
    rows = table('name', 'kind', 'user', 'fingerprint')
    for credential in credentials:
        user = credential.get('username') or credential.get('become_user') or credential.get('vault_id') or '-'
        rows.add_row(Text(credential['name']), credential['kind'], Text(user), Text(credential['fingerprint']))
    print_wide(rows)
    console.print(Text('%d credential(s)' % len(credentials)))


@credentials_app.command('show')
def credentials_show(name: str = NAME_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """A credential's kind, public fields and fingerprint."""
    _show(api_answer(lambda client: client.credential(name), as_json))


@credentials_app.command('delete')
def credentials_delete(name: str = NAME_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Delete a credential (refused while a template names it)."""
    typer.echo('credential %s deleted' % api_answer(lambda client: client.delete_credential(name), as_json)['name'])
