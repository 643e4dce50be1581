"""A host's row as the hosts, facts and tags parts find it inside their transactions.

Every write to a host's facts or tags locks the host's row first: that row lock is what
serialises concurrent writers of one host (forked Ansible workers) on MySQL/MariaDB.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbfleet.store.errors import UnknownHost
from dbfleet.store.models import NAME_LENGTH, Host


def check_name(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value or len(value) > NAME_LENGTH:
        raise ValueError('%s must be a non-empty string of at most %d characters, got %r'
                         % (what if what == 'who' else what + ' name', NAME_LENGTH, value))


def find_host(session: Session, name: str, lock: bool = False) -> Host | None:
    query = select(Host).where(Host.name == name)
    return session.scalar(query.with_for_update() if lock else query)


def require_host(session: Session, name: str, lock: bool = False) -> Host:
    host = find_host(session, name, lock)
    if host is None:
        raise UnknownHost(name)
    return host


def host_for_write(session: Session, name: str, now: dt.datetime) -> Host:
    """The host's row, locked, created first if missing."""
    host = find_host(session, name, lock=True)
    if host is None:
        host = Host(name=name, attributes={}, created_at=now, updated_at=now)
        session.add(host)
        session.flush()
    return host
