"""The Crontab pages: each host's bridged entries with their mode and missed/failed runs, an
entry's slots and runs, the mode change (operators, with the form's CSRF token), and what the
pages refuse."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from playwright.sync_api import expect

from runner_service.portal.session import csrf_for
from tests.portal.helpers import NIGHT, import_crontab, mark_missed, report_run

pytestmark = pytest.mark.service


@pytest.fixture(scope='module')
def entries(service):
    """db-cron1: a nightly dump (one night ok, one failed, one missed) and an hourly rotate;
    db-cron2: a weekly check. By name."""
    first = import_crontab(service, 'db-cron1', '0 2 * * * /usr/local/bin/nightly-dump\n'
                                                '15 * * * * /usr/sbin/logrotate /etc/logrotate.conf\n')
    second = import_crontab(service, 'db-cron2', '30 4 * * 0 /usr/local/bin/check-tables --all\n')
    dump = first[0]
    report_run(service, dump, NIGHT + dt.timedelta(seconds=3), 0, 'dump: 14 tables\n')
    report_run(service, dump, NIGHT + dt.timedelta(days=1, seconds=3), 2, 'mysqldump: Got error 2013\n')
    mark_missed(service, dump, NIGHT + dt.timedelta(days=2))
    return {entry['name']: entry for entry in first + second}


def test_a_viewer_sees_each_hosts_entries_and_a_missed_run(portal, entries):
    portal.login('viewer')
    page = portal.goto('/crontab')
    hosts = page.locator('section.cron-host')
    expect(hosts).to_have_count(2)
    dump = page.locator('tr.cron-entry').filter(has_text='nightly-dump')
    expect(dump.locator('.mode')).to_have_text('observe')
    expect(dump.locator('td.missed')).to_contain_text('1')
    expect(dump.locator('td.missed')).to_contain_text('2026-03-04 02:00:00')
    expect(dump.locator('td.failed')).to_contain_text('2026-03-03 02:00:03')
    expect(dump).to_have_class(r'cron-entry bad')
    expect(page.locator('tr.cron-entry').filter(has_text='logrotate').locator('td.missed')).to_have_text('0')
    portal.shot('crontab')

    page = portal.goto('/crontab?host=db-cron2')
    expect(page.locator('section.cron-host')).to_have_count(1)
    expect(page.locator('section.cron-host h2')).to_have_text('db-cron2')

    page.goto('/crontab')
    page.locator('tr.cron-entry').filter(has_text='nightly-dump').locator('a').click()
    expect(page.locator('tr.slot-missed')).to_have_count(1)
    expect(page.locator('tr.slot-missed')).to_contain_text('2026-03-04 02:00:00')
    expect(page.locator('tr.run-failed')).to_contain_text('Got error 2013')
    expect(page.locator('form.mode-change')).to_have_count(0)  # a viewer only reads
    portal.shot('crontab-entry')


def test_an_operator_takes_an_entry_over_and_back(portal, entries):
    rotate = next(entry for name, entry in entries.items() if 'logrotate' in entry['original'])
    portal.login('operator')
    page = portal.goto('/crontab/%s' % rotate['schedule_id'])
    page.select_option('form.mode-change select', 'takeover')
    page.click('form.mode-change button')
    expect(page.locator('#mode')).to_have_text('takeover')
    portal.shot('crontab-takeover')
    page.select_option('form.mode-change select', 'observe')
    page.click('form.mode-change button')
    expect(page.locator('#mode')).to_have_text('observe')


def _session(service, role: str) -> dict:
    return {'dbfleet_session': service.tokens[role]}


def test_the_pages_refuse_what_the_api_refuses(service, entries):
    entry = next(iter(entries.values()))
    mode_url = service.url + '/crontab/%s/mode' % entry['schedule_id']
    viewer = service.tokens['viewer']
    answer = httpx.post(mode_url, data={'mode': 'takeover', 'csrf_token': csrf_for(viewer)}, cookies=_session(service, 'viewer'), timeout=60)
    assert answer.status_code == 403 and 'needs operator' in answer.text
    answer = httpx.post(mode_url, data={'mode': 'takeover'}, cookies=_session(service, 'operator'), timeout=60)
    assert answer.status_code == 403 and 'CSRF' in answer.text
    operator = service.tokens['operator']
    answer = httpx.post(mode_url, data={'mode': 'rm -rf', 'csrf_token': csrf_for(operator)},
                        cookies=_session(service, 'operator'), timeout=60)
    assert answer.status_code == 422
    for host in ('../../etc/passwd', 'a' * 300, 'db1 or 1=1', 'db1\x00'):
        answer = httpx.get(service.url + '/crontab', params={'host': host}, cookies=_session(service, 'viewer'), timeout=60)
        assert answer.status_code == 422, host
    # A name a crontab import takes (any but space, slash, NUL) is a filter, shown escaped.
    for host in ('<script>alert(1)', 'fe80::1', 'db@dc1'):
        answer = httpx.get(service.url + '/crontab', params={'host': host}, cookies=_session(service, 'viewer'), timeout=60)
        assert answer.status_code == 200, host
        assert '<script>alert' not in answer.text
    answer = httpx.get(service.url + '/crontab/no-such-entry', cookies=_session(service, 'viewer'), timeout=60)
    assert answer.status_code == 404 and 'no crontab entry' in answer.text
    answer = httpx.get(service.url + '/crontab/%2e%2e%2f%2e%2e', cookies=_session(service, 'viewer'), timeout=60)
    assert answer.status_code == 404
    assert httpx.get(service.url + '/crontab', timeout=60).status_code == 303  # no session: the login page
    assert httpx.get(service.url + '/crontab?host=db-cron9', cookies=_session(service, 'viewer'), timeout=60).status_code == 200
