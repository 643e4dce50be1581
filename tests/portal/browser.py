"""Helpers of the portal's browser tests: the system Chromium under Playwright, and Portal, one
browser context on one service with a login and a screenshot of every page it visits."""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devtools.service_harness import PATIENCE, REPO

SCREENSHOTS = REPO / 'var' / 'screenshots'
# Playwright's own waits (expect, wait_for_*) in ms: they end as soon as their condition holds.
WAIT_MS = int(60_000 * PATIENCE)
expect.set_options(timeout=WAIT_MS)


@contextlib.contextmanager
def launch_chromium():
    """The system chromium, headless; `playwright install` cannot download browsers here."""
    with sync_playwright() as playwright:
        # Root (CI, this machine) cannot use Chromium's sandbox.
        browser = playwright.chromium.launch(executable_path=shutil.which('chromium'), headless=True,
                                             args=['--no-sandbox', '--disable-dev-shm-usage'])
        try:
            yield browser
        finally:
            browser.close()


class Portal:
    def __init__(self, browser: Browser, service, test_name: str):
        self.service = service
        # The viewer's zone differs from UTC and from the schedules' zones: pages show both.
        self.context = browser.new_context(base_url=service.url, viewport={'width': 1280, 'height': 900},
                                           timezone_id='America/New_York')
        self.context.set_default_timeout(WAIT_MS)
        self.page: Page = self.context.new_page()
        self.test_name = re.sub(r'[^A-Za-z0-9_-]+', '_', test_name)[:80]
        self.shots = 0

    def __enter__(self) -> 'Portal':
        return self

    def __exit__(self, *exc) -> None:
        self.context.close()

    def login(self, role: str, token: str | None = None) -> Page:
        self.page.goto('/login')
        self.page.fill('#token', token or self.service.tokens[role])
        self.page.click('button[type=submit]')
        self.page.wait_for_url(re.compile(r'/jobs$'))
        return self.page

    def goto(self, path: str, shot: str | None = None) -> Page:
        response = self.page.goto(path)
        assert response is not None
        if shot:
            self.shot(shot)
        return self.page

    def shot(self, name: str) -> Path:
        """A screenshot of the whole page: var/screenshots/<test>-<n>-<name>.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = SCREENSHOTS / ('%s-%02d-%s.png' % (self.test_name, self.shots, name))
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def csrf(self) -> str:
        """The session's CSRF token as the pages carry it (to forge requests with)."""
        return self.page.locator('input[name=csrf_token]').first.get_attribute('value')

    def session_cookie(self) -> dict:
        return next(cookie for cookie in self.context.cookies() if cookie['name'] == 'dbfleet_session')

    def post(self, path: str, data: dict, csrf: bool = True):
        """A POST outside the pages (a forged or hand-made form) with this session's cookie and,
        unless `csrf` is False, its CSRF token."""
        body = {**data, **({'csrf_token': self.csrf()} if csrf else {})}
        return httpx.post(self.service.url + path, data=body, follow_redirects=False, timeout=30 * PATIENCE,
                          cookies={'dbfleet_session': self.session_cookie()['value']})

    def get(self, path: str, **params):
        return httpx.get(self.service.url + path, params=params or None, timeout=30 * PATIENCE,
                         cookies={'dbfleet_session': self.session_cookie()['value']})
