"""What a host's profile and the backup catalog read from the store, on SQLite and on MariaDB:
the catalog's filters and cursor, and the jobs and planned runs of one host."""

from __future__ import annotations

import datetime as dt

import pytest

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 1, 1, 0, tzinfo=UTC)


def attempt(store, host, minutes, method='logical', status='ok'):
    return store.backups.record(host, method=method, status=status, started_at=T0 + dt.timedelta(minutes=minutes))


def test_the_catalog_filters_and_pages_newest_first(store):
    ids = [attempt(store, 'db1', minute)['id'] for minute in range(5)]
    same_start = [attempt(store, 'db2', 2, method='physical')['id'], attempt(store, 'db2', 2, status='failed')['id']]
    pages, cursor = [], None
    while True:
        page = store.backups.catalog(limit=2, cursor=cursor)
        pages.append([row['id'] for row in page['backups']])
        cursor = page['next_cursor']
        if cursor is None:
            break
    seen = [row_id for page in pages for row_id in page]
    assert len(seen) == len(set(seen)) == 7 and all(len(page) <= 2 for page in pages)
    # minute 4, minute 3, then the three at minute 2, newest id first
    assert seen == [ids[4], ids[3], same_start[1], same_start[0], ids[2], ids[1], ids[0]]
    assert [row['id'] for row in store.backups.catalog(host='db1')['backups']] == ids[::-1]
    assert [row['id'] for row in store.backups.catalog(method='physical')['backups']] == same_start[:1]
    assert [row['id'] for row in store.backups.catalog(status='failed')['backups']] == same_start[1:]
    window = store.backups.catalog(host='db1', since=T0 + dt.timedelta(minutes=1),
                                   until=T0 + dt.timedelta(minutes=3))['backups']
    assert [row['id'] for row in window] == [ids[2], ids[1]]


@pytest.mark.parametrize('filters', [{'method': 'tape'}, {'status': 'maybe'}, {'limit': 0}, {'cursor': 'x'},
                                     {'cursor': '1.abc'}, {'cursor': '99999999999999999999.1'}, {'host': ''},
                                     {'since': 'yesterday'}])
def test_the_catalog_refuses_bad_filters(store, filters):
    with pytest.raises(ValueError):
        store.backups.catalog(**filters)


def test_the_jobs_and_runs_of_one_host(store):
    store.hosts.upsert('db1')
    first, _ = store.jobs.create({'playbook': 'playbooks/inspect.yml', 'inventory': 'inventories/a.yml'})
    second, _ = store.jobs.create({'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/a.yml',
                                   'template': 'nightly'})
    other, _ = store.jobs.create({'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/a.yml'})
    store.jobs.set_host_results(first['id'], {'db1': {'ok': 3}, 'db2': {'ok': 1}})
    store.jobs.set_host_runs(second['id'], [{'host': 'db1', 'lane': 1, 'status': 'running', 'started_at': T0,
                                             'worker': 'w1/7'}])
    store.jobs.set_host_results(other['id'], {'db2': {'failed': 1}})
    jobs = store.jobs.of_host('db1')
    assert [job['id'] for job in jobs] == [second['id'], first['id']]
    assert jobs[0]['template'] == 'nightly' and jobs[0]['counts'] is None
    assert jobs[1]['counts']['ok'] == 3 and jobs[1]['status'] == 'queued'
    [run] = store.jobs.runs_of_host('db1')
    assert run['job_id'] == second['id'] and run['lane'] == 1 and run['worker'] == 'w1/7'
    assert run['started_at'] == T0
    assert store.jobs.of_host('db1', limit=1)[0]['id'] == second['id']
    assert store.jobs.of_host('nobody') == [] and store.jobs.runs_of_host('nobody') == []
