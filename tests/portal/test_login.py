"""Logging in to the portal with a token: the session cookie, the headers every page carries,
logout, refused tokens, and a token revoked or expired while logged in."""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest
from playwright.sync_api import expect

from dbfleet.clock import utcnow
from dbfleet.store import open_store
from runner_service import tokens

pytestmark = pytest.mark.service


def test_a_viewer_logs_in_with_a_token_and_the_session_cookie_is_kept_from_scripts(portal):
    page = portal.goto('/jobs')
    expect(page).to_have_url(re.compile(r'/login$'))  # no session: the login page
    portal.shot('login')
    portal.login('viewer')
    expect(page.locator('#who')).to_contain_text('viewer')
    expect(page.locator('header nav a')).to_have_text(['Jobs', 'Templates', 'Schedules', 'Calendar', 'Crontab', 'Hosts',
                                                       'Backups', 'Workers', 'Notifications'])  # no Audit: admins only
    portal.shot('jobs-empty')
    cookie = portal.session_cookie()
    assert cookie['httpOnly'] and cookie['sameSite'] == 'Strict' and not cookie['secure']  # plain HTTP here
    assert page.evaluate('document.cookie') == ''  # nothing a script can read


def test_every_page_forbids_framing_and_inline_script(service, portal):
    portal.login('viewer')
    response = portal.page.goto('/jobs')
    headers = response.headers
    assert headers['x-frame-options'] == 'DENY'
    policy = headers['content-security-policy']
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and 'unsafe' not in policy
    assert headers['cache-control'] == 'no-store'
    # The login page too, before any session.
    assert httpx.get(service.url + '/login', timeout=60).headers['x-frame-options'] == 'DENY'


def test_a_wrong_or_agent_token_is_refused_and_logout_ends_the_session(service, portal):
    page = portal.goto('/login')
    page.fill('#token', 'dbf_' + 'x' * 43)
    page.click('button[type=submit]')
    expect(page.locator('#login-message')).to_contain_text('not valid')
    agent = json.loads(service.dbfleet('tokens', 'create', 'agent-db9', '--role', 'agent', '--host', 'db9', '--json',
                                       check=True).stdout)['token']
    page.fill('#token', agent)
    page.click('button[type=submit]')
    expect(page.locator('#login-message')).to_contain_text('agent token')
    portal.login('operator')
    page.click('header form.whoami button')
    expect(page).to_have_url(re.compile(r'/login\?reason=bye$'))
    portal.shot('logged-out')
    page.goto('/jobs')
    expect(page).to_have_url(re.compile(r'/login$'))


def test_a_login_post_without_its_csrf_cookie_is_refused(service):
    response = httpx.post(service.url + '/login', data={'token': service.tokens['viewer'], 'csrf_token': 'x'}, timeout=60)
    assert response.status_code == 403
    assert 'dbfleet_session' not in response.cookies


def test_a_token_revoked_while_logged_in_logs_out_at_the_next_page(service, portal):
    token = json.loads(service.dbfleet('tokens', 'create', 'viewer-revoked', '--role', 'viewer', '--json',
                                       check=True).stdout)['token']
    page = portal.login('viewer', token=token)
    service.dbfleet('tokens', 'revoke', 'viewer-revoked', check=True)
    page.goto('/templates')
    expect(page).to_have_url(re.compile(r'/login\?reason=unknown$'))
    expect(page.locator('#login-message')).to_contain_text('no longer valid')
    assert not [cookie for cookie in portal.context.cookies() if cookie['name'] == 'dbfleet_session']


def test_a_session_whose_token_expired_is_sent_to_the_login_page(service, portal):
    """The session cookie holds the token itself: once the token is past its expiry, the next
    page (or a live fragment's poll) ends the session."""
    store = open_store(service.store_url, migrate=False)
    try:
        # Issued as if an hour ago, with an expiry a minute ago: expired now, whatever today is.
        now = utcnow()
        token, _ = tokens.issue(store, 'viewer-expired', 'viewer', expires_at=now - dt.timedelta(minutes=1),
                                now=now - dt.timedelta(hours=1))
    finally:
        store.close()
    portal.context.add_cookies([{'name': 'dbfleet_session', 'value': token, 'url': service.url}])
    page = portal.goto('/jobs')
    expect(page).to_have_url(re.compile(r'/login\?reason=expired$'))
    expect(page.locator('#login-message')).to_contain_text('expired')
    response = httpx.get(service.url + '/jobs/rows', cookies={'dbfleet_session': token}, headers={'HX-Request': 'true'}, timeout=60)
    assert response.status_code == 401 and response.headers['HX-Redirect'] == '/login?reason=expired'


def test_an_agent_token_set_as_the_session_cookie_reads_nothing(service):
    agent = json.loads(service.dbfleet('tokens', 'create', 'agent-db8', '--role', 'agent', '--host', 'db8', '--json',
                                       check=True).stdout)['token']
    for path in ('/jobs', '/hosts', '/schedules', '/templates', '/audit'):
        response = httpx.get(service.url + path, cookies={'dbfleet_session': agent}, timeout=60)
        assert response.status_code == 303 and response.headers['location'] == '/login?reason=agent', path
    forged = httpx.post(service.url + '/schedules/x/pause', cookies={'dbfleet_session': agent},
                        data={'csrf_token': 'x'}, timeout=60)
    assert forged.status_code == 303 and forged.headers['location'] == '/login?reason=agent'


@pytest.mark.parametrize('method, path, allowed', [('GET', '/logout', {'POST'}), ('PUT', '/login', {'GET', 'HEAD', 'POST'}),
                                                   ('GET', '/jobs/x/cancel', {'POST'})])
def test_a_page_asked_with_a_method_it_does_not_serve_names_those_it_does(service, method, path, allowed):
    """The 405's Allow came from the OpenAPI document alone, which leaves the portal's pages out: it was empty."""
    response = httpx.request(method, service.url + path, timeout=60)
    assert response.status_code == 405
    assert set(response.headers['Allow'].split(', ')) == allowed
