"""Hostile or careless values reaching a notifier, against real receivers (aiosmtpd, an HTTP
server): nothing a name, a URL, a password or a receiver's answer holds may stop the outbox (an
exception other than DeliveryFailed left the delivery claimed and the pass cut short), add a mail
header, or show credentials or a receiver's token to readers of answers, delivery errors and logs."""

from __future__ import annotations

import threading

import pytest
from pydantic import ValidationError

from runner_service.errors import Unprocessable
from runner_service.notify.kinds import split
from runner_service.notify.senders import DeliveryFailed, send
from runner_service.notify_schemas import NotifierCreate
from devtools.service_harness import PATIENCE, free_port
from tests.service.receivers import EndlessReceiver, MailReceiver, WebhookReceiver


def test_a_subject_with_line_breaks_is_sent_on_one_line_and_adds_no_header(tmp_path):
    with MailReceiver(tmp_path, free_port(), 'dbfleet', 'pw-123456') as receiver:
        notifier = {'kind': 'email', 'public': {
            'smtp_host': '127.0.0.1', 'smtp_port': receiver.port, 'ca_cert': receiver.cert_file.read_text(),
            'username': 'dbfleet', 'mail_from': 'dbfleet@example.org', 'mail_to': ['dba@example.org']}}
        payload = {'event': 'cron_failed', 'subject': '[dbfleet] entry x\r\nBcc: evil@example.org\nX-Evil: 1',
                   'text': 'failed'}
        send(notifier, {'password': 'pw-123456'}, payload, 1, 10)
        [message] = receiver.messages
    assert message['Bcc'] is None and message['X-Evil'] is None
    assert message['Subject'] == '[dbfleet] entry x Bcc: evil@example.org X-Evil: 1'


@pytest.mark.parametrize('url', ['https://user:pass@hooks.example.org/in', 'http://token@hooks.example.org/in'])
def test_a_webhook_url_with_credentials_is_refused(url):
    with pytest.raises(Unprocessable, match='credentials'):
        split(NotifierCreate(name='hook', kind='webhook', url=url))


def test_a_password_smtplib_cannot_send_fails_the_delivery_and_does_not_stop_the_outbox(tmp_path):
    """smtplib's AUTH encodes user and password as ASCII: anything else raised UnicodeEncodeError,
    which escaped the outbox (a claimed delivery never counted as attempted)."""
    with MailReceiver(tmp_path, free_port(), 'dbfleet', 'pw-123456') as receiver:
        notifier = {'kind': 'email', 'public': {
            'smtp_host': '127.0.0.1', 'smtp_port': receiver.port, 'ca_cert': receiver.cert_file.read_text(),
            'username': 'dbfleet', 'mail_from': 'dbfleet@example.org', 'mail_to': ['dba@example.org']}}
        with pytest.raises(DeliveryFailed) as failed:
            send(notifier, {'password': 'mot-de-passe-\u00e9t\u00e9'}, {'event': 'test', 'subject': 's', 'text': 't'}, 1, 10)
        assert receiver.messages == []
    assert '\u00e9t\u00e9' not in str(failed.value)


UNSENDABLE_URLS = ['http://127.0.0.1:9/\x01', 'http://127.0.0.1:9/\x7f', 'http://999.1.1.1/', 'http://a..b/',
                   'http://%s.example/' % ('a' * 70)]


@pytest.mark.parametrize('url', UNSENDABLE_URLS)
def test_a_url_the_sender_cannot_use_is_refused_when_the_notifier_is_created(url):
    with pytest.raises(Unprocessable, match='url'):
        split(NotifierCreate(name='hook', kind='webhook', url=url))


@pytest.mark.parametrize('url', UNSENDABLE_URLS)
def test_a_stored_url_the_sender_cannot_use_fails_the_delivery(url):
    """httpx raises InvalidURL or UnicodeError (IDNA) for these, not an HTTPError: they escaped the outbox."""
    with pytest.raises(DeliveryFailed, match='webhook'):
        send({'kind': 'webhook', 'public': {'url': url}}, {}, {'event': 'test', 'subject': 's', 'text': 't'}, 1, 5)


def test_an_smtp_username_with_control_characters_is_refused():
    """It is shown in answers and in the delivery error of a refused login, which the outbox logs:
    a line break in it forged log lines."""
    with pytest.raises(ValidationError, match='username'):
        NotifierCreate(name='mail', kind='email', smtp_host='127.0.0.1', mail_from='a@example.org',
                       mail_to=['b@example.org'], username='dbfleet\r\nWARNING forged', password='x')


def test_a_refused_webhook_delivery_names_the_receiver_by_its_origin_alone():
    """Delivery errors are read by viewers (GET /api/v1/notifications), a notifier's URL by admins
    only: its path and query (where receivers often take a token) stay out of the error."""
    with WebhookReceiver(fail_first=1) as receiver:
        url = receiver.url + '/hooks/T0/B0?token=query-token-123'
        with pytest.raises(DeliveryFailed) as failed:
            send({'kind': 'webhook', 'public': {'url': url}}, {}, {'event': 'test', 'subject': 's', 'text': 't'}, 1, 10)
    assert str(failed.value) == 'webhook %s answered HTTP 500' % receiver.url


def test_a_webhook_answer_is_not_read_past_its_status():
    """The outbox sends one delivery at a time in the API process: a receiver whose answer never
    ends (or is gigabytes long) held it, and its memory, for as long as it kept sending."""
    with EndlessReceiver() as receiver:
        sender = threading.Thread(target=send, daemon=True, args=(
            {'kind': 'webhook', 'public': {'url': receiver.url}}, {}, {'event': 'test', 'subject': 's', 'text': 't'},
            1, 10))
        sender.start()
        sender.join(timeout=30 * PATIENCE)
        assert not sender.is_alive(), 'the sender is still reading the answer'
        assert receiver.hung_up.wait(timeout=30 * PATIENCE)


def test_a_receiver_that_trickles_its_headers_fails_the_delivery_at_the_whole_requests_deadline():
    """Each read has the timeout; a receiver that sends its status line and then a header byte every
    half second never lets one expire. The whole request has WHOLE_REQUEST_STEPS timeouts, then the
    connection is closed under it: the delivery fails, the sender is free long before its claim ends."""
    import socket
    import time

    from runner_service.notify.senders import WHOLE_REQUEST_STEPS
    listener = socket.create_server(('127.0.0.1', 0))
    stop = threading.Event()

    def trickle():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b'HTTP/1.1 200 OK\r\n')
            while not stop.is_set():
                try:
                    connection.sendall(b'X')
                except OSError:
                    return
                stop.wait(0.5)

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    origin = 'http://127.0.0.1:%d' % listener.getsockname()[1]
    url = origin + '/in'
    began = time.monotonic()
    try:
        with pytest.raises(DeliveryFailed) as failed:
            send({'kind': 'webhook', 'public': {'url': url}}, {}, {'event': 'test', 'subject': 's', 'text': 't'}, 1, 2)
    finally:
        stop.set()
        listener.close()
    assert str(failed.value) == 'webhook %s did not answer within %d s' % (origin, WHOLE_REQUEST_STEPS * 2)
    # Not before the deadline (each read succeeded), and well before the claim (6 timeouts + 30 s) ends.
    assert WHOLE_REQUEST_STEPS * 2 <= time.monotonic() - began < 6 * 2 + 30


def test_a_delivery_that_breaks_the_sender_unexpectedly_fails_alone_and_the_outbox_goes_on(tmp_path):
    from dbfleet.settings import Settings
    from dbfleet.store import open_store
    from runner_service.notify.outbox import Outbox
    from runner_service.runtime import Runtime

    url = 'sqlite:///%s' % (tmp_path / 'store.db')
    with open_store(url) as store, WebhookReceiver() as receiver:
        # A row no API call makes (a webhook without its url): the sender meets an error it does not expect.
        store.notifications.create_notifier('odd', 'webhook', public={}, events=[], sealed=None)
        store.notifications.create_notifier('fine', 'webhook', public={'url': receiver.url, 'signed': False},
                                            events=[], sealed=None)
        store.notifications.record('one', 'failed', 'job failed', {}, ['odd'])
        store.notifications.record('two', 'failed', 'job failed', {}, ['fine'])
        runtime = Runtime(settings=Settings(var_dir=tmp_path, store_url=url, notify_attempts=1), store_override=store)
        assert Outbox(runtime).pass_once() == 2
        deliveries = {n['key']: n['deliveries'][0] for n in store.notifications.list()}
        assert deliveries['two']['status'] == 'delivered' and len(receiver.requests) == 1
        assert deliveries['one']['status'] == 'failed'
        assert deliveries['one']['last_error'].startswith('the sender failed unexpectedly (KeyError')
