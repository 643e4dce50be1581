import pytest

from dbfleet.settings import Settings
from runner_service.processes import PrivateRedis
from runner_service.runtime import Runtime
from devtools.service_harness import REPO


@pytest.fixture(scope='module')
def private_redis(tmp_path_factory):
    redis = PrivateRedis(tmp_path_factory.mktemp('redis')).start()
    yield redis
    redis.stop()


@pytest.fixture
def make_runtime(store_url, private_redis, tmp_path):
    """Runtimes sharing one store, Redis and secret key, as separate scheduler processes would."""
    made = []

    def make() -> Runtime:
        settings = Settings(store_url=store_url, redis_url=private_redis.url, var_dir=tmp_path / 'var',
                            project_dir=REPO, inventory_dirs=['inventories', 'tests/service'])
        runtime = Runtime(settings=settings)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


@pytest.fixture
def runtime(make_runtime):
    return make_runtime()
