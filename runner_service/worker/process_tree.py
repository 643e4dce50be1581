"""A process's descendants, found and ended whatever they did to leave: Linux only.

    become_subreaper()           # orphans below this process are re-parented to it, not to init
    die_with_parent(signal)      # this process gets `signal` when the one that forked it dies
    descendants(pid)             # every live process below pid, by the parent links in /proc
    kill_descendants(pid)        # SIGKILL them all, again until none is left; reap our own

A job's play can start processes that leave its process group (setsid, nohup), its environment
(`env -i`, sudo, `su -`) and its parent chain (a double fork re-parents to init). A work horse that
is a child subreaper keeps the last kind below it too, so its descendants are all there is to kill.
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
MAX_ROUNDS = 50  # a fork bomb outpacing SIGKILL still ends: each round kills the newest generation


def _prctl(option: int, value) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux: the environment marker is all there is
        return False


def become_subreaper() -> bool:
    return _prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1))


def is_subreaper() -> bool:
    flag = ctypes.c_int(0)
    return _prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag)) and flag.value != 0


def die_with_parent(signum: int, parent_pid: int) -> bool:
    """Ask for `signum` when the parent dies; if it died before the request, act on it now."""
    done = _prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signum))
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)
    return done


def _parents() -> dict[int, tuple[int, str]]:
    """{pid: (parent pid, state)} of every process in /proc now."""
    table = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(')', 1)[1].split()  # the command name may hold spaces and parentheses
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int, table: dict[int, tuple[int, str]] | None = None) -> list[int]:
    """Every process below pid, zombies included, parents before their children."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in (_parents() if table is None else table).items():
        children.setdefault(parent, []).append(child)
    found, frontier = [], [pid]
    while frontier:
        below = [child for parent in frontier for child in children.get(parent, ())]
        found.extend(below)
        frontier = below
    return found


def kill_descendants(pid: int | None = None, spare: frozenset[int] = frozenset()) -> int:
    """SIGKILL every live process below pid (this process by default) except `spare` and what
    runs below them, until a round finds none; our own children are reaped. Returns how many."""
    pid = os.getpid() if pid is None else pid
    killed: set[int] = set()
    for _ in range(MAX_ROUNDS):
        table = _parents()
        spared = set(spare).union(*(descendants(spared_pid, table) for spared_pid in spare))
        living = [child for child in descendants(pid, table) if child not in spared and table[child][1] != 'Z']
        for child in living:
            try:
                os.kill(child, signal.SIGKILL)
                killed.add(child)
            except (ProcessLookupError, PermissionError):
                pass
        if not living:
            break
    if pid == os.getpid():
        _reap(child for child, (parent, state) in _parents().items()
              if parent == pid and child not in spare and (child in killed or state == 'Z'))
    return len(killed)


def _reap(children) -> None:
    """Collect the exit status of our children that were killed (or had already ended)."""
    for child in children:
        try:
            os.waitpid(child, 0)
        except ChildProcessError:  # collected meanwhile by whoever started it
            pass
