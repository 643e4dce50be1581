"""The Backups pages: per host its last success, age, size trend and failures; a host's
attempts; what the pages refuse."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from playwright.sync_api import expect

from dbfleet.clock import utcnow
from dbfleet.store import open_store
from tests.portal.helpers import record_backups

pytestmark = pytest.mark.service
GIB = 1024 ** 3


@pytest.fixture(scope='module')
def backups(service):
    """db-big: a week of nightly backups, growing; db-broken: a success five days before its
    failures (stale); db-fresh: one success an hour before now. Times are relative to the
    seeding, the assertions never about today's date."""
    now = utcnow().replace(microsecond=0)
    night = now - dt.timedelta(hours=3)
    record_backups(service, 'db-big', [(night - dt.timedelta(days=day), (40 + 7 - day) * GIB, None)
                                       for day in range(6, -1, -1)])
    record_backups(service, 'db-broken', [(night - dt.timedelta(days=5), 2 * GIB, None)]
                   + [(night - dt.timedelta(days=day), None, 'mysqldump: Error 1045: Access denied\n')
                      for day in (2, 1, 0)])
    record_backups(service, 'db-fresh', [(now - dt.timedelta(hours=1), 512 * 1024 ** 2, None)])
    # db-big's binary logs are archived from before its oldest backup to ten minutes ago: any instant
    # between is restorable; db-fresh has no archive: only its backup's instant.
    store = open_store(service.store_url, migrate=False)
    try:
        for number, first, last in ((42, night - dt.timedelta(days=7), night - dt.timedelta(days=1)),
                                    (43, night - dt.timedelta(days=1), now - dt.timedelta(minutes=10))):
            store.binlogs.record('db-big', 'mysql-bin.%06d' % number, first_event_at=first, last_event_at=last,
                                 bytes=1024, sha256='0' * 64, archived_at=last)
        # db-big's newest backup was drilled last night: restored to the archive's end in 95 s.
        newest = store.backups.list('db-big', limit=1)[0]
        store.drills.record('db-big', 'ok', night + dt.timedelta(hours=1), night + dt.timedelta(hours=1, seconds=95),
                            backup_id=newest['id'], rto_seconds=95.0, restored_to=night + dt.timedelta(minutes=50))
        # and its copy in the vault an hour later (dbfleet backups drill --from vault).
        store.drills.record('db-big', 'ok', night + dt.timedelta(hours=2), night + dt.timedelta(hours=2, seconds=130),
                            backup_id=newest['id'], rto_seconds=130.0, restored_to=night + dt.timedelta(minutes=50),
                            detail={'repository': 'vault'})
    finally:
        store.close()


def test_a_viewer_sees_each_hosts_last_backup_and_trend(portal, backups):
    portal.login('viewer')
    page = portal.goto('/backups')
    expect(page.locator('tr.backup-host')).to_have_count(3)
    big = page.locator('tr.backup-host[data-host=db-big]')
    expect(big.locator('td.size')).to_have_text('47.0 GiB')
    expect(big.locator('svg.sparkline polyline')).to_have_count(1)
    expect(big).not_to_have_class('backup-host bad')
    broken = page.locator('tr.backup-host[data-host=db-broken]')
    expect(broken).to_have_class('backup-host bad')
    expect(broken.locator('td.age')).to_contain_text('stale')
    expect(broken.locator('td.failures')).to_contain_text('3')
    expect(broken.locator('td.failures')).to_contain_text('Access denied')
    expect(page.locator('tr.backup-host[data-host=db-fresh] td.size')).to_have_text('512.0 MiB')
    expect(page.locator('tr.backup-host[data-host=db-fresh] svg.sparkline')).to_have_count(0)  # one point: no trend
    expect(big.locator('td.window')).to_contain_text('any instant (binlog chain unbroken)')
    expect(page.locator('tr.backup-host[data-host=db-fresh] td.window')).to_contain_text("the backup's instant only")
    portal.shot('backups')

    big.locator('a').click()
    expect(page.locator('tr.attempt')).to_have_count(7)
    expect(page.locator('#window')).to_contain_text('any instant (binlog chain unbroken)')
    expect(page.locator('svg.sparkline')).to_have_count(1)
    expect(page.locator('tr.drill')).to_have_count(2)
    # Newest first: the vault's copy, then the host's own.
    expect(page.locator('tr.drill td.drill-from')).to_have_text(['vault', 'host'])
    expect(page.locator('tr.drill').nth(1)).to_contain_text('1m 35s')  # the RTO
    expect(page.locator('#restore-tested')).not_to_contain_text('never')
    expect(page.locator('tr.attempt td.tested').first).to_contain_text('ok 20')
    expect(page.locator('tr.attempt td.tested').nth(1)).to_have_text('')
    portal.shot('backups-host')
    portal.goto('/backups/db-fresh')
    expect(page.locator('#restore-tested')).to_contain_text('never')
    expect(page.locator('tr.drill')).to_have_count(0)


def test_the_backup_pages_refuse_odd_hosts(service, backups):
    cookies = {'dbfleet_session': service.tokens['viewer']}
    for host in ('..%2f..%2fetc', 'a' * 300, '%3Cscript%3E', 'db big'):
        answer = httpx.get(service.url + '/backups/' + host, cookies=cookies, timeout=60)
        assert answer.status_code in (404, 422), host
        assert '<script>' not in answer.text
    answer = httpx.get(service.url + '/backups/db-none', cookies=cookies, timeout=60)
    assert answer.status_code == 404 and 'no backup of host' in answer.text
    assert httpx.get(service.url + '/backups', timeout=60).status_code == 303


def test_a_host_named_by_its_ipv6_address_has_its_backup_page(service):
    """The list links every host the store knows; the page took only letters, digits, '.', '_' and
    '-', so a host the fleet API accepts (an IPv6 address, a name with ':' or '@') got a 422."""
    record_backups(service, '2001:db8::7', [(utcnow().replace(microsecond=0) - dt.timedelta(hours=2), GIB, None)])
    cookies = {'dbfleet_session': service.tokens['viewer']}
    listed = httpx.get(service.url + '/backups', cookies=cookies, timeout=60)
    assert 'href="/backups/2001%3Adb8%3A%3A7"' in listed.text
    answer = httpx.get(service.url + '/backups/2001%3Adb8%3A%3A7', cookies=cookies, timeout=60)
    assert answer.status_code == 200 and '2001:db8::7' in answer.text
