"""The Calendar page: the week's fire times of two nightly schedules over tagged hosts in lanes,
their predicted finish against the window end (one fits, one overruns), and a weekly maintenance
window that skips one night of each."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests.portal.helpers import NIGHT, api, record_backups, tag_hosts
from devtools.service_harness import PLAYBOOKS

pytestmark = pytest.mark.service
LARGE = ['db-l1', 'db-l2', 'db-l3', 'db-l4']


@pytest.fixture(scope='module')
def week(service):
    """Four large hosts whose backups took 12 min each: in 2 lanes a run takes 24 min (by 06:00:
    fits), in 1 lane 48 min (window 30 min after the launch: overruns)."""
    tag_hosts(service, 'large', LARGE)
    for host in LARGE:
        record_backups(service, host, [(NIGHT, 10 * 1024 ** 3, None)])
    for name, plan in (('nightly-lanes', {'lanes': 2, 'window_end_at': '06:00'}),
                       ('nightly-one-lane', {'lanes': 1, 'window_end_after': 1800})):
        api(service, 'POST', '/api/v1/templates', {'name': name, 'playbook': '%s/hello.yml' % PLAYBOOKS,
                                                   'tags': 'large', 'plan': plan})
        api(service, 'POST', '/api/v1/schedules', {'name': name, 'kind': 'cron', 'expression': '0 2 * * *',
                                                   'template': name})
    api(service, 'POST', '/api/v1/windows', {'name': 'sunday-maintenance', 'kind': 'recurring', 'start': '0 1 * * 0',
                                             'duration_seconds': 3 * 3600})


def test_a_viewer_sees_the_week_with_predicted_finishes_and_a_maintenance_window(portal, week):
    portal.login('viewer')
    page = portal.goto('/calendar')
    lanes = page.locator('tr.slot[data-schedule=nightly-lanes]')
    expect(lanes).to_have_count(7)  # one a night
    running = page.locator('tr.slot:not(.blocked)[data-schedule=nightly-lanes]')
    expect(running).to_have_count(6)
    expect(running.first.locator('td.finish')).to_contain_text('24m 06s')  # and 3 s of start-up each
    expect(running.first).to_contain_text('4 hosts in 2 lanes')
    expect(page.locator('tr.slot[data-schedule=nightly-lanes] .status-failed')).to_have_count(0)
    one_lane = page.locator('tr.slot[data-schedule=nightly-one-lane]')
    expect(one_lane).to_have_count(7)
    overrun = page.locator('tr.slot:not(.blocked)[data-schedule=nightly-one-lane]').first
    expect(overrun.locator('td.finish')).to_contain_text('overruns')
    expect(overrun.locator('td.finish')).to_contain_text('48m 12s')  # and 3 s of start-up each
    expect(page.locator('.maintenance').first).to_contain_text('sunday-maintenance')
    expect(page.locator('tr.slot.blocked')).to_have_count(2)  # the Sunday night of each
    skipped = page.locator('tr.slot.blocked').first
    expect(skipped.locator('td.blocked')).to_contain_text('skipped sunday-maintenance')
    expect(skipped.locator('td.finish')).to_have_text('no run')
    expect(page.locator('tr.slot.bad')).to_have_count(6)  # the one-lane plan, the skipped night aside
    portal.shot('calendar')
