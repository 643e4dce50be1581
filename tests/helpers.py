"""Helpers several test directories share: the `dbfleet` CLI run as a user runs it, a fresh
interpreter for checks this long-lived test process cannot make (it has imported everything),
and a server that accepts connections and never answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading

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


class SilentServer:
    """A loopback port that accepts connections and never says a word (a git server that hangs);
    `accepted` lists the connections so far. A context manager: closes everything on exit."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                self.accepted.append(self.listener.accept()[0])
            except OSError:
                pass

    def __enter__(self) -> 'SilentServer':
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self.thread.join()
        for connection in self.accepted:
            connection.close()
        self.listener.close()
