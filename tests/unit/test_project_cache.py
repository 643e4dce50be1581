"""The worker's project cache against a git server that never answers: a fetch stops when the job
is canceled, or at DBFLEET_PROJECT_FETCH_SECONDS, and leaves no git process behind."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from runner_service.worker.project import ProjectCache, ProjectError, ProjectStopped
from tests.helpers import SilentServer


@pytest.fixture
def silent_server():
    """A git:// URL of a server that never answers, and its connections so far."""
    with SilentServer() as server:
        yield 'git://127.0.0.1:%d/playbooks.git' % server.port, server.accepted


def settings(tmp_path: Path, url: str, seconds: float = 600.0):
    return SimpleNamespace(project_url=url, project_branch='main', project_fetch_seconds=seconds, var_dir=tmp_path)


def git_children() -> list[int]:
    """git processes that are children of this test process."""
    found = []
    for entry in Path('/proc').iterdir():
        try:
            status = (entry / 'status').read_text()
        except (OSError, ValueError):
            continue
        fields = dict(line.split(':\t', 1) for line in status.splitlines() if ':\t' in line)
        if fields.get('PPid', '').strip() == str(os.getpid()) and fields.get('Name', '').startswith('git'):
            found.append(int(entry.name))
    return found


def test_a_cancel_stops_a_fetch_that_hangs(tmp_path, silent_server):
    url, accepted = silent_server
    # Stop once git has connected: the cancel arrives while the fetch hangs.
    with pytest.raises(ProjectStopped):
        ProjectCache(settings(tmp_path, url)).check_out(tmp_path / 'job' / 'project', lambda: bool(accepted))
    assert git_children() == []
    assert not (tmp_path / 'job' / 'project').exists()


def test_a_fetch_that_hangs_fails_at_its_time_limit(tmp_path, silent_server):
    url, _ = silent_server
    with pytest.raises(ProjectError, match=r"fetching branch 'main' of git://127\.0\.0\.1:\d+/playbooks\.git failed: "
                                           r'git fetch took more than 1 s \(DBFLEET_PROJECT_FETCH_SECONDS\)'):
        ProjectCache(settings(tmp_path, url, seconds=1.0)).check_out(tmp_path / 'job' / 'project', lambda: False)
    assert git_children() == []
