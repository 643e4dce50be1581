"""Real receivers for notification tests: an HTTP server on loopback that checks each body's
HMAC-SHA256 signature (and can answer 500 the first N times), and an SMTP server (aiosmtpd) that
requires STARTTLS, with a certificate made here, and AUTH before it takes a mail."""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
from email.message import Message
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Service settings for tests of deliveries: the outbox polls fast and a failed attempt is tried
# again 0.2 s later (doubling), so no test sleeps on a backoff.
FAST_OUTBOX = {'DBFLEET_NOTIFY_SECONDS': '0.2', 'DBFLEET_NOTIFY_BACKOFF_SECONDS': '0.2', 'DBFLEET_NOTIFY_ATTEMPTS': '12',
               'DBFLEET_NOTIFY_TIMEOUT_SECONDS': '5'}


class WebhookReceiver:
    """Records every POST: path, headers, the exact body, and whether its signature holds."""

    def __init__(self, key: str | None = None, port: int = 0, fail_first: int = 0):
        self.key = key
        self.fail_first = fail_first
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                with receiver.lock:
                    refused = receiver.fail_first > 0
                    receiver.fail_first -= refused
                    receiver.requests.append({'path': self.path, 'headers': dict(self.headers), 'body': body,
                                              'json': json.loads(body), 'refused': refused,
                                              'signed': receiver.signed(self.headers, body)})
                self.send_response(500 if refused else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', port), Handler)
        self.port = self.server.server_address[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def signed(self, headers, body: bytes) -> bool:
        if self.key is None:
            return False
        expected = 'sha256=' + hmac.new(self.key.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(headers.get('X-Dbfleet-Signature', ''), expected)

    def accepted(self) -> list[dict]:
        with self.lock:
            return [request for request in self.requests if not request['refused']]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()


class EndlessReceiver(WebhookReceiver):
    """A webhook receiver that answers 200 and then sends its body forever, until the client hangs up
    (started and stopped as WebhookReceiver is)."""

    def __init__(self):
        self.hung_up = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get('Content-Length', 0)))
                self.send_response(200)
                self.send_header('Content-Length', str(2 ** 40))
                self.end_headers()
                try:
                    while True:
                        self.wfile.write(b'x' * 65536)
                except OSError:
                    receiver.hung_up.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'dbfleet test smtp')])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / 'smtp.crt', directory / 'smtp.key'
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class MailReceiver:
    """aiosmtpd on loopback: STARTTLS required, then AUTH as user/password, then the mail is kept."""

    def __init__(self, directory: Path, port: int, user: str, password: str):
        self.cert_file, key_file = self_signed(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, key_file)
        self.messages: list[Message] = []
        self.logins: list[tuple[str, bool]] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                receiver.messages.append(email.message_from_bytes(envelope.original_content, policy=default_policy))
                return '250 OK'

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            receiver.logins.append((auth_data.login.decode(), ok))
            return AuthResult(success=ok)

        self.controller = Controller(Handler(), hostname='127.0.0.1', port=port, tls_context=context,
                                     require_starttls=True, authenticator=authenticate, auth_require_tls=True)
        self.port = port

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc_info):
        self.controller.stop()
