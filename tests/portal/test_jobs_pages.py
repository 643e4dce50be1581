"""The Jobs and Templates pages in a real browser: an operator launches a template from its
survey form and watches the job finish (hosts, lane timeline, output), relaunches its failed
hosts, cancels a running job; a viewer sees no launch or cancel button and a forged POST is
refused; hostile values answer 4xx pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from runner_service.secret_box import MASK
from tests.portal.browser import WAIT_MS
from devtools.service_harness import PLAYBOOKS, TERMINAL

pytestmark = pytest.mark.service
PASSWORD = 'hunter2-portal-secret'
GREET = {
    'name': 'greet', 'playbook': '%s/fail_on.yml' % PLAYBOOKS, 'inventory': 'tests/service/inventory.yml',
    'allow_limit': True, 'plan': {'lanes': 2, 'window_end_after': 3600},
    'survey': [
        {'name': 'fail_hosts', 'type': 'multi-choice', 'choices': ['node1', 'node2', 'node3'],
         'description': 'hosts that should fail'},
        {'name': 'note', 'type': 'string', 'required': True, 'max_length': 40},
        {'name': 'db_password', 'type': 'password', 'required': True},
        {'name': 'batch', 'type': 'integer', 'min': 1, 'max': 10, 'default': 2},
        {'name': 'mode', 'type': 'choice', 'choices': ['quick', 'full'], 'default': 'quick'},
        {'name': 'verbose', 'type': 'boolean', 'default': False},
    ],
}
NAP = {'name': 'nap', 'playbook': '%s/sleep.yml' % PLAYBOOKS, 'inventory': 'tests/service/inventory.yml',
       'limit': 'node1', 'survey': [{'name': 'sleep_seconds', 'type': 'integer', 'min': 1, 'max': 600,
                                     'default': 300}]}


@pytest.fixture(scope='module', autouse=True)
def templates(service):
    with service.client('admin') as client:
        for body in (GREET, NAP):
            response = client.post('/api/v1/templates', json=body)
            assert response.status_code == 201, response.text


def launch_greet(portal, fail: str | None = None):
    page = portal.goto('/templates/greet')
    page.fill('#v_note', 'from the portal')
    page.fill('#v_db_password', PASSWORD)
    page.fill('#v_batch', '3')
    page.select_option('#v_mode', label='full')
    page.check('#v_verbose')
    if fail:
        page.check('input[name=v_fail_hosts][value="%d"]' % ['node1', 'node2', 'node3'].index(fail))
    portal.shot('launch-form')
    page.click('#launch')
    page.wait_for_url(re.compile(r'/jobs/[0-9a-f]{32}$'))
    return page, page.url.rsplit('/', 1)[1]


def test_an_operator_launches_a_template_and_watches_the_job_finish(service, portal):
    portal.login('operator')
    page = portal.goto('/templates', shot='templates')
    expect(page.locator('tr[data-template=greet] a.button')).to_have_text('Launch…')
    page, job_id = launch_greet(portal)
    expect(page.locator('#job-status')).to_have_text('successful', timeout=WAIT_MS)
    expect(page.locator('#gantt .run')).to_have_count(3)  # one bar per host, in 2 lanes
    expect(page.locator('#gantt .window-end')).to_have_count(1)
    expect(page.locator('table.hosts tbody tr')).to_have_count(3)
    expect(page.locator('#log')).to_contain_text('PLAY RECAP')
    portal.shot('job-successful')
    job = service.job(job_id)
    assert job['template'] == 'greet' and job['created_by'] == 'operator'
    assert job['extra_vars'] == {'note': 'from the portal', 'db_password': MASK, 'batch': 3, 'mode': 'full',
                                 'verbose': True}
    assert PASSWORD not in page.content()
    page = portal.goto('/jobs', shot='jobs')
    expect(page.locator('tr[data-job="%s"]' % job_id)).to_contain_text('greet')
    page.fill('input[name=template]', 'greet')
    page.fill('input[name=created_by]', 'operator')
    page.click('.filters button[type=submit]')
    page.wait_for_url(re.compile(r'template=greet'))
    expect(page.locator('tr[data-job="%s"]' % job_id)).to_have_count(1)
    expect(page.locator('#job-rows tr[data-job]').filter(has_not_text='greet')).to_have_count(0)
    page = portal.goto('/jobs?template=greet&created_by=nobody')
    expect(page.locator('#job-rows tr[data-job]')).to_have_count(0)
    expect(page.locator('#job-rows')).to_contain_text('No jobs match these filters')


def test_an_operator_relaunches_the_failed_hosts(service, portal):
    portal.login('operator')
    page, job_id = launch_greet(portal, fail='node2')
    expect(page.locator('#job-status')).to_have_text('failed', timeout=WAIT_MS)
    expect(page.locator('table.hosts tr.bad')).to_contain_text('node2')
    portal.shot('job-failed')
    page.click('#relaunch-failed')
    page.wait_for_url(lambda url: re.search(r'/jobs/[0-9a-f]{32}$', url) and job_id not in url)
    relaunched = service.job(page.url.rsplit('/', 1)[1])
    assert relaunched['relaunch_of'] == job_id and relaunched['limit'] == 'node2'
    expect(page.locator('#job-status')).to_have_text(re.compile('|'.join(TERMINAL)), timeout=WAIT_MS)


def test_an_operator_cancels_a_running_job(service, portal):
    portal.login('operator')
    page = portal.goto('/templates/nap')
    page.click('#launch')
    page.wait_for_url(re.compile(r'/jobs/[0-9a-f]{32}$'))
    expect(page.locator('#job-status')).to_have_text('running', timeout=WAIT_MS)
    portal.shot('job-running')
    page.click('#cancel')
    expect(page.locator('#job-status')).to_have_text('canceled', timeout=WAIT_MS)
    expect(page.locator('#cancel')).to_have_count(0)
    portal.shot('job-canceled')


def test_a_viewer_sees_no_launch_or_cancel_and_its_forged_posts_are_refused(service, portal):
    with service.client('admin') as client:
        running = client.post('/api/v1/templates/nap/launch', json={}).json()
    job_id = running['id']
    service.wait(job_id, {'running'})
    page = portal.login('viewer')
    page = portal.goto('/templates')
    expect(page.locator('tr[data-template=nap]')).to_be_visible()
    expect(page.locator('a.button')).to_have_count(0)
    page = portal.goto('/templates/nap', shot='template-as-viewer')
    expect(page.locator('#launch')).to_have_count(0)
    page = portal.goto('/jobs/%s' % job_id, shot='job-as-viewer')
    expect(page.locator('#job-status')).to_have_text('running')
    expect(page.locator('#cancel')).to_have_count(0)
    for path, data in (('/jobs/%s/cancel' % job_id, {}), ('/templates/nap/launch', {'v_sleep_seconds': '1'}),
                       ('/jobs/%s/relaunch' % job_id, {'hosts': 'all'})):
        refused = portal.post(path, data)  # with the viewer's own valid CSRF token: the role decides
        assert refused.status_code == 403, (path, refused.text)
        assert 'has role viewer' in refused.text
    assert service.job(job_id)['status'] == 'running'
    with service.client('admin') as client:
        client.post('/api/v1/jobs/%s/cancel' % job_id)
    service.wait(job_id)


def test_a_post_without_the_sessions_csrf_token_is_refused(service, portal):
    portal.login('operator')
    portal.goto('/templates/nap')
    before = job_ids(service)
    for data in ({}, {'csrf_token': 'f' * 64}):
        refused = portal.post('/templates/nap/launch', {'v_sleep_seconds': '1', **data}, csrf=False)
        assert refused.status_code == 403 and 'CSRF' in refused.text
    assert job_ids(service) == before


def job_ids(service) -> set[str]:
    with service.client('viewer') as client:
        return {job['id'] for job in client.get('/api/v1/jobs', params={'limit': 1000}).json()['jobs']}


def test_a_refused_launch_says_why_and_never_shows_the_password_again(service, portal):
    portal.login('operator')
    portal.goto('/templates/greet')
    refused = portal.post('/templates/greet/launch', {'v_note': 'x', 'v_db_password': PASSWORD, 'v_batch': '99'})
    assert refused.status_code == 422
    assert 'batch' in refused.text and PASSWORD not in refused.text
    refused = portal.post('/templates/greet/launch', {'v_note': 'x' * 41, 'v_db_password': PASSWORD,
                                                       'v_mode': '7', 'limit': '@/etc/passwd'})
    assert refused.status_code == 422 and PASSWORD not in refused.text
    with_nul = portal.post('/templates/greet/launch', {'v_note': 'a\x00b', 'v_db_password': PASSWORD})
    assert with_nul.status_code == 422 and 'NUL' in with_nul.text
    page = portal.page
    page.set_content(refused.text)  # what the browser would show: the form, kept, with the reason
    expect(page.locator('#launch-error')).not_to_be_empty()
    expect(page.locator('#v_db_password')).to_have_value('')


@pytest.mark.parametrize('path, status', [
    ('/jobs/%s' % ('a' * 33), 422), ('/jobs/..%2F..%2Fetc', 404), ('/jobs/%s' % ('0' * 32), 404),
    ('/jobs?status=exploded', 422), ('/jobs?playbook=' + 'p' * 600, 422), ('/jobs?cursor=zzz', 400),
    ('/jobs?template=' + 't' * 300, 422), ('/jobs?created_by=' + 'w' * 300, 422),
    ('/jobs/%s/log?after=-1' % ('0' * 32), 422), ('/jobs/%s/search?q=' % ('0' * 32) + 'q' * 201, 422),
    ('/templates/%s' % ('t' * 300), 422), ('/templates/nosuch', 404),
])
def test_hostile_values_get_a_4xx_page_with_the_reason(portal, path, status):
    portal.login('viewer')
    response = portal.get(path)
    assert response.status_code == status, response.text
    if 'Not Found' not in response.text:  # a path no page has (traversal) is the API's plain 404
        assert 'id="error-detail"' in response.text
        assert response.headers['x-frame-options'] == 'DENY'
