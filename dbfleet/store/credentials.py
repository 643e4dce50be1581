"""Credentials in the store (`store.credentials`): a name, a kind, what may be shown, and the
secret sealed by the service (runner_service.credentials seals and checks; the store never
sees a secret in the clear). Credentials come out as plain dicts {id, name, kind, public,
fingerprint, sealed, created_at, created_by}; bad input is a ValueError, an unknown name
UnknownCredential.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbfleet.clock import utcnow
from dbfleet.store.errors import StoreError
from dbfleet.store.models import CREDENTIAL_KINDS, NAME_LENGTH, Credential
from dbfleet.store.transactions import Transactions
from dbfleet.store.checks import check_text

_COLUMNS = tuple(column.key for column in Credential.__table__.columns)


class UnknownCredential(StoreError, LookupError):
    def __init__(self, name: str):
        super().__init__('no credential %r in the store: `dbfleet credentials list` shows them' % (str(name)[:200],))
        self.name = name


class Credentials:
    """store.credentials: sealed secrets by name."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def create(self, name: str, kind: str, public: dict, fingerprint: str, sealed: str,
               created_by: str | None = None) -> dict:
        """ValueError when the name is taken (also when processes race to create it)."""
        check_text(name, 'credential name', NAME_LENGTH)
        if kind not in CREDENTIAL_KINDS:
            raise ValueError('credential kind must be one of %s, got %r' % (', '.join(CREDENTIAL_KINDS), kind))
        if not isinstance(public, dict):
            raise ValueError('credential public fields must be a mapping, got %s' % type(public).__name__)
        check_text(fingerprint, 'credential fingerprint', 128)
        check_text(sealed, 'credential sealed secret')

        def work(session: Session) -> dict:
            if session.scalar(select(Credential.id).where(Credential.name == name)) is not None:
                raise _taken(name)
            credential = Credential(name=name, kind=kind, public=public, fingerprint=fingerprint, sealed=sealed,
                                    created_at=utcnow(), created_by=created_by)
            session.add(credential)
            try:
                session.flush()
            except IntegrityError:
                raise _taken(name) from None
            return _dict(credential)

        return self._transactions.run(work, write=True)

    def get(self, name: str) -> dict:
        return self._transactions.run(lambda session: _dict(_find(session, name)))

    def list(self) -> list[dict]:
        query = select(Credential).order_by(Credential.name)
        return self._transactions.run(lambda session: [_dict(credential) for credential in session.scalars(query)])

    def delete(self, name: str) -> dict:
        def work(session: Session) -> dict:
            credential = _find(session, name, lock=True)
            gone = _dict(credential)
            session.delete(credential)
            return gone

        return self._transactions.run(work, write=True)


def _taken(name: str) -> ValueError:
    return ValueError('a credential named %s already exists: pick another name, or delete that one first' % name)


def _find(session: Session, name: str, lock: bool = False) -> Credential:
    if not isinstance(name, str) or not name:
        raise UnknownCredential(str(name))
    query = select(Credential).where(Credential.name == name)
    if lock:
        query = query.with_for_update()
    credential = session.scalar(query)
    if credential is None:
        raise UnknownCredential(name)
    return credential


def _dict(credential: Credential) -> dict:
    return {name: getattr(credential, name) for name in _COLUMNS}
