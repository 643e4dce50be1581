"""A small fleet written into a service's store, as facts, tags, backups and jobs land there when
playbooks run: three hosts with facts and rule tags (with evidence), attributes, backups, and a
finished planned job that ran on one of them."""

from __future__ import annotations

import datetime as dt

from dbfleet.store import open_store

# A fixed past, so nothing here depends on today's date.
T0 = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.timezone.utc)
GB = 1024 ** 3
HOSTS = {
    'db-a': dict(address='10.0.0.1', port=3306, attributes={'owner': 'payments-team', 'rack': 'r1'},
                 facts={'server': {'flavour': 'mariadb', 'version': {'full': '10.11.6-MariaDB'}},
                        'replication': {'role': 'primary'}, 'schemas': {'totals': {'total_bytes': 80 * GB}}},
                 tags={'primary': {'facts.replication.role': 'primary'}, 'large': {'facts.schemas.totals': 80 * GB}}),
    'db-b': dict(address='10.0.0.2', port=3306, attributes={'owner': 'payments-team'},
                 facts={'server': {'flavour': 'mariadb', 'version': {'full': '10.11.6-MariaDB'}},
                        'replication': {'role': 'replica'}, 'schemas': {'totals': {'total_bytes': 80 * GB}}},
                 tags={'replica': {'facts.replication.role': 'replica'}, 'large': {'facts.schemas.totals': 80 * GB}}),
    'db-c': dict(address='10.0.9.3', port=3307, attributes={'owner': 'analytics', 'business': 'Reporting'},
                 facts={'server': {'flavour': 'mariadb', 'version': {'full': '10.6.16-MariaDB'}},
                        'replication': {'role': 'standalone'}, 'schemas': {'totals': {'total_bytes': GB // 2}}},
                 tags={'standalone': {'facts.replication.role': 'standalone'}, 'small': {}}),
}
DIMENSIONS = {'primary': 'role', 'replica': 'role', 'standalone': 'role', 'large': 'size', 'small': 'size'}


def seed_fleet(store_url: str) -> dict:
    """Write the fleet; returns {'job': the planned job's id}."""
    with open_store(store_url) as store:
        store.tags.define([{'name': name, 'dimension': dimension, 'description': '%s (%s)' % (name, dimension)}
                           for name, dimension in DIMENSIONS.items()])
        for name, host in HOSTS.items():
            store.hosts.upsert(name, address=host['address'], port=host['port'], attributes=host['attributes'])
            store.facts.record(name, host['facts'], collected_at=T0)
            store.tags.sync_rules(name, host['tags'], who='fleet_tags')
        for day in range(3):
            for name, method in (('db-a', 'physical'), ('db-b', 'logical'), ('db-c', 'logical')):
                start = T0 + dt.timedelta(days=day, minutes=len(name) + day)
                store.backups.record(name, method=method, started_at=start,
                                     finished_at=start + dt.timedelta(minutes=5 + day), bytes=(day + 1) * GB,
                                     path='/backups/%s/%d' % (name, day))
        store.backups.record('db-c', method='logical', status='failed', started_at=T0 + dt.timedelta(days=3),
                             error='mariadb-dump: Got error: 1045: Access denied')
        job, _ = store.jobs.create({'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/local_fleet.yml',
                                    'plan': {'lanes': 2}}, created_by='admin')
        store.jobs.set_host_results(job['id'], {'db-a': {'ok': 4, 'changed': 1}, 'db-b': {'ok': 4}})
        store.jobs.set_host_runs(job['id'], [
            {'host': 'db-a', 'lane': 0, 'status': 'ok', 'estimate_seconds': 300.0, 'started_at': T0,
             'finished_at': T0 + dt.timedelta(minutes=5), 'worker': 'worker1/100'},
            {'host': 'db-b', 'lane': 1, 'status': 'ok', 'estimate_seconds': 300.0, 'started_at': T0,
             'finished_at': T0 + dt.timedelta(minutes=6), 'worker': 'worker1/100'}])
        store.jobs.transition(job['id'], 'canceled')
    return {'job': job['id']}
