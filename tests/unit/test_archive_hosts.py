"""`dbfleet archive run --tags primary`: which hosts the archive streams, read again from the store - a host
that comes to match (a failover's new primary) gets a stream, one that no longer matches has its stream
stopped. The streams here are stand-ins that only record their life: the selection is what is tested (the
real streams, against the local fleet's primary: tests/service/test_archive_stream.py)."""

from __future__ import annotations

import threading
import time

from dbfleet.store import open_store
from dbfleet.tags import parse_tag_expression
from runner_service.archive.streamer import run_archive
from devtools.service_harness import wait_for


class Recorded:
    """A stream that runs until its own stop is set, and says so."""
    running: dict[str, 'Recorded'] = {}
    ended: list[str] = []

    def __init__(self, target, dest, defaults_file, store, stop, poll_seconds):
        self.target, self.stop = target, stop

    def run(self):
        Recorded.running[self.target.name] = self
        self.stop.wait()
        del Recorded.running[self.target.name]
        Recorded.ended.append(self.target.name)


def test_streams_follow_the_tag_expression_and_named_hosts_stay(tmp_path):
    Recorded.running, Recorded.ended = {}, []
    with open_store('sqlite:///%s' % (tmp_path / 'store.db')) as store:
        for name in ('db1', 'db2', 'db3'):
            store.hosts.upsert(name, address='10.0.0.%s' % name[-1], port=3306)
        store.tags.add('db1', 'primary', who='test')
        stop = threading.Event()
        supervisor = threading.Thread(target=run_archive, daemon=True, kwargs=dict(
            store=store, dest=str(tmp_path), defaults_file='/dev/null', hosts=['db3'], stop=stop,
            tags=parse_tag_expression('primary'), refresh_seconds=0.05, streamer=Recorded))
        supervisor.start()
        try:
            wait_for(lambda: set(Recorded.running) == {'db1', 'db3'}, 'db1 (primary) and db3 (named) streamed')
            assert Recorded.running['db1'].target.address == '10.0.0.1'
            # A failover: db2 is the primary now, db1 is not.
            store.tags.remove('db1', 'primary', who='test')
            store.tags.add('db2', 'primary', who='test')
            wait_for(lambda: set(Recorded.running) == {'db2', 'db3'}, "db2's stream started, db1's stopped")
            assert Recorded.ended == ['db1']
            store.tags.remove('db2', 'primary', who='test')
            store.tags.add('db3', 'primary', who='test')  # named and matching: one stream
            wait_for(lambda: set(Recorded.running) == {'db3'}, 'only db3 left')
            time.sleep(0.2)  # a few more readings start nothing twice
            assert sorted(Recorded.ended) == ['db1', 'db2'] and set(Recorded.running) == {'db3'}
        finally:
            stop.set()
            supervisor.join(timeout=30)
        assert not supervisor.is_alive() and sorted(Recorded.ended) == ['db1', 'db2', 'db3']
