"""API bearer tokens, for the API and the CLI alike: make one, check one, and what a role may do.

A token is 'dbf_' and 32 random bytes (URL-safe base64). It is shown once, when it is
issued; the store keeps only its SHA-256, so a copy of the store lets nobody call the API.

    token, record = issue(store, 'ci-bot', 'operator', created_by='cli:alice')
    record = authenticate(store, token)          # None unless live
    allows(record['role'], 'viewer')             # True
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from runner_service.store.models import TOKEN_ROLES

ROLES = TOKEN_ROLES  # viewer < operator < admin: each may do what the ones before it may
PREFIX = 'dbf_'
_RANK = {role: rank for rank, role in enumerate(ROLES)}
# What a token can look like: the prefix, then URL-safe base64. Anything else is refused
# without a look-up (new_token makes 43 characters; the bound only keeps out junk).
_TOKEN = re.compile(re.escape(PREFIX) + r'[A-Za-z0-9_-]{16,256}')


def new_token() -> str:
    """A new random token (256 bits of entropy)."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(text: str) -> str:
    """The SHA-256 hex digest the store keeps for a token.

    A fast hash is the right one here, unlike for passwords: a token is 256 random bits, so
    there is nothing to guess from its hash however fast the guesses, and a slow password
    hash (bcrypt, argon2) would only add its cost to every API request.
    """
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def issue(store, name: str, role: str, created_by: str | None = None,
          templates: list[str] | None = None) -> tuple[str, dict]:
    """Create a token: (its text, to be shown once and never again; its record, without the hash).
    templates: the only job templates it may launch (None: any its role allows).
    ValueError for a bad or taken name or an unknown role."""
    token = new_token()
    return token, store.create_token(name, role, hash_token(token), created_by=created_by, templates=templates)


def authenticate(store, text: Any) -> dict | None:
    """The record of the live token `text` is (its last use recorded), or None: empty,
    malformed, unknown and revoked tokens alike. Never raises for bad input (a store that
    cannot be reached still raises StoreUnavailable)."""
    if not isinstance(text, str) or not _TOKEN.fullmatch(text):
        return None
    return store.token_by_hash(hash_token(text))


def allows(role: Any, needed: str) -> bool:
    """Whether a token with `role` may do what needs `needed` (viewer < operator < admin).
    An unknown role is allowed nothing; an unknown `needed` is a bug in the caller (ValueError)."""
    if not isinstance(needed, str) or needed not in _RANK:
        raise ValueError('unknown role %r needed: use one of %s' % (needed, ', '.join(ROLES)))
    return isinstance(role, str) and role in _RANK and _RANK[role] >= _RANK[needed]
