"""`dbfleet tokens ...`: API bearer tokens, written to the store directly (the first admin token
has no API to ask)."""

from __future__ import annotations

from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.options import JSON_OPTION, STORE_OPTION
from runner_service.cli.output import console, fail, print_json, print_wide, table, when
from runner_service.cli.store import opened_store

tokens_app = typer.Typer(help='API bearer tokens: create, list, revoke.', no_args_is_help=True)


@tokens_app.command('create')
def tokens_create(name: str = typer.Argument(..., help='A name for people: who or what uses the token.'),
                  role: str = typer.Option(..., '--role', help='viewer (read), operator (launch templates, change '
                                           'timings), admin (everything), or agent (one bridged host: reports its '
                                           'cron runs, reads its entries; needs --host).'),
                  templates: Optional[list[str]] = typer.Option(None, '--template', help='It may launch only this '
                                                                'job template (repeat); no bare playbooks.'),
                  host: Optional[str] = typer.Option(None, '--host', help='The bridged host of an agent token.'),
                  expires: Optional[str] = typer.Option(None, '--expires', help='When it stops working: a duration '
                                                        'from now (90d, 12h, 2w) or a date (2027-03-31).'),
                  as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """Create an API token. It is printed once: only its hash is kept."""
    import getpass

    from runner_service import tokens
    if role not in tokens.ROLES:
        fail('--role must be one of %s, got %r' % (', '.join(tokens.ROLES), role[:40]))
    if role == tokens.AGENT and not host:
        fail('an agent token needs --host: the bridged host it reports for')
    if role != tokens.AGENT and host is not None:
        fail('--host is for agent tokens only (role %s)' % role)
    with opened_store(store) as opened:
        try:
            token, record = tokens.create(opened, name, role, 'cli:%s' % getpass.getuser(), host=host,
                                          expires=expires, templates=templates or None)
        except ValueError as exc:
            fail(str(exc))
    if as_json:
        print_json(dict(record, token=token))
        return
    # The note goes to stderr, so TOKEN=$(dbfleet tokens create ...) captures the token alone.
    typer.echo('token %s (%s%s%s%s) created; it cannot be shown again: keep it now.'
               % (name, role, ' of host %s' % host if host else '',
                  '; templates: %s' % ', '.join(record['templates']) if record['templates'] else '',
                  ', expires %s' % when(record['expires_at']) if record['expires_at'] else ''), err=True)
    typer.echo(token)


@tokens_app.command('list')
def tokens_list(show_all: bool = typer.Option(False, '--all', help='Include revoked tokens.'),
                as_json: bool = JSON_OPTION, store: Optional[str] = STORE_OPTION) -> None:
    """API tokens by name, with their role, host, expiry and use (never the tokens or their hashes)."""
    from runner_service.tokens import is_expired
    with opened_store(store) as opened:
        tokens = opened.tokens.list(include_revoked=show_all)
    if as_json:
        print_json([dict(token, expired=is_expired(token)) for token in tokens])
        return
    rows = table('name', 'role', 'host', 'created', 'expires', 'last used', 'revoked', 'templates')
    for token in tokens:
        expires = when(token['expires_at'])
        if is_expired(token):
            expires += ' (expired)'
        # Text, not markup: a name such as '[/x]' is printed as it is.
        rows.add_row(Text(token['name']), token['role'], Text(token['host'] or '-'), when(token['created_at']),
                     expires, when(token['last_used_at']), when(token['revoked_at']),
                     Text(', '.join(token['templates'] or ()) or '-'))
    print_wide(rows)
    console.print('%d token(s)' % len(tokens))


@tokens_app.command('revoke')
def tokens_revoke(name: str, store: Optional[str] = STORE_OPTION) -> None:
    """Revoke an API token for good (the name is not reused). Its open event streams end within seconds."""
    import getpass

    from runner_service import tokens
    with opened_store(store) as opened:
        try:
            record = tokens.revoke(opened, name, 'cli:%s' % getpass.getuser())
        except ValueError as exc:
            fail(str(exc))
    typer.echo('token %s revoked at %s' % (name, when(record['revoked_at'])))
