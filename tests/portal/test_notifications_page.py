"""The Notifications page: deliveries with their attempts for any viewer; the notifiers and their
"Send test" button for admins only, sending through the outbox to a real HTTP receiver."""

from __future__ import annotations

import json

import httpx
import pytest
from playwright.sync_api import expect

from dbfleet.store import open_store
from runner_service.portal.session import csrf_for
from tests.portal.helpers import api
from devtools.service_harness import Service, wait_for
from tests.service.receivers import FAST_OUTBOX, WebhookReceiver

pytestmark = pytest.mark.service

HMAC_KEY = 'portal hook key 7d1e'


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('service'), variables=FAST_OUTBOX).start()
    yield service
    service.stop()


@pytest.fixture(scope='module')
def hook(service):
    """A webhook notifier whose receiver refuses the first request: its test is delivered at the second attempt."""
    with WebhookReceiver(key=HMAC_KEY, fail_first=1) as receiver:
        api(service, 'POST', '/api/v1/notifiers', {'name': 'ops-hook', 'kind': 'webhook', 'url': receiver.url,
                                                   'secret': HMAC_KEY, 'events': ['failed']})
        with service.client('admin') as admin:
            answer = admin.post('/api/v1/notifiers/ops-hook/test')
        assert answer.status_code == 202, answer.text
        sent = answer.json()

        def delivered():
            found = api(service, 'GET', '/api/v1/notifications?limit=5', None, role='viewer')
            delivery = next(n for n in found if n['id'] == sent['id'])['deliveries'][0]
            return delivery['status'] == 'delivered'

        wait_for(delivered, 'the first test notification was not delivered')
        # A job of a template subscribed to the hook fails: its notification links the template and the job.
        api(service, 'POST', '/api/v1/templates', {
            'name': 'flaky', 'playbook': 'tests/service/playbooks/fail_on.yml',
            'inventory': 'tests/service/inventory.yml',
            'survey': [{'name': 'fail_hosts', 'type': 'choice', 'choices': ['none', 'node1'], 'default': 'none'}],
            'notify': {'failed': ['ops-hook']}})
        job = api(service, 'POST', '/api/v1/templates/flaky/launch', {'extra_vars': {'fail_hosts': 'node1'}},
                  role='operator')
        assert service.wait(job['id'])['status'] == 'failed'
        wait_for(lambda: any(r['json'].get('job', {}).get('id') == job['id'] for r in receiver.accepted()),
              'the failure was not delivered')
        receiver.failed_job = job['id']
        yield receiver


def test_a_viewer_sees_deliveries_with_their_attempts_and_no_button(portal, hook):
    portal.login('viewer')
    page = portal.goto('/notifications')
    expect(page.locator('header nav a', has_text='Notifications')).to_have_class('active')
    row = page.locator('tr.notification[data-event=test]').first
    expect(row.locator('td.subject')).to_have_text('[dbfleet] test of notifier ops-hook')
    delivery = row.locator('tr.delivery[data-notifier=ops-hook]')
    expect(delivery.locator('td.status')).to_have_text('delivered')
    expect(delivery.locator('td.attempts')).to_have_text('2')
    row.locator('details summary').click()
    attempts = row.locator('details li')
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text('webhook %s answered HTTP 500' % hook.url)
    expect(attempts.nth(1)).to_have_class('ok')
    failed = page.locator('tr.notification[data-event=failed]')
    expect(failed.locator('td.of a.template')).to_have_attribute('href', '/templates/flaky')
    expect(failed.locator('td.of a.job')).to_have_attribute('href', '/jobs/%s' % hook.failed_job)
    expect(failed.locator('td.status')).to_have_text('delivered')
    portal.shot('notifications-viewer')
    assert HMAC_KEY not in page.content()
    # Filters: by event and by notifier; a filter nobody matches says so.
    page = portal.goto('/notifications?event=recovered')
    expect(page.locator('tr.notification')).to_have_count(0)
    expect(page.locator('td.empty')).to_contain_text('match these filters')
    page = portal.goto('/notifications?notifier=ops-hook&event=test')
    expect(page.locator('tr.notification')).to_have_count(1)


@pytest.mark.parametrize('role', ['viewer', 'operator'])
def test_below_admin_no_notifiers_no_button_and_a_forged_post_is_refused(portal, hook, role):
    portal.login(role)
    page = portal.goto('/notifications')
    expect(page.locator('tr.delivery[data-notifier=ops-hook]').first).to_be_visible()
    expect(page.locator('table.notifiers')).to_have_count(0)
    expect(page.locator('button.send-test')).to_have_count(0)
    # Even with the session's own CSRF token.
    refused = portal.post('/notifiers/ops-hook/test', {})
    assert refused.status_code == 403 and 'has role %s' % role in refused.text


def test_hostile_query_values_answer_4xx_pages(portal, hook):
    portal.login('viewer')
    for params, status in (({'event': 'failed;drop'}, 422), ({'event': 'x' * 100}, 422),
                           ({'notifier': '../../etc/passwd'}, 422), ({'notifier': 'n' * 300}, 422),
                           ({'notifier': 'nobody'}, 404), ({'before': '0'}, 422), ({'before': 'x'}, 422)):
        answer = portal.get('/notifications', **params)
        assert answer.status_code == status, (params, answer.text)
        assert answer.headers['content-type'].startswith('text/html')
    # An agent token (a bridged host's) is no portal session: both the page and the POST send it to the login.
    agent = json.loads(portal.service.dbfleet('tokens', 'create', 'agent-db7', '--role', 'agent', '--host', 'db7',
                                              '--json', check=True).stdout)['token']
    for method, path in (('GET', '/notifications'), ('POST', '/notifiers/ops-hook/test')):
        answer = httpx.request(method, portal.service.url + path, cookies={'dbfleet_session': agent},
                               data={'csrf_token': csrf_for(agent)} if method == 'POST' else None, timeout=60)
        assert answer.status_code == 303 and answer.headers['location'] == '/login?reason=agent', (method, path)
    portal.context.clear_cookies()
    portal.login('admin')
    portal.goto('/notifications')
    for path in ('/notifiers/..%2Fx/test', '/notifiers/nobody/test', '/notifiers/%s/test' % ('n' * 300)):
        assert portal.post(path, {}).status_code in (404, 422), path


def test_an_admin_sends_a_test_and_sees_it_delivered(portal, hook):
    portal.login('admin')
    page = portal.goto('/notifications')
    notifier = page.locator('table.notifiers tr.notifier[data-notifier=ops-hook]')
    expect(notifier).to_contain_text('webhook')
    expect(notifier).to_contain_text('failed')
    assert HMAC_KEY not in page.content()
    # Without the session's CSRF token, even an admin's POST is refused.
    refused = portal.post('/notifiers/ops-hook/test', {}, csrf=False)
    assert refused.status_code == 403 and 'CSRF' in refused.text
    before = len(hook.accepted())
    notifier.locator('button.send-test').click()
    page.wait_for_url('**/notifications?notifier=ops-hook')
    page = portal.goto('/notifications')
    wait_for(lambda: len(hook.accepted()) > before, 'the receiver got no test')
    assert hook.accepted()[-1]['signed']

    def shown_delivered():
        page.reload()
        return page.locator('tr.notification').first.locator('td.status').inner_text() == 'delivered'

    wait_for(shown_delivered, 'the page never showed the test delivered')
    newest = page.locator('tr.notification').first
    expect(newest.locator('td.attempts')).to_have_text('1')
    expect(page.locator('tr.notification')).to_have_count(3)
    portal.shot('notifications')


def test_older_notifications_page_by_a_hundred(portal, hook, service):
    """150 more notifications: the page shows the newest 100 and a link to the older ones, which
    goes on from the last id shown, keeping the filter; the API pages the same way (`before`)."""
    with open_store(service.store_url) as store:
        for number in range(150):
            store.notifications.record('paging:%d' % number, 'paging_check', 'paging %d' % number, {}, [])
    portal.login('viewer')
    page = portal.goto('/notifications?event=paging_check')
    rows = page.locator('tr.notification')
    expect(rows).to_have_count(100)
    expect(rows.first.locator('td.subject')).to_have_text('paging 149')
    expect(page.locator('a.newest')).to_have_count(0)
    page.locator('a.older').click()
    expect(rows).to_have_count(50)
    expect(rows.first.locator('td.subject')).to_have_text('paging 49')
    expect(rows.last.locator('td.subject')).to_have_text('paging 0')
    expect(page.locator('a.older')).to_have_count(0)  # the oldest page
    assert 'event=paging_check' in page.url
    page.locator('a.newest').click()
    expect(rows).to_have_count(100)
    first = api(service, 'GET', '/api/v1/notifications?event=paging_check&limit=100', None, role='viewer')
    rest = api(service, 'GET', '/api/v1/notifications?event=paging_check&limit=100&before=%d' % first[-1]['id'],
               None, role='viewer')
    assert [n['subject'] for n in first + rest] == ['paging %d' % number for number in range(149, -1, -1)]
