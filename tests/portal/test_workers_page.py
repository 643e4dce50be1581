"""The Workers and queues page: the service's live workers and the job one runs now, a queue
nobody listens to with its waiting jobs, and a pool's leases; refreshed in place."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from dbfleet.store import open_store

pytestmark = pytest.mark.service


@pytest.fixture
def busy(service):
    """A job running on a worker, two jobs waiting on a queue no worker listens to, and a pool
    of 2 with one lease held."""
    running = service.launch('sleep.yml', limit='node1', extra_vars={'sleep_seconds': 300})
    waiting = [service.launch('hello.yml', queue='nightly') for _ in range(2)]
    store = open_store(service.store_url, migrate=False)
    try:
        store.pools.set('replicas', 2, 'replica rebuilds')
        assert store.pools.acquire_lease('replicas', '%s:node1' % running['id'])
    finally:
        store.close()
    service.wait(running['id'], statuses={'running'})
    yield {'running': running, 'waiting': waiting}
    with service.client('admin') as admin:
        for job in [running] + waiting:
            admin.post('/api/v1/jobs/%s/cancel' % job['id'])
    service.wait(running['id'])
    store = open_store(service.store_url, migrate=False)
    try:
        store.pools.delete('replicas')
    finally:
        store.close()


def test_a_viewer_sees_workers_queues_and_pool_leases(portal, busy):
    portal.login('viewer')
    page = portal.goto('/workers')
    expect(page.locator('tr.worker')).to_have_count(2)
    running = busy['running']['id']
    expect(page.locator('tr.worker td.current a')).to_have_attribute('href', '/jobs/%s' % running)
    default = page.locator('tr.queue[data-queue=default]')
    expect(default.locator('td.online')).to_have_text('2')
    nightly = page.locator('tr.queue[data-queue=nightly]')
    expect(nightly.locator('td.online')).to_have_text('0')
    expect(nightly.locator('td.waiting')).to_have_text('2')
    expect(nightly).to_have_class('queue bad')  # jobs wait and nobody listens
    pool = page.locator('tr.pool[data-pool=replicas]')
    expect(pool.locator('td.in-use')).to_have_text('1 / 2')
    expect(pool.locator('.lease a')).to_have_attribute('href', '/jobs/%s' % running)
    portal.shot('workers')
    # The live refresh swaps the tables in place: the running job ends and its worker is idle again.
    with portal.service.client('admin') as admin:
        assert admin.post('/api/v1/jobs/%s/cancel' % running).status_code in (200, 202)
    expect(page.locator('tr.worker td.current a')).to_have_count(0)
    expect(page.locator('tr.worker')).to_have_count(2)


def test_the_live_part_needs_a_session(service):
    answer = httpx.get(service.url + '/workers/live', headers={'HX-Request': 'true'}, timeout=60)
    assert answer.status_code == 401 and answer.headers['HX-Redirect'] == '/login'
    answer = httpx.get(service.url + '/workers/live', cookies={'dbfleet_session': 'dbf_' + 'x' * 43}, timeout=60)
    assert answer.status_code == 303 and answer.headers['location'] == '/login?reason=unknown'
