"""Keeping secrets out of everything dbfleet writes.

Extra vars whose names look secret (password, token, key, ...) are split off when a job is
accepted: the store keeps the job's extra_vars with those values masked, and the real values
encrypted (Fernet, key from DBFLEET_SECRET_KEY or a 0600 file under var/) so that a worker,
a retry or a relaunch can still run the job. A `Redactor` then masks those values, wherever
ansible prints them, in events and stdout before they are stored or streamed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from cryptography.fernet import Fernet, InvalidToken

from dbfleet.paths import private_directory

MASK = '********'
# A name that contains any of these, in any case, is a secret's: db_password, mysql_root_pass,
# MYSQL_PWD, x_pwd, api_token, ssh_private_key, aws_secret, db_credentials... Wide on purpose:
# masking a harmless value (a `keyspace`) costs little, printing a password costs much.
SECRET_NAME = re.compile(r'pass|pwd|secret|token|key|credential|auth|(^|_)pw($|_)', re.IGNORECASE)
# Values shorter than this are not hunted in output: masking every "1" or "on" would garble it.
MIN_SECRET_LENGTH = 4


class SecretsError(Exception):
    """The secret key is missing or does not open what the store holds."""


def looks_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(str(name)))


def split_extra_vars(extra_vars: dict) -> tuple[dict, dict]:
    """(public, secret): public is extra_vars with each secret-looking value (at any depth)
    replaced by MASK; secret holds the real values of those top-level variables."""
    public: dict = {}
    secret: dict = {}
    for name, value in extra_vars.items():
        masked = _mask(name, value)
        public[name] = masked
        if masked != value:
            secret[name] = value
    return public, secret


def _mask(name: Any, value: Any) -> Any:
    if looks_secret(name) and value is not None and not isinstance(value, bool):
        return MASK
    if isinstance(value, dict):
        return {key: _mask(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(name, item) for item in value]
    return value


def secret_values(secret: dict) -> set[str]:
    """Every string (and number) under a secret-looking name in the secret vars, as text that
    could show up in output. (A variable like `db: {user: u, password: p}` is sealed whole, but
    only `p` is hunted in output.) A top-level value that is not a dict or a list is hunted
    whatever its name: it was sealed because it is a secret (a survey's password variable)."""
    found: set[str] = set()

    def walk(value: Any, under_secret: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, under_secret or looks_secret(key))
        elif isinstance(value, list):
            for item in value:
                walk(item, under_secret)
        elif not under_secret:
            return
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if len(text) >= MIN_SECRET_LENGTH:
                found.add(text)
                # JSON-escaped forms appear in event data and YAML/JSON-formatted results.
                found.add(json.dumps(text)[1:-1])

    for name, value in secret.items():
        walk(value, looks_secret(name) or not isinstance(value, (dict, list)))
    return found


class Redactor:
    """Masks known secret values in text and in nested event data."""

    def __init__(self, values: Iterable[str] = ()):
        # Longest first, so a secret that contains another is masked whole.
        self._values = sorted({value for value in values if value}, key=len, reverse=True)
        self._pattern = re.compile('|'.join(re.escape(value) for value in self._values)) if self._values else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(MASK, value)

    def data(self, value: Any) -> Any:
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.data(item) for item in value]
        return value


# -- encryption at rest -----------------------------------------------------------------------

def load_key(key: str | None, key_file: Path) -> bytes:
    """The Fernet key: DBFLEET_SECRET_KEY when set, else the key file, created (0600) on first use.
    Every API and worker process sharing a store must share this key."""
    if key:
        return key.encode()
    try:
        return key_file.read_bytes().strip()
    except FileNotFoundError:
        pass
    private_directory(key_file.parent)
    fresh = Fernet.generate_key()
    try:
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return key_file.read_bytes().strip()
    with os.fdopen(descriptor, 'wb') as handle:
        handle.write(fresh)
    return fresh


class SecretBox:
    def __init__(self, key: bytes):
        try:
            self._fernet = Fernet(key)
            self._key = key
        except ValueError as exc:
            raise SecretsError('DBFLEET_SECRET_KEY is not a valid key (32 url-safe base64-encoded bytes): %s'
                               % exc) from None

    def seal(self, secret: dict) -> str | None:
        return self._fernet.encrypt(json.dumps(secret).encode()).decode() if secret else None

    def digest(self, data: bytes) -> str:
        """A keyed hash (HMAC-SHA256 with the service key, hex): tells two secrets apart without letting
        whoever reads it test guesses, as a plain hash of a password would."""
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def open(self, sealed: str | None) -> dict:
        if not sealed:
            return {}
        try:
            return json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretsError('the secret extra vars of this job cannot be decrypted: this process has a '
                               'different secret key (DBFLEET_SECRET_KEY or var/secret.key) than the one '
                               'that accepted the job') from None
