"""Browser tests of the portal: the real service (devtools/service_harness.py) and a real headless
Chromium (Debian's `chromium`, driven by Playwright with the system browser). Every page a test
looks at is saved as a screenshot under var/screenshots/."""

from __future__ import annotations

import shutil

import pytest

from tests.portal.browser import Portal, launch_chromium
from devtools.service_harness import Service


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    """A running dbfleet service (API, 2 workers, private Redis, SQLite store) for one test module."""
    service = Service(tmp_path_factory.mktemp('service')).start()
    yield service
    service.stop()


@pytest.fixture(scope='session')
def chromium():
    if shutil.which('chromium') is None:
        pytest.fail('no chromium on PATH: run scripts/bootstrap.sh (it installs Debian\'s chromium)')
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def portal(chromium, service, request):
    """A fresh browser context (no cookies) on the service's portal; `portal.login(role)`."""
    with Portal(chromium, service, request.node.name) as portal:
        yield portal
