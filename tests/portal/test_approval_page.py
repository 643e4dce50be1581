"""A job awaiting approval in a real browser: the Jobs list filters it, its page shows Approve and
Reject to a second admin, a note (no buttons) to the admin who launched it, nothing to a viewer;
approving runs it, rejecting ends it with the reason."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.portal.browser import WAIT_MS
from devtools.service_harness import INVENTORY, PLAYBOOKS

pytestmark = pytest.mark.service
GUARDED = {'name': 'guarded', 'playbook': '%s/hello.yml' % PLAYBOOKS, 'inventory': INVENTORY, 'limit': 'node1',
           'approval': {'required': True, 'timeout': '2h'}}


@pytest.fixture(scope='module')
def second_admin(service) -> str:
    with service.client('admin') as client:
        assert client.post('/api/v1/templates', json=GUARDED).status_code == 201
        made = client.post('/api/v1/tokens', json={'name': 'second-admin', 'role': 'admin'})
    assert made.status_code == 201, made.text
    return made.json()['token']


def _launch(service) -> str:
    with service.client('admin') as client:
        job = client.post('/api/v1/templates/guarded/launch', json={}).json()
    assert job['status'] == 'awaiting_approval'
    return job['id']


def test_a_second_admin_approves_and_rejects_from_the_job_page(service, portal, second_admin):
    approve_me, reject_me = _launch(service), _launch(service)
    portal.login('admin')  # the launcher
    page = portal.goto('/jobs/%s' % approve_me, shot='job-awaiting-approval-launcher')
    expect(page.locator('#job-status')).to_have_text('awaiting_approval')
    expect(page.locator('#approve')).to_have_count(0)
    expect(page.locator('.approval')).to_contain_text('a second admin must approve it')
    page = portal.goto('/jobs?status=awaiting_approval', shot='jobs-awaiting-approval')
    expect(page.locator('body')).to_contain_text(approve_me[:8])

    portal.login('second-admin', token=second_admin)
    page = portal.goto('/jobs/%s' % approve_me, shot='job-awaiting-approval')
    page.click('#approve')
    expect(page.locator('#job-status')).to_have_text('successful', timeout=WAIT_MS)
    expect(page.locator('#job-summary')).to_contain_text('approved by second-admin')

    page = portal.goto('/jobs/%s' % reject_me)
    page.fill('#reject-reason', 'not during the sale')
    page.click('#reject')
    expect(page.locator('#job-status')).to_have_text('rejected', timeout=WAIT_MS)
    expect(page.locator('#job-summary')).to_contain_text('rejected by second-admin: not during the sale')
    portal.shot('job-rejected')


def test_a_viewer_sees_no_approval_buttons_and_its_forged_posts_are_refused(service, portal, second_admin):
    job_id = _launch(service)
    portal.login('viewer')
    page = portal.goto('/jobs/%s' % job_id)
    expect(page.locator('#job-status')).to_have_text('awaiting_approval')
    expect(page.locator('#approve')).to_have_count(0)
    for path, data in (('/jobs/%s/approve' % job_id, {}), ('/jobs/%s/reject' % job_id, {'reason': 'x'})):
        refused = portal.post(path, data)
        assert refused.status_code == 403 and 'has role viewer' in refused.text
    assert service.job(job_id)['status'] == 'awaiting_approval'
