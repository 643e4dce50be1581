"""A job with 100,000 events and 20 MB of output (written into the store directly) opens its
page from the tail and follows new output without the page growing without bound. The test
prints how long the page took to open in Chromium (the figure in docs/benchmarks.md); it
asserts what the page holds, never a time."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from dbfleet.store import open_store
from runner_service.portal.job_log import MAX_LINES, TAIL_EVENTS
from tests.portal.browser import WAIT_MS

pytestmark = pytest.mark.service
EVENTS = 100_000
LINE = 'ok: [node%d] => {"msg": "%s"}'
BATCH = 10_000
NEEDLE = 'needle-in-the-middle'


def event(seq: int, text: str | None = None) -> dict:
    # about 200 bytes each: 100,000 of them make 20 MB of output
    return {'seq': seq, 'event': 'runner_on_ok', 'host': 'node%d' % (seq % 3 + 1), 'task': 'Work',
            'stdout': text or LINE % (seq % 3 + 1, 'line %09d ' % seq + 'x' * 160)}


@pytest.fixture(scope='module')
def large_job(service):
    store = open_store(service.store_url, migrate=False)
    # A queue no worker listens to: the job stays queued (not ended), so its page keeps following.
    job, _ = store.jobs.create({'playbook': 'tests/service/playbooks/hello.yml', 'inventory':
                                'tests/service/inventory.yml', 'inventory_kind': 'file', 'queue': 'portal-nowhere'},
                               created_by='admin')
    for first in range(1, EVENTS + 1, BATCH):
        store.events.add(job['id'], [event(seq, NEEDLE if seq == EVENTS // 2 else None)
                                     for seq in range(first, first + BATCH)])
    yield store, job['id']
    store.close()


def test_a_job_with_100000_events_opens_from_its_tail_and_follows_within_bounds(large_job, portal):
    store, job_id = large_job
    assert sum(len(event(seq)['stdout']) + 1 for seq in range(1, EVENTS + 1)) > 20_000_000
    portal.login('viewer')
    started = time.monotonic()
    page = portal.goto('/jobs/%s' % job_id)
    opened = time.monotonic() - started
    load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    portal.shot('large-job')
    print('\nportal: a job page with %d events opened in %.3f s (navigation to load event %.0f ms)'
          % (EVENTS, opened, load_ms))
    lines = page.locator('#log .line')
    expect(lines).to_have_count(TAIL_EVENTS)
    expect(lines.last).to_contain_text('line %09d' % EVENTS)

    # Follow: 5,000 more events arrive; the page shows the newest and keeps MAX_LINES at most.
    store.events.add(job_id, [event(seq) for seq in range(EVENTS + 1, EVENTS + 5001)])
    expect(lines.last).to_contain_text('line %09d' % (EVENTS + 5000), timeout=WAIT_MS)
    expect(lines).to_have_count(MAX_LINES)
    assert page.locator('#log').evaluate('log => log.scrollTop + log.clientHeight >= log.scrollHeight - 2')

    # Search reaches the whole output, not only what the page holds.
    started = time.monotonic()
    page.fill('input[name=q]', NEEDLE)
    page.click('form.search button')
    expect(page.locator('#search-results .line')).to_have_count(1, timeout=WAIT_MS)
    print('portal: a search through %d events answered in %.3f s' % (EVENTS + 5000, time.monotonic() - started))
    expect(page.locator('#search-results')).to_contain_text('#%d' % (EVENTS // 2))
    portal.shot('large-job-search')
