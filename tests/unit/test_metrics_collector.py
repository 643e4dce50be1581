"""The /metrics collector in process: its clock passed in, and a source it cannot reach (a
store on a closed port, Redis on a closed port) leaves that source's figures out and says so,
without failing the scrape."""

from __future__ import annotations

import datetime as dt

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dbfleet.settings import Settings
from dbfleet.store import open_store
from runner_service.metrics.collector import fleet_registry
from runner_service.runtime import Runtime

CLOSED = '127.0.0.1:9'  # discard: nothing listens there


def samples(runtime: Runtime, now: dt.datetime | None = None) -> dict:
    registry = fleet_registry(runtime, now=lambda: now or dt.datetime.now(dt.timezone.utc))
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_unreachable_sources_are_said_and_left_out(tmp_path):
    settings = Settings(var_dir=tmp_path, store_url='mysql+pymysql://root@%s/dbfleet' % CLOSED,
                        redis_url='redis://%s/0' % CLOSED)
    found = samples(Runtime(settings=settings))
    assert found[('dbfleet_up', (('component', 'store'),))] == 0
    assert found[('dbfleet_up', (('component', 'redis'),))] == 0
    assert {name for name, _ in found} == {'dbfleet_up', 'dbfleet_metrics_scrape_duration_seconds'}


def test_the_clock_decides_which_leases_still_hold(tmp_path):
    url = 'sqlite:///%s' % (tmp_path / 'store.db')
    with open_store(url) as store:
        store.pools.set('backups', 2)
        store.pools.acquire_lease('backups', 'job:db1')
        runtime = Runtime(settings=Settings(var_dir=tmp_path, store_url=url, redis_url='redis://%s/0' % CLOSED),
                          store_override=store)
        now = dt.datetime.now(dt.timezone.utc)
        assert samples(runtime, now)[('dbfleet_pool_slots_in_use', (('pool', 'backups'),))] == 1
        later = samples(runtime, now + dt.timedelta(minutes=5))
        assert later[('dbfleet_pool_slots_in_use', (('pool', 'backups'),))] == 0
        assert later[('dbfleet_up', (('component', 'store'),))] == 1
