"""API bearer tokens, for the API and the CLI alike: make one, check one, and what a role may do.

A token is 'dbf_' and 32 random bytes (URL-safe base64). It is shown once, when it is
issued; the store keeps only its SHA-256, so a copy of the store lets nobody call the API.

    token, record = issue(store, 'ci-bot', 'operator', created_by='cli:alice')
    record = authenticate(store, token)          # None unless live
    allows(record['role'], 'viewer')             # True

Roles: viewer < operator < admin, each may do what the ones before it may. agent stands apart:
an agent token names one bridged host and may only report that host's cron runs and read its
crontab entries (runner_service.api.deps checks that); it is allowed nothing `allows` grants.
Any token may expire: past its expires_at it is refused as 'expired'.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import Any

from dbfleet.clock import utcnow
from dbfleet.store import UnknownTemplate
from dbfleet.store.models import RANKED_ROLES, TOKEN_ROLES

ROLES = TOKEN_ROLES  # viewer < operator < admin, and agent apart
AGENT = 'agent'
PREFIX = 'dbf_'
_RANK = {role: rank for rank, role in enumerate(RANKED_ROLES)}
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


def issue(store, name: str, role: str, created_by: str | None = None, host: str | None = None,
          expires_at: dt.datetime | None = None, now: dt.datetime | None = None,
          templates: list[str] | None = None) -> tuple[str, dict]:
    """Create a token: (its text, to be shown once and never again; its record, without the hash).
    An agent token needs its host; an expiry must be after `now` (default: the current time);
    templates: the only job templates it may launch (None: any its role allows).
    ValueError for a bad or taken name, an unknown role, a missing or needless host, a past expiry."""
    if expires_at is not None and isinstance(expires_at, dt.datetime) and expires_at.tzinfo is not None \
            and expires_at <= (now or utcnow()):
        raise ValueError('token %s: expires_at %s is already past: give a future time or a duration (90d)'
                         % (name, expires_at.isoformat()))
    token = new_token()
    return token, store.tokens.create(name, role, hash_token(token), created_by=created_by, host=host,
                                      expires_at=expires_at, templates=templates)


def create(store, name: str, role: str, actor: str, host: str | None = None, expires: str | None = None,
           expires_at: dt.datetime | None = None, now: dt.datetime | None = None,
           templates: list[str] | None = None) -> tuple[str, dict]:
    """`issue` for the API and the CLI alike, recorded in the audit log as done by `actor`.
    `expires` is what a user writes (90d, 12h, 2026-12-31); `expires_at` a datetime. ValueError
    as for issue, and for an expiry that cannot be read."""
    if expires is not None:
        expires_at = expiry(expires, now)
    for template in templates or ():
        try:
            store.templates.get(template)
        except UnknownTemplate:
            raise ValueError('token %s: template %s does not exist; create it first (dbfleet templates create) '
                             'or name one of: %s' % (name, str(template)[:200], _template_names(store))) from None
    token, record = issue(store, name, role, created_by=actor, host=host, expires_at=expires_at, now=now,
                          templates=templates)
    details = {'role': record['role'], 'host': record['host'],
               'expires_at': record['expires_at'].isoformat() if record['expires_at'] else None}
    if record['templates'] is not None:
        details['templates'] = record['templates']
    store.audit.record(actor, 'token.create', name, details)
    return token, record


def _template_names(store, most: int = 10) -> str:
    names = [template['name'] for template in store.templates.list()]
    return ', '.join(names[:most]) + (' ...' if len(names) > most else '') if names else 'none yet'


def revoke(store, name: str, actor: str) -> dict:
    """Revoke the token `name` for good, recorded in the audit log. UnknownToken, ValueError."""
    record = store.tokens.revoke(name)
    store.audit.record(actor, 'token.revoke', name)
    return record


def expiry(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """When a token given `--expires TEXT` expires: a duration from now (90d) or a date/datetime."""
    from dbfleet.durations import TimeSpecError, parse_point_in_time
    try:
        return parse_point_in_time(text.strip(), now)
    except TimeSpecError as exc:
        raise ValueError('expires: %s' % str(exc)[:250]) from None
    except OverflowError:
        raise ValueError('expires: %r is too far in the future' % text[:40]) from None


class Refused(Exception):
    """Why a token is refused: `reason` is 'unknown' (also malformed, empty, revoked) or 'expired'."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def verify(store, text: Any, now: dt.datetime | None = None) -> dict:
    """The record of the live token `text` is (its last use recorded); Refused('unknown') for
    empty, malformed, unknown and revoked tokens alike, Refused('expired') once it is past its
    expiry (at `now`, default the current time). Never raises anything else for bad input
    (a store that cannot be reached still raises StoreUnavailable)."""
    if not isinstance(text, str) or not _TOKEN.fullmatch(text):
        raise Refused('unknown', 'the bearer token is unknown or revoked')
    return check_record(store.tokens.by_hash(hash_token(text), now=now), now)


def check_record(record: dict | None, now: dt.datetime | None = None) -> dict:
    """`record` (from Store.token_by_hash) if it is live at `now`; else Refused with why."""
    if record is None:
        raise Refused('unknown', 'the bearer token is unknown or revoked')
    if is_expired(record, now):
        raise Refused('expired', 'the bearer token %s expired at %s: ask an admin for a new one'
                      % (record['name'], record['expires_at'].isoformat()))
    return record


def is_expired(record: dict, now: dt.datetime | None = None) -> bool:
    return record.get('expires_at') is not None and record['expires_at'] <= (now or utcnow())


def authenticate(store, text: Any, now: dt.datetime | None = None) -> dict | None:
    """The record of the live token `text` is (its last use recorded), or None: empty,
    malformed, unknown, revoked and expired tokens alike (`verify` says which)."""
    try:
        return verify(store, text, now)
    except Refused:
        return None


def allows(role: Any, needed: str) -> bool:
    """Whether a token with `role` may do what needs `needed` (viewer < operator < admin).
    An unknown role, and agent, is allowed nothing here; an unknown `needed` is a bug in the
    caller (ValueError)."""
    if not isinstance(needed, str) or needed not in _RANK:
        raise ValueError('unknown role %r needed: use one of %s' % (needed, ', '.join(RANKED_ROLES)))
    return isinstance(role, str) and role in _RANK and _RANK[role] >= _RANK[needed]
