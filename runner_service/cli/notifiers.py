"""`dbfleet notifiers ...`: where notifications go, through the API (admins only).

A secret (the webhook's HMAC key, the SMTP password, the Slack URL) is read from a file the user
names, never taken from the command line (where `ps` and shell history would show it):

    dbfleet notifiers create ops-hook --kind webhook --url https://hooks.example/dbfleet --secret-file hmac.key
    dbfleet notifiers create ops-mail --kind email --smtp-host mail.example --username dbfleet \\
        --password-file smtp.pw --from dbfleet@example.org --to dba@example.org
    dbfleet notifiers create ops-slack --kind slack --url-file slack.url --event worker_lost
    dbfleet notifiers test ops-hook --wait
"""

from __future__ import annotations

import time
from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.inputs import read_secret, request_model
from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import api_answer, api_client, console, fail, fields_table, print_wide, table

notifiers_app = typer.Typer(help='Notifiers (webhook, e-mail, Slack) and their deliveries, through the API: list, '
                                 'show, create, delete, test. Admins only.', no_args_is_help=True)

NAME_ARGUMENT = typer.Argument(..., help='A notifier name, e.g. ops-mail.')
SETTLED = ('delivered', 'failed', 'silenced')


def _show(notifier: dict) -> None:
    fields_table({**{key: notifier.get(key) for key in ('name', 'kind', 'url', 'smtp_host', 'smtp_port', 'starttls',
                                                        'username', 'mail_from', 'signed', 'timeout_seconds',
                                                        'created_at', 'created_by')},
                  'mail_to': ', '.join(notifier.get('mail_to') or []) or None,
                  'events': ', '.join(notifier.get('events') or []) or None})


@notifiers_app.command('create', short_help='Store a notifier, its secrets sealed (needs an admin token).')
def notifiers_create(
        name: str = NAME_ARGUMENT,
        kind: str = typer.Option(..., '--kind', help='webhook, email or slack.'),
        events: list[str] = typer.Option([], '--event', help='An event of every job this notifier hears of (repeat): '
                                         'failed, recovered, timed_out, worker_lost.'),
        url: Optional[str] = typer.Option(None, '--url', help='webhook: where to POST.'),
        url_file: Optional[str] = typer.Option(None, '--url-file', help='slack: a file holding the incoming webhook '
                                               'URL (a secret).'),
        secret_file: Optional[str] = typer.Option(None, '--secret-file', help='webhook: a file holding the HMAC key '
                                                  'that signs each body.'),
        smtp_host: Optional[str] = typer.Option(None, '--smtp-host', help='email: the SMTP server.'),
        smtp_port: Optional[int] = typer.Option(None, '--smtp-port', help='email: its port (587).'),
        no_starttls: bool = typer.Option(False, '--no-starttls', help='email: do not upgrade with STARTTLS.'),
        ca_cert: Optional[str] = typer.Option(None, '--ca-cert', help="email: the CA file (PEM) of the server's "
                                              'certificate.'),
        username: Optional[str] = typer.Option(None, '--username', help='email: the SMTP AUTH user.'),
        password_file: Optional[str] = typer.Option(None, '--password-file', help='email: a file holding the SMTP '
                                                    'password.'),
        mail_from: Optional[str] = typer.Option(None, '--from', help='email: the sender address.'),
        mail_to: list[str] = typer.Option([], '--to', help='email: a recipient (repeat).'),
        timeout: Optional[float] = typer.Option(None, '--timeout', help='seconds one attempt may take.'),
        as_json: bool = JSON_OPTION) -> None:
    """Create a notifier; its secrets are sealed by the service and never shown again."""
    from runner_service.notify_schemas import NotifierCreate
    fields: dict = {'url': url, 'smtp_host': smtp_host, 'smtp_port': smtp_port, 'username': username,
                    'mail_from': mail_from, 'mail_to': mail_to or None, 'timeout_seconds': timeout,
                    'starttls': False if no_starttls else None}
    if url_file is not None:
        fields['url'] = read_secret(url_file, '--url-file').strip()
    if secret_file is not None:
        fields['secret'] = read_secret(secret_file, '--secret-file').splitlines()[0]
    if password_file is not None:
        fields['password'] = read_secret(password_file, '--password-file').splitlines()[0]
    if ca_cert is not None:
        fields['ca_cert'] = read_secret(ca_cert, '--ca-cert')
    request = request_model(NotifierCreate, whole='notifier', name=name, kind=kind, events=events, **fields)
    _show(api_answer(lambda client: client.create_notifier(request), as_json))


@notifiers_app.command('list')
def notifiers_list(as_json: bool = JSON_OPTION) -> None:
    """Notifiers with their kind, target and events (never a secret)."""
    notifiers = api_answer(lambda client: client.notifiers(), as_json)
    rows = table('name', 'kind', 'target', 'events')
    for notifier in notifiers:
        target = notifier.get('url') or ', '.join(notifier.get('mail_to') or []) or '-'
        rows.add_row(Text(notifier['name']), notifier['kind'], Text(target), ', '.join(notifier['events']) or '-')
    print_wide(rows)
    console.print(Text('%d notifier(s)' % len(notifiers)))


@notifiers_app.command('show')
def notifiers_show(name: str = NAME_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """A notifier's settings, then its latest deliveries with their attempts."""
    def call(client) -> dict:
        return {**client.notifier(name), 'deliveries': client.deliveries(name, limit=20)}

    notifier = api_answer(call, as_json)
    _show(notifier)
    rows = table('notification', 'event', 'status', 'attempts', 'last error', 'created')
    for notification in notifier['deliveries']:
        for delivery in notification['deliveries']:
            rows.add_row(str(notification['id']), notification['event'],
                         delivery['status'] + (' (%s)' % notification['silenced_by'] if notification['silenced_by']
                                               else ''),
                         str(delivery['attempts']), Text(delivery['last_error'] or '-'), str(delivery['created_at']))
    print_wide(rows)


@notifiers_app.command('delete')
def notifiers_delete(name: str = NAME_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Delete a notifier (refused while a template names it)."""
    typer.echo('notifier %s deleted' % api_answer(lambda client: client.delete_notifier(name), as_json)['name'])


@notifiers_app.command('test')
def notifiers_test(name: str = NAME_ARGUMENT,
                   wait: bool = typer.Option(False, '--wait', help='Wait until it is delivered or failed: exit 0 only '
                                             'when delivered.'),
                   as_json: bool = JSON_OPTION) -> None:
    """Send a test notification (stored, then sent by the API like any other)."""
    notification = api_answer(lambda client: client.test_notifier(name), None if wait else as_json)
    delivery = notification['deliveries'][0]
    if wait:
        with api_client() as client:
            while delivery['status'] not in SETTLED:
                time.sleep(0.5)
                found = [item for item in client.deliveries(name, limit=50) if item['id'] == notification['id']]
                delivery = found[0]['deliveries'][0] if found else delivery
    typer.echo('test notification %d to %s: %s%s' % (notification['id'], name, delivery['status'],
                                                     ' (%s)' % delivery['last_error'] if delivery['last_error'] else ''))
    if wait and delivery['status'] != 'delivered':
        fail('not delivered: %s' % delivery['last_error'], code=1)
