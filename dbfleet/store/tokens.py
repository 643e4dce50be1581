"""The API's bearer tokens. Only a token's SHA-256 is stored (runner_service.tokens makes the
token, shows it once and hashes it); no method here ever returns the hash.

`store.tokens` (Tokens) has the Store's habits: every public method is one short
transaction, returns plain dicts {id, name, role, created_at, created_by,
revoked_at, last_used_at, host, expires_at}, datetimes are aware UTC, and bad input is a ValueError.
An agent token names its host (and only an agent token does); any token may have an expiry,
which runner_service.tokens enforces (the store keeps returning an expired token, so a caller
can be told why it is refused).

A token's name is its handle for people (`dbfleet tokens revoke NAME`), so it is never
reused, not even once the token is revoked: a name in the audit log always means one token.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.errors import UnknownToken
from dbfleet.store.models import NAME_LENGTH, TOKEN_ROLES, ApiToken
from dbfleet.store.transactions import Transactions

# token_by_hash records a token's use at most this often, so serving a request is a read,
# not a write (on SQLite every write takes the database's one write lock).
LAST_USED_EVERY = dt.timedelta(seconds=60)
_HASH = re.compile(r'[0-9a-f]{64}')


class Tokens:
    """store.tokens: create, find by hash, list and revoke API tokens."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def create(self, name: str, role: str, token_hash: str, created_by: str | None = None,
               templates: list[str] | None = None, host: str | None = None,
               expires_at: dt.datetime | None = None) -> dict:
        """Record a new token by the SHA-256 (64 lowercase hex characters) of its text; an agent
        token with its `host` (required for agents, refused for other roles), any token with an
        optional expiry (aware; it may be past: the caller decides what it accepts).
        templates: the only job templates it may launch (None: any its role allows).
        ValueError when the name is taken, also by a revoked token, and when processes race
        to create the same name."""
        _check_token_name(name)
        templates = _check_templates(name, role, templates)
        if role not in TOKEN_ROLES:
            raise ValueError('token %s: role must be one of %s, got %r' % (name, ', '.join(TOKEN_ROLES), role))
        _check_host(name, role, host)
        if expires_at is not None and (not isinstance(expires_at, dt.datetime) or expires_at.tzinfo is None):
            raise ValueError('token %s: expires_at must be a timezone-aware datetime, got %r' % (name, expires_at))
        _check_hash(token_hash)
        if created_by is not None and (not isinstance(created_by, str) or not created_by
                                       or len(created_by) > NAME_LENGTH):
            raise ValueError('token %s: created_by must be a non-empty string of at most %d characters, got %r'
                             % (name, NAME_LENGTH, created_by))

        def work(session: Session) -> dict:
            if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
                raise _name_taken(name)
            if session.scalar(select(ApiToken.id).where(ApiToken.token_hash == token_hash)) is not None:
                raise _hash_taken(name)
            token = ApiToken(name=name, role=role, token_hash=token_hash, created_at=utcnow(), created_by=created_by,
                             templates=templates, host=host, expires_at=utc(expires_at))
            session.add(token)
            try:
                session.flush()
            except IntegrityError as error:
                # Another process created the name (or registered the hash) after the checks above.
                raise (_hash_taken(name) if 'token_hash' in str(error.orig) else _name_taken(name)) from None
            return _token_dict(token)

        return self._transactions.run(work, write=True)

    def by_hash(self, token_hash: str, now: dt.datetime | None = None) -> dict | None:
        """The token (not revoked) with this hash, or None; an expired one too (its expires_at
        says so, and its use is not recorded). Its last_used_at becomes `now` (default: the
        current time) when it is older than LAST_USED_EVERY: most calls are a single read, and
        a write happens at most once a minute per token."""
        _check_hash(token_hash)
        now = utc(now) or utcnow()

        def find(session: Session) -> dict | None:
            token = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash,
                                                          ApiToken.revoked_at.is_(None)))
            return _token_dict(token) if token is not None else None

        found = self._transactions.run(find)
        if found is None or not _use_is_due(found['last_used_at'], now) or \
                (found['expires_at'] is not None and found['expires_at'] <= now):
            return found

        def touch(session: Session) -> dict | None:
            # Read again under the row lock: the token may have been revoked, or another
            # request may have recorded its use, since it was found.
            token = session.scalar(select(ApiToken).where(ApiToken.id == found['id']).with_for_update())
            if token is None or token.revoked_at is not None:
                return None
            if _use_is_due(token.last_used_at, now):
                token.last_used_at = now
            return _token_dict(token)

        return self._transactions.run(touch, write=True)

    def list(self, include_revoked: bool = False) -> list[dict]:
        """Tokens by name; revoked ones only with include_revoked."""
        query = select(ApiToken).order_by(ApiToken.name)
        if not include_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        return self._transactions.run(lambda session: [_token_dict(token) for token in session.scalars(query)])

    def revoke(self, name: str) -> dict:
        """Revoke a token for good; revoking it again keeps the first revoked_at. UnknownToken
        when no token ever had this name."""
        _check_token_name(name)

        def work(session: Session) -> dict:
            token = session.scalar(select(ApiToken).where(ApiToken.name == name).with_for_update())
            if token is None:
                raise UnknownToken(name)
            if token.revoked_at is None:
                token.revoked_at = utcnow()
            return _token_dict(token)

        return self._transactions.run(work, write=True)


def _check_token_name(name: Any) -> None:
    if not isinstance(name, str) or not name or len(name) > NAME_LENGTH:
        raise ValueError('token name must be a non-empty string of at most %d characters, got %r'
                         % (NAME_LENGTH, name))
    # isprintable() is False for control and invisible format characters and for every
    # space but ' ', which the second test catches.
    if not name.isprintable() or any(character.isspace() for character in name):
        raise ValueError('token name must not contain whitespace or control characters, got %r' % (name,))


def _check_templates(name: str, role: str, templates: Any) -> list[str] | None:
    if templates is None:
        return None
    if role != 'operator':
        raise ValueError('token %s: templates limit an operator token (role %s launches no template, or any)'
                         % (name, role))
    if not isinstance(templates, (list, tuple)) or not templates or not all(
            isinstance(item, str) and 0 < len(item) <= NAME_LENGTH for item in templates):
        raise ValueError('token %s: templates must be a non-empty list of template names' % name)
    return sorted(set(templates))


def _check_host(name: str, role: str, host: Any) -> None:
    if role == 'agent':
        if not isinstance(host, str) or not host or len(host) > NAME_LENGTH or not host.isprintable() \
                or any(character.isspace() for character in host):
            raise ValueError('token %s: an agent token needs its host (a host name of at most %d characters, '
                             'no whitespace), got %r' % (name, NAME_LENGTH, host if not isinstance(host, str)
                                                         else host[:100]))
    elif host is not None:
        raise ValueError('token %s: only an agent token names a host (role %s does not)' % (name, role))


def _check_hash(token_hash: Any) -> None:
    if not isinstance(token_hash, str) or not _HASH.fullmatch(token_hash):
        # The value is not echoed: a caller that passed the token itself by mistake must not log it.
        raise ValueError('token_hash must be the SHA-256 hex digest of the token (64 lowercase hex characters, '
                         'see runner_service.tokens.hash_token), got a %s' % _shape(token_hash))


def _shape(value: Any) -> str:
    return 'string of %d characters' % len(value) if isinstance(value, str) else type(value).__name__


def _name_taken(name: str) -> ValueError:
    return ValueError("a token named %s already exists: pick another name, or revoke it ('dbfleet tokens revoke %s') "
                      'and create its replacement under a new name (names are never reused)' % (name, name))


def _hash_taken(name: str) -> ValueError:
    return ValueError('token %s: another token already has this hash; make a new token instead of reusing one'
                      % name)


def _use_is_due(last_used_at: dt.datetime | None, now: dt.datetime) -> bool:
    return last_used_at is None or now - last_used_at >= LAST_USED_EVERY


def _token_dict(token: ApiToken) -> dict:
    return dict(id=token.id, name=token.name, role=token.role, created_at=token.created_at,
                created_by=token.created_by, revoked_at=token.revoked_at, last_used_at=token.last_used_at,
                templates=token.templates, host=token.host, expires_at=token.expires_at)
