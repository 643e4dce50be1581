"""Sending one notification to one notifier: a signed JSON webhook, a Slack-compatible incoming
webhook, or a mail over SMTP (STARTTLS, AUTH). A failure raises DeliveryFailed with a reason that
names no secret (not the HMAC key, the SMTP password, nor the Slack URL)."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import threading
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx

SIGNATURE_HEADER = 'X-Dbfleet-Signature'
EVENT_HEADER = 'X-Dbfleet-Event'
DELIVERY_HEADER = 'X-Dbfleet-Delivery'
# A webhook's whole request (connect, send, the answer's status and headers) takes at most this many
# timeouts; the outbox's claim on a delivery outlives it (outbox.py).
WHOLE_REQUEST_STEPS = 3


class DeliveryFailed(Exception):
    """The receiver refused or could not be reached; the message is safe to store and show."""


def body_of(payload: dict) -> bytes:
    """The exact bytes a webhook receives, and its signature covers."""
    return json.dumps(payload, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()


def signature(key: str, body: bytes) -> str:
    return 'sha256=' + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def send(notifier: dict, secret: dict, payload: dict, delivery_id: int, timeout: float) -> None:
    """Deliver `payload` (the notification as receivers see it) through `notifier` (its stored row)."""
    kind, public = notifier['kind'], notifier['public']
    timeout = public.get('timeout_seconds') or timeout
    if kind == 'webhook':
        body = body_of(payload)
        headers = {'Content-Type': 'application/json', EVENT_HEADER: payload['event'],
                   DELIVERY_HEADER: str(delivery_id)}
        if secret.get('secret'):
            headers[SIGNATURE_HEADER] = signature(secret['secret'], body)
        _post(public['url'], body, headers, timeout, 'webhook %s' % _origin(public['url']), secret)
    elif kind == 'slack':
        body = json.dumps({'text': '%s\n%s' % (payload['subject'], payload['text'])}).encode()
        _post(secret['url'], body, {'Content-Type': 'application/json'}, timeout, 'slack webhook', secret)
    else:
        _mail(public, secret, payload, timeout)


def _post(url: str, body: bytes, headers: dict, timeout: float, what: str, secret: dict) -> None:
    """POST within `timeout` per step and WHOLE_REQUEST_STEPS x `timeout` in all: each read has its
    timeout, so a receiver that sends its answer's headers a byte at a time would otherwise hold the
    sender (and the delivery's claim) for days. Past the deadline the connection is closed under the
    request, which then fails."""
    outcome: dict = {}
    try:
        client = httpx.Client(timeout=timeout, follow_redirects=False)
    except (httpx.HTTPError, ValueError) as exc:
        raise DeliveryFailed('%s: %s' % (what, _safe(exc, secret))) from None

    def request() -> None:
        try:
            # Streamed and closed unread: only the status counts, and an answer may be endless.
            with client.stream('POST', url, content=body, headers=headers) as answer:
                outcome['status'] = answer.status_code
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread, which sorts it
            outcome['error'] = exc

    worker = threading.Thread(target=request, name='notify-post', daemon=True)
    deadline = WHOLE_REQUEST_STEPS * timeout
    worker.start()
    worker.join(deadline)
    late = worker.is_alive()
    client.close()  # past the deadline: closes the socket under the request, which ends with an error
    worker.join(timeout)
    if late:
        raise DeliveryFailed('%s did not answer within %.0f s' % (what, deadline))
    error = outcome.get('error')
    if isinstance(error, (httpx.HTTPError, httpx.InvalidURL, UnicodeError)):  # a URL httpx cannot parse or encode
        raise DeliveryFailed('%s: %s' % (what, _safe(error, secret))) from None
    if error is not None:
        raise error
    status = outcome['status']
    if not 200 <= status < 300:
        raise DeliveryFailed('%s answered HTTP %d' % (what, status))


def _origin(url: str) -> str:
    """How a delivery error names a webhook: viewers read those errors, and a URL's path or query
    often holds the receiver's token."""
    parts = urlsplit(url)
    return '%s://%s' % (parts.scheme, parts.netloc.rpartition('@')[2])


def _mail(public: dict, secret: dict, payload: dict, timeout: float) -> None:
    message = EmailMessage()
    message['From'] = public['mail_from']
    message['To'] = ', '.join(public['mail_to'])
    # One line: a CR/LF from a name or reason would make EmailMessage raise, and stall the outbox.
    message['Subject'] = ' '.join(payload['subject'].split())
    message.set_content(payload['text'] + '\n\n' + json.dumps(payload, indent=2, sort_keys=True) + '\n')
    server = '%s:%d' % (public['smtp_host'], public['smtp_port'])
    try:
        with smtplib.SMTP(public['smtp_host'], public['smtp_port'], timeout=timeout) as smtp:
            if public.get('starttls', True):
                smtp.starttls(context=ssl.create_default_context(cadata=public.get('ca_cert')))
            if public.get('username'):
                smtp.login(public['username'], secret['password'])
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryFailed('smtp %s refused the login of %s (%d)' % (server, public['username'], exc.smtp_code)) \
            from None
    except UnicodeError:  # smtplib's AUTH encodes as ASCII; its message would show a character of the password
        raise DeliveryFailed('smtp %s: the username or password is not ASCII, which SMTP AUTH cannot send' % server) \
            from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise DeliveryFailed('smtp %s: %s' % (server, _safe(exc, secret))) from None


def _safe(exc: Exception, secret: dict) -> str:
    """The exception as text, any secret value in it masked, one line, bounded."""
    text = '%s: %s' % (type(exc).__name__, exc)
    for value in secret.values():
        if isinstance(value, str) and value:
            text = text.replace(value, '********')
    return ' '.join(text.split())[:500]
