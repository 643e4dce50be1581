"""Commands an API call runs (Ansible listing hosts for a plan preview), under a time limit and a
memory limit, so that no request (a huge inventory, a slow one) can hold the API or its memory.

    finished = run_bounded([command, ...], cwd=..., env=..., seconds=30, memory_bytes=2 << 30)

The commands run at once, each in its own session (a timeout kills all it started) with
RLIMIT_AS set before it execs (no preexec_fn: the API calls this from threads). A command
that failed having used most of its allowance (MEMORY_SHARE of it, resident) reached the memory
limit: Python and Ansible turn an allocation that fails into many different errors (some
swallowed, such as 'YAML parsing failed.'), so the peak size the kernel reports decides, or
the error when it is printed.
(Callers make a swallowed error fail the command, as ANSIBLE_INVENTORY_UNPARSED_FAILED does.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

# A child whose peak resident size reached this share of its address-space limit ran out of it.
MEMORY_SHARE = 0.8
POLL_SECONDS = 0.05
# What a failed allocation prints when it is not swallowed (one large allocation fails at once,
# before the resident size grows).
OUT_OF_MEMORY = ('MemoryError', 'Cannot allocate memory', 'out of memory')
_SET_LIMIT_AND_EXEC = ('import os, resource, sys; limit = int(sys.argv[1]); '
                       'resource.setrlimit(resource.RLIMIT_AS, (limit, limit)); os.execv(sys.argv[2], sys.argv[2:])')


class LimitReached(Exception):
    pass


class TimeLimit(LimitReached):
    pass


class MemoryLimit(LimitReached):
    pass


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    peak_bytes: int


def run_bounded(commands: list[list[str]], cwd: str, env: dict, seconds: float,
                memory_bytes: int | None) -> list[Finished]:
    """Each command's outcome, in order; TimeLimit when they are not all done within `seconds`
    (every process they started is killed), MemoryLimit when one ran out of `memory_bytes`."""
    running = []
    try:
        for command in commands:
            stdout, stderr = tempfile.TemporaryFile(), tempfile.TemporaryFile()
            argv = [sys.executable, '-c', _SET_LIMIT_AND_EXEC, str(memory_bytes)] + command if memory_bytes else command
            process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
            running.append([process, stdout, stderr, None])
        deadline = time.monotonic() + seconds
        while any(entry[3] is None for entry in running):
            for entry in running:
                if entry[3] is None:
                    pid, status, usage = os.wait4(entry[0].pid, os.WNOHANG)
                    if pid:
                        entry[0].returncode = os.waitstatus_to_exitcode(status)
                        entry[3] = usage.ru_maxrss * 1024
            if any(entry[3] is None for entry in running):
                if time.monotonic() >= deadline:
                    raise TimeLimit('not done within %g seconds' % seconds)
                time.sleep(POLL_SECONDS)
        finished = [Finished(process.returncode, _read(stdout), _read(stderr), peak)
                    for process, stdout, stderr, peak in running]
    finally:
        for process, stdout, stderr, peak in running:
            _kill_session(process)
            stdout.close()
            stderr.close()
    if memory_bytes:
        for outcome in finished:
            if outcome.returncode != 0 and (outcome.peak_bytes >= MEMORY_SHARE * memory_bytes
                                            or any(sign in outcome.stderr for sign in OUT_OF_MEMORY)):
                raise MemoryLimit('used %d MiB of the %d MiB allowed' % (outcome.peak_bytes >> 20, memory_bytes >> 20))
    return finished


def _kill_session(process: subprocess.Popen) -> None:
    """Whatever the command started (it leads its own session) is killed; the command is reaped."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if process.returncode is None:
        try:
            os.waitpid(process.pid, 0)
        except ChildProcessError:
            pass
        process.returncode = -signal.SIGKILL


def _read(handle) -> str:
    handle.seek(0)
    return handle.read().decode(errors='replace')
