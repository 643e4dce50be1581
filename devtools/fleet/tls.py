"""TLS material for the fleet: a private CA, a server certificate for 127.0.0.1 / localhost and a
client certificate, made once under var/fleet/tls/ (gitignored) with the cryptography library.

The primary serves TLS with them, so the login options ca_cert / client_cert / client_key /
check_hostname are tested against a real server; the other instances offer no TLS.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650
KEY_BITS = 2048


class TLSFiles(object):
    """Where the fleet's TLS files are (under `directory`)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.ca = self.directory / 'ca.pem'
        self.server_cert = self.directory / 'server-cert.pem'
        self.server_key = self.directory / 'server-key.pem'
        self.client_cert = self.directory / 'client-cert.pem'
        self.client_key = self.directory / 'client-key.pem'

    def complete(self) -> bool:
        return all(path.exists() for path in (self.ca, self.server_cert, self.server_key, self.client_cert,
                                              self.client_key))


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'dbfleet test fleet'),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _builder(subject, issuer, public_key, now):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS)))


def _leaf(ca_key, ca_name, common_name, usage, now, alt_names=None):
    key = _key()
    builder = _builder(_name(common_name), ca_name, key.public_key(), now)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def make_certificate_authority(common_name='dbfleet test CA'):
    """(key, certificate) of a self-signed CA."""
    key = _key()
    name = _name(common_name)
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (_builder(name, name, key.public_key(), now)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .sign(key, hashes.SHA256()))
    return key, certificate


def _write(path: Path, data: bytes, private=False):
    temporary = path.with_name(path.name + '.tmp')
    temporary.write_bytes(data)
    os.chmod(temporary, 0o600 if private else 0o644)
    temporary.replace(path)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _certificate_pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM)


def write_ca(path: Path, common_name='another CA') -> Path:
    """A CA certificate that signed nothing of the fleet's (for verification failures)."""
    _key_unused, certificate = make_certificate_authority(common_name)
    _write(path, _certificate_pem(certificate))
    return path


def ensure_tls_files(directory: Path) -> TLSFiles:
    """The fleet's CA, server and client certificates, created when any is missing."""
    files = TLSFiles(Path(directory))
    if files.complete():
        return files
    files.directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = make_certificate_authority()
    now = datetime.datetime.now(datetime.timezone.utc)
    server_key, server = _leaf(ca_key, ca.subject, 'localhost', ExtendedKeyUsageOID.SERVER_AUTH, now,
                               [x509.DNSName('localhost'), x509.IPAddress(ipaddress.ip_address('127.0.0.1'))])
    client_key, client = _leaf(ca_key, ca.subject, 'dbfleet fleet client', ExtendedKeyUsageOID.CLIENT_AUTH, now)
    _write(files.server_key, _key_pem(server_key), private=True)
    _write(files.server_cert, _certificate_pem(server))
    _write(files.client_key, _key_pem(client_key), private=True)
    _write(files.client_cert, _certificate_pem(client))
    _write(files.ca, _certificate_pem(ca))  # last: complete() holds only once everything is written
    return files
