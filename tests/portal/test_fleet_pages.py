"""Schedules, Hosts and Audit in a real browser: an operator pauses and resumes a schedule whose
next runs show in its zone and the viewer's, a missed slot shows in its history; hosts filtered
by `large and not maintenance`, a database's profile; the audit log for admins only."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from dbfleet.clock import utcnow
from dbfleet.store import open_store
from devtools.service_harness import PLAYBOOKS

pytestmark = pytest.mark.service
HOSTS = {  # name: (manual tags, data bytes)
    'db-big-1': (['large'], 80 * 2**30), 'db-big-2': (['large', 'maintenance'], 120 * 2**30),
    'db-tiny': (['small'], 2**28),
}


@pytest.fixture(scope='module')
def fleet_store(service):
    with service.client('admin') as client:
        response = client.post('/api/v1/templates', json={'name': 'hello', 'playbook': '%s/hello.yml' % PLAYBOOKS,
                                                          'inventory': 'tests/service/inventory.yml'})
        assert response.status_code == 201, response.text
        response = client.post('/api/v1/schedules', json={'name': 'nightly-hello', 'kind': 'cron',
                                                          'expression': '30 2 * * *', 'timezone': 'Europe/Paris',
                                                          'template': 'hello'})
        assert response.status_code == 201, response.text
        schedule = response.json()
    store = open_store(service.store_url, migrate=False)
    for name, (tags, size) in HOSTS.items():
        store.hosts.upsert(name, address='10.0.0.%d' % (len(name)), port=3306)
        store.facts.record(name, {'server': {'flavour': 'mariadb', 'version': {'full': '10.11.6-MariaDB'},
                                             'uptime_seconds': 86400 * 40},
                                  'replication': {'role': 'primary'},
                                  'schemas': {'totals': {'total_bytes': size, 'schemas': 3, 'tables': 40}}})
        for tag in tags:
            store.tags.add(name, tag, who='admin', dimension='size' if tag in ('large', 'small') else 'lifecycle')
    day = utcnow() - dt.timedelta(days=3)
    for number, size in enumerate((70, 75, 80)):  # a growing database, backed up nightly
        started = day + dt.timedelta(days=number)
        store.backups.record('db-big-1', method='physical', started_at=started,
                             finished_at=started + dt.timedelta(minutes=20), bytes=size * 2**30)
    store.backups.record('db-tiny', method='logical', started_at=day, finished_at=day + dt.timedelta(seconds=30),
                         bytes=2**27)
    store.backups.record('db-tiny', method='logical', started_at=day + dt.timedelta(days=1), status='failed',
                         error='mysqldump: Access denied for user backup')
    # A slot nobody fired (the scheduler was down): the history must show it as missed.
    store.schedules.record_slot(schedule['id'], utcnow() - dt.timedelta(days=1), 'missed', None,
                                reason='no scheduler ran within the misfire grace')
    yield store, schedule
    store.close()


def test_an_operator_pauses_and_resumes_a_schedule_and_sees_its_missed_slot(fleet_store, portal):
    _, schedule = fleet_store
    portal.login('operator')
    page = portal.goto('/schedules', shot='schedules')
    row = page.locator('tr[data-schedule=nightly-hello]')
    expect(row).to_contain_text(re.compile(r'02:30:00 CES?T'))  # the next run in the schedule's own zone
    expect(row.locator('time.local')).not_to_contain_text('UTC')  # and in the browser's (portal.js)
    row.locator('button.pause').click()
    expect(page.locator('#schedule-state')).to_have_text('paused')
    expect(page.locator('tr.slot-missed')).to_contain_text('no scheduler ran')
    portal.shot('schedule-paused')
    page.locator('button.resume').click()
    expect(page.locator('#schedule-state')).to_have_text('active')
    expect(page.locator('table.preview tbody tr')).to_have_count(10)


def test_a_viewer_cannot_pause_a_schedule(fleet_store, portal):
    _, schedule = fleet_store
    portal.login('viewer')
    page = portal.goto('/schedules/%s' % schedule['id'], shot='schedule-as-viewer')
    expect(page.locator('button.pause')).to_have_count(0)
    refused = portal.post('/schedules/%s/pause' % schedule['id'], {})
    assert refused.status_code == 403 and 'has role viewer' in refused.text
    assert portal.get('/schedules/%s' % ('s' * 300)).status_code == 422
    assert portal.get('/schedules/nosuch').status_code == 404


def test_hosts_filter_by_tag_expression_and_open_a_profile(fleet_store, portal):
    portal.login('viewer')
    page = portal.goto('/hosts')
    expect(page.locator('tr[data-host]')).to_have_count(3)
    page.fill('#tags', 'large and not maintenance')
    page.click('form.filters button')
    expect(page.locator('tr[data-host]')).to_have_count(1)
    expect(page.locator('tr[data-host=db-big-1]')).to_contain_text('80.0 GiB')
    portal.shot('hosts-filtered')
    page.click('a[href="/hosts/db-big-1"]')
    expect(page.locator('h1')).to_contain_text('db-big-1')
    expect(page.locator('table.profile-facts')).to_contain_text('10.11.6-MariaDB')
    expect(page.locator('table.profile-tags')).to_contain_text('large')
    expect(page.locator('#restore-tested')).to_contain_text('never (first backup')  # backed up, never drilled
    portal.shot('host-profile')
    refused = portal.get('/hosts', tags='large and (')
    assert refused.status_code == 400 and 'tag filter' in refused.text
    assert portal.get('/hosts/no-such-host').status_code == 404


def test_only_admins_see_the_audit_log(fleet_store, portal):
    portal.login('operator')
    expect(portal.page.locator('header nav a', has_text='Audit')).to_have_count(0)
    assert portal.get('/audit').status_code == 403
    portal.context.clear_cookies()
    portal.login('admin')
    page = portal.goto('/audit')
    expect(page.locator('tr[data-action="template.create"]').first).to_contain_text('hello')
    page.fill('input[name=action]', 'schedule.')
    page.click('form.filters button')
    expect(page.locator('tbody tr[data-action^="schedule."]').first).to_be_visible()
    expect(page.locator('tbody tr[data-action="template.create"]')).to_have_count(0)
    portal.shot('audit')


@pytest.mark.parametrize('path, params, status', [
    ('/hosts', {'tags': '(' * 1000}, 400), ('/hosts', {'tags': 'large and'}, 400), ('/hosts', {'tags': 'x' * 1001}, 422),
    ('/hosts/%s' % ('h' * 256), {}, 422), ('/hosts/..%2Fetc', {}, 404), ('/audit', {'cursor': '0'}, 422),
    ('/audit', {'action': 'a' * 33}, 422), ('/audit', {'actor': 'x', 'cursor': str(2**63)}, 422),
    ('/schedules/%2e%2e%2f%2e%2e', {}, 404),
])
def test_hostile_filters_get_4xx_pages(fleet_store, portal, path, params, status):
    portal.login('admin')
    response = portal.get(path, **params)
    assert response.status_code == status, response.text[:500]
