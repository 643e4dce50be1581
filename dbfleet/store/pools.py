"""Pools (named concurrency limits across every job) and the leases that take their slots.

A lease is taken in one transaction that locks the pool's row, drops leases nobody renewed for
`ttl` seconds (their holder died), counts the rest and inserts when a slot is free; so however
many workers on however many machines ask at once, a pool of 5 never has 6 holders. Holders
renew their leases while they run and release them when done.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from dbfleet.clock import utc, utcnow
from dbfleet.store.errors import StoreError
from dbfleet.store.models import Pool, PoolLease
from dbfleet.store.transactions import Transactions

POOL_NAME = re.compile(r'^[a-z0-9][a-z0-9_-]{0,63}$')
LEASE_TTL_SECONDS = 60.0


class UnknownPool(StoreError, LookupError):
    def __init__(self, name: str):
        super().__init__('no pool %r: create it first (POST /api/v1/pools or `dbfleet pools set`)' % name)
        self.name = name


class Pools:
    """store.pools: pools and the leases on their slots."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def set(self, name: str, slots: int, description: str | None = None) -> dict:
        """Create the pool or change its size (running holders keep their slots; new ones wait)."""
        if not isinstance(name, str) or not POOL_NAME.match(name):
            raise ValueError('pool name %r: lower-case letters, digits, - and _, at most 64' % (name,))
        if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= 10000:
            raise ValueError('pool %s: slots must be a whole number from 1 to 10000, got %r' % (name, slots))

        def work(session: Session) -> dict:
            pool = session.get(Pool, name, with_for_update=True)
            if pool is None:
                pool = Pool(name=name, slots=slots, description=description, created_at=utcnow())
                session.add(pool)
            else:
                pool.slots = slots
                if description is not None:
                    pool.description = description
            session.flush()
            return _pool(session, pool)

        return self._transactions.run(work, write=True)

    def get(self, name: str) -> dict:
        def work(session: Session) -> dict:
            pool = session.get(Pool, name) if isinstance(name, str) else None
            if pool is None:
                raise UnknownPool(str(name))
            return _pool(session, pool)

        return self._transactions.run(work)

    def list(self) -> list[dict]:
        return self._transactions.run(lambda session: [_pool(session, pool) for pool in
                                          session.scalars(select(Pool).order_by(Pool.name))])

    def delete(self, name: str) -> dict:
        def work(session: Session) -> dict:
            pool = session.get(Pool, name, with_for_update=True) if isinstance(name, str) else None
            if pool is None:
                raise UnknownPool(str(name))
            gone = _pool(session, pool)
            session.delete(pool)
            return gone

        return self._transactions.run(work, write=True)

    def acquire_lease(self, pool_name: str, holder: str, ttl: float = LEASE_TTL_SECONDS) -> bool:
        """Take a slot of the pool for `holder`; False when all are taken (ask again later).
        A holder that has a slot already keeps it (True)."""
        def work(session: Session) -> bool:
            pool = session.get(Pool, pool_name, with_for_update=True)
            if pool is None:
                raise UnknownPool(pool_name)
            now = utcnow()
            session.execute(delete(PoolLease).where(PoolLease.pool == pool_name,
                                                    PoolLease.renewed_at < now - dt.timedelta(seconds=ttl)))
            if session.scalar(select(PoolLease.id).where(PoolLease.pool == pool_name,
                                                         PoolLease.holder == holder)) is not None:
                return True
            taken = session.scalar(select(func.count()).select_from(PoolLease).where(PoolLease.pool == pool_name))
            if taken >= pool.slots:
                return False
            session.add(PoolLease(pool=pool_name, holder=holder, acquired_at=now, renewed_at=now))
            session.flush()
            return True

        return self._transactions.run(work, write=True)

    def renew_leases(self, holders: Iterable[str]) -> int:
        holders = list(holders)
        if not holders:
            return 0

        def work(session: Session) -> int:
            result = session.execute(update(PoolLease).where(PoolLease.holder.in_(holders))
                                     .values(renewed_at=utcnow()))
            return result.rowcount

        return self._transactions.run(work, write=True)

    def leases(self) -> list[dict]:
        """Every lease held now (pool, holder, acquired_at, renewed_at), by pool, oldest first."""
        query = select(PoolLease).order_by(PoolLease.pool, PoolLease.acquired_at, PoolLease.id)
        return self._transactions.run(lambda session: [
            {'pool': lease.pool, 'holder': lease.holder, 'acquired_at': utc(lease.acquired_at),
             'renewed_at': utc(lease.renewed_at)} for lease in session.scalars(query)])

    def release_lease(self, pool_name: str, holder: str) -> None:
        self._transactions.run(lambda session: session.execute(delete(PoolLease).where(PoolLease.pool == pool_name,
                                                                          PoolLease.holder == holder)), write=True)


def _pool(session: Session, pool: Pool) -> dict:
    holders = list(session.scalars(select(PoolLease.holder).where(PoolLease.pool == pool.name)
                                   .order_by(PoolLease.acquired_at)))
    return dict(name=pool.name, slots=pool.slots, description=pool.description, created_at=pool.created_at,
                in_use=len(holders), holders=holders)
