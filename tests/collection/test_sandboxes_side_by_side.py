"""Restore sandboxes initialised side by side (drills in lanes on one host do that): each datadir made by
a real mariadb-install-db at the same moment as the others. In a shared /tmp, about one install in six
failed ("Unknown table 'mysql.tmp_proxies_priv'"); each sandbox has its own tmpdir now."""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_collections.dbfleet.mysql.plugins.module_utils.restore import Sandbox, Tools

SIDE_BY_SIDE = 4
ROUNDS = 3


def initialised(base: str) -> str:
    sandbox = Sandbox(Tools(shutil.which, sandbox=True), base=base)
    sandbox.write_config()
    scratch = tempfile.mkdtemp(dir=base)
    sandbox.initialize(scratch)
    return sandbox.tmpdir


@pytest.mark.parametrize('round_', range(ROUNDS))
def test_sandboxes_initialised_at_once_all_succeed_each_in_its_own_tmpdir(tmp_path, round_):
    with ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
        tmpdirs = list(pool.map(initialised, [str(tmp_path)] * SIDE_BY_SIDE))  # a RestoreError fails the test
    assert len(set(tmpdirs)) == SIDE_BY_SIDE and all(path.startswith(str(tmp_path)) for path in tmpdirs)
