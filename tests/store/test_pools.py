"""Pools and leases on both store backends: never more holders than slots, even in a race."""

from __future__ import annotations

import threading
import time

import pytest

from dbfleet.store import UnknownPool, open_store


def test_set_list_resize_delete(store):
    pool = store.pools.set('backup', 5, 'nightly dumps')
    assert pool == dict(pool, name='backup', slots=5, description='nightly dumps', in_use=0, holders=[])
    assert store.pools.set('backup', 3)['slots'] == 3
    assert store.pools.get('backup')['description'] == 'nightly dumps'
    assert [item['name'] for item in store.pools.list()] == ['backup']
    store.pools.delete('backup')
    with pytest.raises(UnknownPool, match="no pool 'backup'"):
        store.pools.get('backup')
    with pytest.raises(ValueError, match='slots must be a whole number'):
        store.pools.set('backup', 0)
    with pytest.raises(ValueError, match='lower-case letters'):
        store.pools.set('Bad Name', 1)


def test_leases_fill_the_slots_and_free_them(store):
    store.pools.set('backup', 2)
    assert store.pools.acquire_lease('backup', 'job1:a') and store.pools.acquire_lease('backup', 'job1:b')
    assert store.pools.acquire_lease('backup', 'job2:c') is False
    assert store.pools.acquire_lease('backup', 'job1:a') is True  # already held
    assert store.pools.get('backup')['holders'] == ['job1:a', 'job1:b']
    store.pools.release_lease('backup', 'job1:a')
    assert store.pools.acquire_lease('backup', 'job2:c')
    with pytest.raises(UnknownPool):
        store.pools.acquire_lease('nothing', 'x')


def test_a_lease_nobody_renews_expires(store):
    store.pools.set('backup', 1)
    assert store.pools.acquire_lease('backup', 'dead:holder', ttl=0.5)
    time.sleep(1)
    assert store.pools.renew_leases(['other']) == 0
    assert store.pools.acquire_lease('backup', 'live:holder', ttl=0.5)
    assert store.pools.get('backup')['holders'] == ['live:holder']
    assert store.pools.renew_leases(['live:holder']) == 1


def test_racing_holders_never_exceed_the_slots(store_url):
    with open_store(store_url) as store:
        store.pools.set('backup', 3)
    got, barrier = [], threading.Barrier(8)

    def take(index):
        with open_store(store_url) as mine:
            barrier.wait()
            if mine.pools.acquire_lease('backup', 'job:%d' % index):
                got.append(index)

    threads = [threading.Thread(target=take, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 3
    with open_store(store_url) as store:
        assert store.pools.get('backup')['in_use'] == 3
