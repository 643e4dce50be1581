"""The crontab overview the portal's Crontab page shows: entries grouped by host, each with its
missed slots and failed runs, and the entries left out past the page's bound."""

from __future__ import annotations

import datetime as dt
import uuid

from runner_service.bridge import overview
from runner_service.bridge.platform import CronBridge
from tests.schedules.helpers import import_text

UTC = dt.timezone.utc
NIGHT = dt.datetime(2027, 2, 1, 2, 0, tzinfo=UTC)


def test_entries_by_host_with_their_missed_and_failed_runs(runtime):
    dump, rotate = (item['schedule'] for item in import_text(
        runtime, '0 2 * * * /usr/local/bin/dump\n15 * * * * /usr/sbin/logrotate\n', host='db1')['entries'])
    import_text(runtime, '30 4 * * 0 /usr/local/bin/check\n', host='db2')
    runtime.store.schedules.record_slot(dump['id'], NIGHT, 'missed', claimed_by=None, reason='no report')
    runtime.store.cron.save_run(uuid.uuid4().hex, schedule_id=dump['id'], host='db1', via='observe', status='failed',
                                slot_at=NIGHT + dt.timedelta(days=1), started_at=NIGHT + dt.timedelta(days=1),
                                exit_code=2)
    bridge = CronBridge(runtime)
    hosts, left_out = overview.by_host(bridge)
    assert [name for name, _ in hosts] == ['db1', 'db2'] and left_out == 0
    entries = {entry['schedule']['id']: entry for entry in hosts[0][1]}
    assert [item['slot_at'] for item in entries[dump['id']]['missed']] == [NIGHT]
    assert [run['exit_code'] for run in entries[dump['id']]['failed']] == [2]
    assert entries[dump['id']]['last_run']['status'] == 'failed' and entries[dump['id']]['mode'] == 'observe'
    assert entries[rotate['id']]['missed'] == [] and entries[rotate['id']]['last_run'] is None
    only_db2, _ = overview.by_host(bridge, host='db2')
    assert [name for name, _ in only_db2] == ['db2']
    bounded, left_out = overview.by_host(bridge, most=2)
    assert [name for name, _ in bounded] == ['db1'] and left_out == 1
