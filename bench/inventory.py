#!/usr/bin/env python3
"""Inventory: `ansible-inventory --list` through the dbfleet.mysql.fleet plugin against the same
hosts, groups and host variables written as a static YAML inventory, in the same run.

10,000 hosts x 8 tags by default. Goal: plugin / static <= 1.0 (stretch <= 0.2). The store is a
SQLite file under var/bench/; its rows are written in bulk (the setup is not what is measured).

    .venv/bin/python bench/inventory.py [--hosts 10000] [--tags-per-host 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.report import record  # noqa: E402

WORK = REPO / 'var' / 'bench'
TAG_POOL = ['primary', 'replica', 'standalone', 'large', 'small', 'lagging', 'read_only', 'high_risk', 'critical',
            'backup_heavy', 'out_of_warranty', 'payments', 'maintenance', 'owner_team_a', 'owner_team_b', 'dc_east']


def build_store(url: str, hosts: int, tags_per_host: int) -> list[dict]:
    """Write hosts, tags and host tags in bulk; return the same data as the plugin will present it."""
    from sqlalchemy import insert

    from dbfleet.store import open_store
    from dbfleet.store.models import Host, HostTag, Tag

    store = open_store(url)
    store.close()
    from sqlalchemy import create_engine
    engine = create_engine(url)
    now = dt.datetime.now(dt.timezone.utc)
    generator = random.Random(42)
    records = []
    with engine.begin() as connection:
        connection.execute(insert(Tag), [dict(id=index + 1, name=name, dimension='bench', description=None,
                                              kind='rule', created_at=now) for index, name in enumerate(TAG_POOL)])
        host_rows, tag_rows = [], []
        for number in range(1, hosts + 1):
            name = 'db%05d' % number
            tags = sorted(generator.sample(TAG_POOL, tags_per_host))
            summary = {'server.flavour': 'mariadb', 'server.version.full': '10.11.%d-MariaDB' % (number % 20),
                       'replication.role': 'replica' if 'replica' in tags else 'primary',
                       'replication.lag_seconds': number % 7, 'schemas.totals.total_bytes': number * 1048576,
                       'server.uptime_seconds': number * 3600}
            attributes = {'owner': 'team-%d' % (number % 12), 'rack': 'r%02d' % (number % 40)}
            host_rows.append(dict(id=number, name=name, address='10.%d.%d.%d' % (number // 65536, number // 256 % 256,
                                                                                 number % 256),
                                  port=3306, attributes=attributes, facts_at=now, facts_summary=summary,
                                  created_at=now, updated_at=now))
            for tag in tags:
                tag_rows.append(dict(host_id=number, tag_id=TAG_POOL.index(tag) + 1, source='rule', since=now,
                                     expires_at=None, evidence={'bench': True}, set_by='bench'))
            records.append(dict(name=name, tags=tags, attributes=attributes, facts=summary,
                                address=host_rows[-1]['address'], port=3306))
        connection.execute(insert(Host), host_rows)
        connection.execute(insert(HostTag), tag_rows)
    engine.dispose()
    return records


def write_static(path: Path, records: list[dict]) -> None:
    """The same hosts, groups and host variables as a static YAML inventory."""
    groups: dict[str, dict] = {'mysql': {'hosts': {}}}
    for record in records:
        groups['mysql']['hosts'][record['name']] = dict(
            dbfleet_tags=record['tags'], dbfleet_attributes=record['attributes'], dbfleet_facts=record['facts'],
            dbfleet_address=record['address'], dbfleet_port=record['port'], login_host=record['address'],
            login_port=record['port'])
        for tag in record['tags']:
            groups.setdefault('tag_' + tag, {'hosts': {}})['hosts'][record['name']] = None
    path.write_text(yaml.safe_dump({'all': {'children': groups}}, sort_keys=False))


def timed_list(inventory: Path, env: dict) -> float:
    started = time.perf_counter()
    completed = subprocess.run([str(REPO / '.venv' / 'bin' / 'ansible-inventory'), '-i', str(inventory), '--list'],
                               env=env, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit('bench: ansible-inventory -i %s failed:\n%s' % (inventory, completed.stderr[-3000:]))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--hosts', type=int, default=10000)
    parser.add_argument('--tags-per-host', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=3)
    options = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    database = WORK / 'inventory.db'
    for suffix in ('', '-wal', '-shm'):
        Path(str(database) + suffix).unlink(missing_ok=True)
    url = 'sqlite:///%s' % database
    print('building the store: %d hosts x %d tags' % (options.hosts, options.tags_per_host), flush=True)
    records = build_store(url, options.hosts, options.tags_per_host)
    static = WORK / 'static_inventory.yml'
    write_static(static, records)
    plugin = WORK / 'bench.fleet.yml'
    plugin.write_text('plugin: dbfleet.mysql.fleet\n')

    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), DBFLEET_STORE_URL=url,
               ANSIBLE_INVENTORY_ENABLED='dbfleet.mysql.fleet,yaml')
    walls = {'plugin': [], 'static': []}
    for round_number in range(options.rounds):
        walls['plugin'].append(timed_list(plugin, env))
        walls['static'].append(timed_list(static, env))
        print('  round %d/%d: plugin %.2f s, static %.2f s' % (round_number + 1, options.rounds,
                                                                walls['plugin'][-1], walls['static'][-1]), flush=True)
    plugin_wall, static_wall = statistics.median(walls['plugin']), statistics.median(walls['static'])
    lines = ['`ansible-inventory --list`, %d hosts x %d tags (%d tag groups), median of %d runs each, interleaved.'
             % (options.hosts, options.tags_per_host, len(TAG_POOL), options.rounds), '',
             '| inventory | wall |', '|---|---|',
             '| `dbfleet.mysql.fleet` plugin (SQLite store) | %.2f s |' % plugin_wall,
             '| static YAML, same hosts, groups and host variables | %.2f s |' % static_wall, '',
             'Ratio plugin / static: **%.2f** (goal <= 1.0, stretch <= 0.2).' % (plugin_wall / static_wall)]
    record('inventory', 'Inventory (bench/inventory.py)', ' '.join(['.venv/bin/python', 'bench/inventory.py']
                                                                  + sys.argv[1:]), lines)
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
