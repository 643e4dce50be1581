"""Pools and leases on both store backends: never more holders than slots, even in a race."""

from __future__ import annotations

import threading
import time

import pytest

from dbfleet.store import UnknownPool, open_store


def test_set_list_resize_delete(store):
    pool = store.set_pool('backup', 5, 'nightly dumps')
    assert pool == dict(pool, name='backup', slots=5, description='nightly dumps', in_use=0, holders=[])
    assert store.set_pool('backup', 3)['slots'] == 3
    assert store.get_pool('backup')['description'] == 'nightly dumps'
    assert [item['name'] for item in store.list_pools()] == ['backup']
    store.delete_pool('backup')
    with pytest.raises(UnknownPool, match="no pool 'backup'"):
        store.get_pool('backup')
    with pytest.raises(ValueError, match='slots must be a whole number'):
        store.set_pool('backup', 0)
    with pytest.raises(ValueError, match='lower-case letters'):
        store.set_pool('Bad Name', 1)


def test_leases_fill_the_slots_and_free_them(store):
    store.set_pool('backup', 2)
    assert store.acquire_lease('backup', 'job1:a') and store.acquire_lease('backup', 'job1:b')
    assert store.acquire_lease('backup', 'job2:c') is False
    assert store.acquire_lease('backup', 'job1:a') is True  # already held
    assert store.get_pool('backup')['holders'] == ['job1:a', 'job1:b']
    store.release_lease('backup', 'job1:a')
    assert store.acquire_lease('backup', 'job2:c')
    with pytest.raises(UnknownPool):
        store.acquire_lease('nothing', 'x')


def test_a_lease_nobody_renews_expires(store):
    store.set_pool('backup', 1)
    assert store.acquire_lease('backup', 'dead:holder', ttl=0.5)
    time.sleep(1)
    assert store.renew_leases(['other']) == 0
    assert store.acquire_lease('backup', 'live:holder', ttl=0.5)
    assert store.get_pool('backup')['holders'] == ['live:holder']
    assert store.renew_leases(['live:holder']) == 1


def test_racing_holders_never_exceed_the_slots(store_url):
    with open_store(store_url) as store:
        store.set_pool('backup', 3)
    got, barrier = [], threading.Barrier(8)

    def take(index):
        with open_store(store_url) as mine:
            barrier.wait()
            if mine.acquire_lease('backup', 'job:%d' % index):
                got.append(index)

    threads = [threading.Thread(target=take, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 3
    with open_store(store_url) as store:
        assert store.get_pool('backup')['in_use'] == 3
