"""What the portal's Workers and queues page reads from the store: the jobs waiting per queue
with the oldest one's enqueue time, and every pool lease held with its times."""

from __future__ import annotations

SPEC = {'playbook': 'playbooks/inspect.yml', 'inventory': 'inventories/local_fleet.yml'}


def launch(store, **changes) -> dict:
    job, created = store.jobs.create(dict(SPEC, **changes))
    assert created
    return job


def test_waiting_jobs_per_queue_with_the_oldest(store):
    assert store.jobs.waiting_by_queue() == {}
    first = launch(store, queue='backups')
    launch(store, queue='backups')
    launch(store)
    started = launch(store, queue='nightly')
    store.jobs.transition(started['id'], 'running', worker='w1')
    waiting = store.jobs.waiting_by_queue()
    assert set(waiting) == {'backups', 'default'}
    assert waiting['backups']['waiting'] == 2 and waiting['default']['waiting'] == 1
    assert waiting['backups']['oldest'] == store.jobs.get(first['id'])['enqueued_at']
    assert waiting['backups']['oldest'].tzinfo is not None


def test_leases_are_listed_by_pool_oldest_first(store):
    assert store.pools.leases() == []
    store.pools.set('replicas', 2)
    store.pools.set('backups', 1)
    assert store.pools.acquire_lease('replicas', 'job1:db1')
    assert store.pools.acquire_lease('replicas', 'job1:db2')
    assert store.pools.acquire_lease('backups', 'job2:db3')
    leases = store.pools.leases()
    assert [(lease['pool'], lease['holder']) for lease in leases] == [
        ('backups', 'job2:db3'), ('replicas', 'job1:db1'), ('replicas', 'job1:db2')]
    assert all(lease['acquired_at'] <= lease['renewed_at'] and lease['acquired_at'].tzinfo for lease in leases)
    store.pools.release_lease('replicas', 'job1:db1')
    assert [lease['holder'] for lease in store.pools.leases()] == ['job2:db3', 'job1:db2']
