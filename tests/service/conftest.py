import pytest

from devtools.service_harness import Service


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    """A running dbfleet service (API, 2 workers, private Redis, SQLite store) for one test module."""
    service = Service(tmp_path_factory.mktemp('service')).start()
    yield service
    service.stop()
