"""The installed `dbfleet` console script."""

import subprocess

from dbfleet import __version__
from tests.conftest import VENV_BIN


def test_dbfleet_version_reports_dbfleet_and_ansible():
    completed = subprocess.run([str(VENV_BIN / 'dbfleet'), 'version'], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert 'dbfleet' in completed.stdout and __version__ in completed.stdout
    assert 'ansible-core' in completed.stdout and '2.19' in completed.stdout


def test_unknown_command_exits_2_with_a_message():
    completed = subprocess.run([str(VENV_BIN / 'dbfleet'), 'frobnicate'], capture_output=True, text=True, check=False)
    assert completed.returncode == 2
    assert 'frobnicate' in completed.stderr
