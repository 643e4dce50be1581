"""`dbfleet up`'s private Redis listens on a unix socket, whose path has a length limit."""

from __future__ import annotations

import os
import shutil

from runner_service.job_queue import connect
from runner_service.processes import SOCKET_PATH_MAX, PrivateRedis, private_redis_directory


def test_the_socket_goes_under_the_state_directory_when_its_path_fits(tmp_path):
    directory = private_redis_directory(tmp_path)
    assert directory.parent == tmp_path and oct(directory.stat().st_mode & 0o777) == '0o700'


def test_a_deep_state_directory_puts_the_socket_in_the_temporary_directory(tmp_path):
    deep = tmp_path / ('state-' + 'd' * 60) / 'dbfleet'
    deep.mkdir(parents=True)
    directory = private_redis_directory(deep)
    assert not directory.is_relative_to(deep)
    assert len(os.fsencode(PrivateRedis(directory).socket)) <= SOCKET_PATH_MAX
    directory.rmdir()


def test_a_private_redis_in_a_deep_state_directory_starts(tmp_path):
    deep = tmp_path / ('state-' + 'd' * 80)
    deep.mkdir()
    directory = private_redis_directory(deep)
    redis = PrivateRedis(directory).start()
    try:
        assert connect(redis.url).ping()
    finally:
        redis.stop()
        shutil.rmtree(directory)
