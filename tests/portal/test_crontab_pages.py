"""The Crontab page in a real browser: bridged entries with their mode and their missed and
failed runs; an operator takes an entry over; a viewer sees no mode buttons and is refused."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from playwright.sync_api import expect

from dbfleet.clock import utcnow
from dbfleet.store import open_store

pytestmark = pytest.mark.service
CRONTAB = 'MAILTO=dba@example.com\n15 3 * * * /usr/local/bin/nightly-dump.sh\n*/5 * * * * /usr/local/bin/check-lag.sh\n'


@pytest.fixture(scope='module')
def entries(service):
    with service.client('admin') as admin:
        imported = admin.post('/api/v1/cron/import', json={
            'host': 'db1', 'file': {'kind': 'user', 'name': 'root', 'system': False}, 'text': CRONTAB})
        assert imported.status_code == 201, imported.text
        dump, lag = (item['entry'] for item in imported.json()['entries'])
        # Yesterday's 03:15 ran and failed (exit 3), as the wrapper reports it.
        slot = (utcnow() - dt.timedelta(days=1)).replace(hour=3, minute=15, second=0, microsecond=0)
        run = {'id': uuid.uuid4().hex, 'schedule_id': dump['schedule_id'], 'host': 'db1',
               'started_at': slot.isoformat()}
        for report in ({**run, 'phase': 'start'},
                       {**run, 'phase': 'end', 'finished_at': (slot + dt.timedelta(seconds=42)).isoformat(),
                        'exit_code': 3, 'duration_seconds': 42.0, 'output_tail': 'mysqldump: Got error 2013\n'}):
            answer = admin.post('/api/v1/cron/runs', json=report)
            assert answer.status_code == 200, answer.text
    store = open_store(service.store_url, migrate=False)
    try:
        # Without a scheduler in this service, the slots are recorded here as it would: the one
        # crontab ran (observed), and the day before one with no report by the slot plus its grace.
        store.schedules.record_slot(dump['schedule_id'], slot, 'fired', 'crontab', reason='crontab ran it')
        store.schedules.record_slot(dump['schedule_id'], slot - dt.timedelta(days=1), 'missed', None,
                                    reason='no report from crontab within 60 s of the slot')
    finally:
        store.close()
    return dump, lag


def test_a_missed_and_a_failed_crontab_run_show_and_an_operator_takes_the_entry_over(entries, portal):
    dump, _ = entries
    portal.login('operator')
    page = portal.goto('/crontab', shot='crontab')
    row = page.locator('tr[data-entry="%s"]' % dump['name'])
    expect(row).to_contain_text('observe')
    expect(row.locator('.bad-count')).to_have_text('1 missed, 1 failed')
    row.locator('a').click()
    expect(page.locator('tr.state-missed')).to_contain_text('no report from crontab')
    expect(page.locator('tr.state-failed')).to_contain_text('Got error 2013')
    portal.shot('crontab-entry')
    page.click('button.mode-takeover')
    expect(page.locator('#entry-mode')).to_have_text('takeover')
    page.click('button.mode-observe')
    expect(page.locator('#entry-mode')).to_have_text('observe')


def test_a_viewer_sees_no_mode_buttons_and_its_forged_change_is_refused(entries, portal):
    _, lag = entries
    portal.login('viewer')
    page = portal.goto('/crontab/%s' % lag['schedule_id'])
    expect(page.locator('#entry-mode')).to_have_text('observe')
    expect(page.locator('form.actions')).to_have_count(0)
    refused = portal.post('/crontab/%s/mode' % lag['schedule_id'], {'mode': 'takeover'})
    assert refused.status_code == 403 and 'has role viewer' in refused.text
    assert portal.get('/crontab', host='db1').status_code == 200
    assert portal.get('/crontab/nosuch').status_code == 404
    assert portal.get('/crontab', host='h' * 256).status_code == 422


def test_a_mode_that_does_not_exist_is_refused(entries, portal):
    _, lag = entries
    portal.login('operator')
    portal.goto('/crontab/%s' % lag['schedule_id'])
    assert portal.post('/crontab/%s/mode' % lag['schedule_id'], {'mode': 'delete'}).status_code == 422
