"""A job's playbook project from git (DBFLEET_PROJECT_URL): fetched before the job, run from one commit.

Workers share nothing but Redis and the store, so each keeps its own cache of the repository: a
bare repository under its state directory (var_dir/projects/<hash of the URL without credentials>).
Before each job the worker fetches the configured branch into it, resolves the branch to a commit and writes
that commit's tree into the job's private directory (`read-tree` into a private index, then
`checkout-index`): the job never sees a tree that moves, whatever later fetches bring, and two
jobs of one worker never share a working tree. The job's run removes the copy when it ends.

git runs without a shell, with the URL's protocol the only one allowed (GIT_ALLOW_PROTOCOL),
never prompting (GIT_TERMINAL_PROMPT=0, ssh in batch mode), in its own process group, killed at
DBFLEET_PROJECT_FETCH_SECONDS or when the job is canceled or past its deadline. Nothing keeps
the URL on disk (no remote is configured, no FETCH_HEAD is written), and whatever git prints
is shown with the URL's credentials removed (dbfleet.git_remote).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

from dbfleet.git_remote import protocol, redact_text, redact_url, without_credentials
from dbfleet.paths import private_directory

COMMIT = re.compile(r'^[0-9a-f]{40}$')
# How often a running git is checked for the job's cancel and deadline.
POLL_SECONDS = 0.1
# Time limit of the local steps (resolving a ref, writing a tree): no network, so they are quick.
LOCAL_SECONDS = 300.0


class ProjectError(Exception):
    """The project could not be fetched or checked out: the job fails with this message."""


class ProjectStopped(ProjectError):
    """The job was canceled or reached its deadline while git ran."""


class ProjectCache:
    def __init__(self, settings):
        self.url: str = settings.project_url
        self.branch: str = settings.project_branch
        self.fetch_seconds: float = settings.project_fetch_seconds
        self.shown_url = redact_url(self.url)
        # Named by the URL without its credentials: nothing on disk derives from a password, and
        # rotating one keeps the cache.
        self.directory = Path(settings.var_dir) / 'projects' / hashlib.sha256(
            without_credentials(self.url).encode()).hexdigest()[:24]
        self.git = shutil.which('git')

    def check_out(self, target: Path, should_stop: Callable[[], bool], commit: str | None = None) -> str:
        """Fetch the branch, write the commit it points to (or `commit`, one the branch had: the
        commit a job's coordinator runs, for the workers that run some of its lanes) into `target`
        (made anew, 0700) and return that commit. ProjectError when it cannot; ProjectStopped when
        should_stop() said so."""
        if self.git is None:
            raise ProjectError('git is not installed on this worker: DBFLEET_PROJECT_URL needs it')
        private_directory(self.directory.parent)
        with _FileLock(self.directory.parent / ('%s.lock' % self.directory.name), should_stop):
            if not (self.directory / 'HEAD').is_file():
                private_directory(self.directory)
                self._git(['init', '--quiet', '--bare'], should_stop)
            ref = 'refs/dbfleet/%s' % self.branch
            self._fetch(ref, should_stop)
            wanted = commit
            try:
                commit = self._git(['rev-parse', '--verify', '--quiet', '%s^{commit}' % (wanted or ref)],
                                   should_stop).strip()
            except ProjectStopped:
                raise
            except ProjectError:
                if wanted is None:
                    raise
                raise ProjectError('commit %s is no longer on branch %r of %s' % (wanted, self.branch,
                                                                                 self.shown_url)) from None
            if not COMMIT.match(commit) or (wanted is not None and commit != wanted):
                raise ProjectError('branch %r of %s resolved to %r, not a commit' % (self.branch, self.shown_url,
                                                                                   commit[:80]))
            self._write_tree(commit, target, should_stop)
        return commit

    def _fetch(self, ref: str, should_stop: Callable[[], bool]) -> None:
        refspec = '+refs/heads/%s:%s' % (self.branch, ref)
        try:
            self._git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', self.url, refspec],
                      should_stop, seconds=self.fetch_seconds, network=True)
        except ProjectStopped:
            raise
        except ProjectError as exc:
            if "couldn't find remote ref" in str(exc):
                raise ProjectError('branch %r does not exist in %s' % (self.branch, self.shown_url)) from None
            raise ProjectError('fetching branch %r of %s failed: %s' % (self.branch, self.shown_url, exc)) from None

    def _write_tree(self, commit: str, target: Path, should_stop: Callable[[], bool]) -> None:
        shutil.rmtree(target, ignore_errors=True)  # a previous attempt's copy
        private_directory(target)
        index = target.parent / ('.%s.index' % target.name)
        tree = {'GIT_INDEX_FILE': str(index), 'GIT_WORK_TREE': str(target)}
        try:
            self._git(['read-tree', commit], should_stop, extra=tree)
            self._git(['checkout-index', '--all', '--force'], should_stop, extra=tree, cwd=target)
        finally:
            index.unlink(missing_ok=True)

    def _git(self, args: list[str], should_stop: Callable[[], bool], seconds: float = LOCAL_SECONDS,
             network: bool = False, extra: dict | None = None, cwd: Path | None = None) -> str:
        env = dict(os.environ, GIT_DIR=str(self.directory), GIT_TERMINAL_PROMPT='0', LC_ALL='C',
                   GIT_ALLOW_PROTOCOL=protocol(self.url), GCM_INTERACTIVE='never', **(extra or {}))
        for name in ('GIT_WORK_TREE', 'GIT_INDEX_FILE'):
            if name not in (extra or {}):
                env.pop(name, None)
        env.setdefault('GIT_SSH_COMMAND', 'ssh -o BatchMode=yes')
        process = subprocess.Popen([self.git, *args], cwd=cwd or self.directory, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        give_up = time.monotonic() + seconds
        while True:
            try:
                out, err = process.communicate(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                stopped = should_stop()
                if stopped or time.monotonic() >= give_up:
                    _kill_group(process)
                    if stopped:
                        raise ProjectStopped('stopped while git %s ran' % args[0]) from None
                    raise ProjectError('git %s took more than %g s%s' % (
                        args[0], seconds, ' (DBFLEET_PROJECT_FETCH_SECONDS)' if network else '')) from None
        if process.returncode != 0:
            lines = [line.strip() for line in (err or out).splitlines() if line.strip()]
            said = next((line for line in lines if line.startswith(('fatal:', 'error:'))),
                        lines[-1] if lines else 'exit code %d' % process.returncode)
            raise ProjectError(redact_text(said if len(said) <= 300 else said[:300] + '...', self.url))
        return out


class _FileLock:
    """One worker's jobs take turns on the cache (fetch, resolve, copy): a fetch never moves the
    branch between another job's resolving it and copying its tree. A job waiting its turn still
    stops when it is canceled or past its deadline."""

    def __init__(self, path: Path, should_stop: Callable[[], bool]):
        self.path = path
        self.should_stop = should_stop

    def __enter__(self):
        self.handle = open(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), 'r+')
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if self.should_stop():
                    self.handle.close()
                    raise ProjectStopped('stopped while waiting for another job to fetch the project') from None
                time.sleep(POLL_SECONDS)

    def __exit__(self, *exc_info) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _kill_group(process: subprocess.Popen) -> None:
    """git and what it started (ssh, a remote helper) go together."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()
