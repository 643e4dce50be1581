"""Helpers several test directories share: the `dbfleet` CLI run as a user runs it, and a fresh
interpreter for checks this long-lived test process cannot make (it has imported everything)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO, VENV_BIN, ansible_env


def dbfleet(store_url, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / 'dbfleet'), *args], cwd=REPO, env=ansible_env(DBFLEET_STORE_URL=store_url),
                          capture_output=True, text=True, timeout=300, check=False)


def ok(store_url, *args) -> subprocess.CompletedProcess:
    completed = dbfleet(store_url, *args)
    assert completed.returncode == 0, completed.stderr
    return completed


def one_line_error(completed: subprocess.CompletedProcess) -> str:
    """A user error as the CLI must report it: exit code 2 and one `dbfleet: ` line on stderr."""
    assert completed.returncode == 2, (completed.stdout, completed.stderr)
    assert completed.stderr.startswith('dbfleet: ') and completed.stderr.count('\n') == 1, completed.stderr
    return completed.stderr


def refused(store_url, *args) -> str:
    """A user error with nothing on stdout. Returns the line."""
    completed = dbfleet(store_url, *args)
    line = one_line_error(completed)
    assert completed.stdout == ''
    return line.strip()


def run_fresh(code: str) -> str:
    """Runs `code` in a new interpreter that sees only the collection; returns its stdout."""
    env = dict(os.environ, PYTHONPATH=str(REPO / 'collections'))
    completed = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env, capture_output=True,
                               text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout
