"""What each notifier kind holds, checked: the fields it needs, which of them are secrets (sealed,
never shown again) and which may be shown.

    webhook  url (shown), secret (the HMAC key, sealed; optional), timeout
    slack    url (sealed: whoever has a Slack incoming webhook URL may post to the channel)
    email    smtp_host, smtp_port, starttls, ca_cert, username, mail_from, mail_to (shown); password (sealed)
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import httpx

from runner_service.errors import Unprocessable
from runner_service.notify_schemas import NotifierCreate

FIELDS = {
    'webhook': {'url', 'secret'},
    'slack': {'url'},
    'email': {'smtp_host', 'smtp_port', 'starttls', 'ca_cert', 'username', 'password', 'mail_from', 'mail_to'},
}
SECRET_FIELDS = {'webhook': {'secret'}, 'slack': {'url'}, 'email': {'password'}}
COMMON = {'name', 'kind', 'events', 'timeout_seconds'}
DEFAULTED = {'smtp_port', 'starttls'}  # fields with a default: given or not, they are not "extra"


def split(request: NotifierCreate) -> tuple[dict, dict]:
    """(public, secret) of a notifier; Unprocessable naming the field that is wrong or missing."""
    kind = request.kind
    given = request.model_dump(exclude_none=True, exclude=COMMON)
    extra = sorted(set(given) - FIELDS[kind] - DEFAULTED)
    if extra:
        raise Unprocessable('notifier %s: a %s notifier takes no %s' % (request.name, kind, ', '.join(extra)))
    if kind in ('webhook', 'slack'):
        _check_url(request.name, request.url)
        if kind == 'webhook' and '@' in (urlsplit(request.url).netloc or ''):
            # A webhook's URL is shown in answers, delivery errors and logs: no credentials in it.
            raise Unprocessable('notifier %s: a webhook url carries no credentials (user:password@): it is shown '
                                'in answers and logs; sign the bodies with secret instead' % request.name)
    else:
        for field in ('smtp_host', 'mail_from', 'mail_to'):
            if given.get(field) is None:
                raise Unprocessable('notifier %s: an email notifier needs %s' % (request.name, field))
        if (request.username is None) != (request.password is None):
            raise Unprocessable('notifier %s: give username and password together (SMTP AUTH), or neither'
                                % request.name)
        if request.password is not None and not request.starttls:
            raise Unprocessable('notifier %s: SMTP AUTH without starttls would send the password in clear'
                                % request.name)
        if request.ca_cert is not None:
            try:
                ssl.create_default_context(cadata=request.ca_cert)
            except (ssl.SSLError, ValueError):
                raise Unprocessable('notifier %s: ca_cert is not a PEM certificate' % request.name) from None
    secret = {field: given[field] for field in SECRET_FIELDS[kind] if field in given}
    public = {field: value for field, value in given.items() if field in FIELDS[kind] and field not in secret}
    if request.timeout_seconds is not None:
        public['timeout_seconds'] = request.timeout_seconds
    if kind == 'webhook':
        public['signed'] = 'secret' in secret
    return public, secret


def _check_url(name: str, url: str | None) -> None:
    if url is None:
        raise Unprocessable('notifier %s: needs url' % name)
    try:
        parts = urlsplit(url)
        parts.port  # a port that is not a number raises here
        valid = parts.scheme in ('http', 'https') and bool(parts.hostname)
        if valid:
            httpx.URL(url)  # what the sender will parse: control characters, impossible IPv4 addresses
            parts.hostname.encode('idna')  # what it will resolve: empty or over-long labels
    except (ValueError, httpx.InvalidURL):
        valid = False
    if not valid or any(ch in url for ch in '\r\n\t '):
        raise Unprocessable('notifier %s: url must be an http:// or https:// URL with a host' % name)
