"""A reference for what Debian's cron does with a line's command part, written straight from
do_command.c (pointer for pointer) and independent of runner_service.bridge.crontab, plus helpers
that run the result through /bin/sh the way cron does (`sh -c COMMAND`, stdin piped)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path


def split_command(part: str) -> tuple[str, str | None]:
    """child_process(): (command for sh -c, bytes cron writes to stdin or None)."""
    buf = list(part)
    p = i = 0
    escaped = False
    rest = None
    while i < len(buf):
        ch = buf[i]
        if p != i:
            buf[p] = ch
        if escaped:
            if ch == '%' or ch == '\\':
                p -= 1
                buf[p] = ch
            escaped = False
        elif ch == '\\':
            escaped = True
        elif ch == '%':
            rest = part[i + 1:]
            break
        i += 1
        p += 1
    command = ''.join(buf[:p])
    return command, (None if rest is None else stdin_bytes(rest))


def stdin_bytes(data: str) -> str:
    """The grandchild's stdin writer in child_process()."""
    out = []
    need_newline = escaped = False
    for ch in data:
        if escaped:
            if ch != '%':
                out.append('\\')
        elif ch == '%':
            ch = '\n'
        escaped = ch == '\\'
        if not escaped:
            out.append(ch)
            need_newline = ch != '\n'
    if escaped:
        out.append('\\')
    if need_newline:
        out.append('\n')
    return ''.join(out)


def command_part(line: str, system: bool = False) -> str:
    """The text cron takes as the command of a (valid) line: after the time fields, blanks
    skipped; in system tables after the user name and the one blank ending it."""
    match = re.match(r'[ \t]*(@\S+|(\S+[ \t]+){4}\S+)[ \t]*', line)
    rest = line[match.end():]
    if system:
        user, rest = re.match(r'(\S+)[ \t](.*)\Z', rest, re.S).groups()
    return rest


def run_like_cron(line: str, system: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    command, stdin = split_command(command_part(line, system))
    return subprocess.run(['/bin/sh', '-c', command], input=(stdin or '').encode(), capture_output=True,
                          timeout=30, env=env)


def argv_printer(directory: Path) -> Path:
    """A stand-in for the dbfleet executable: prints its argv and stdin as JSON."""
    path = directory / 'dbfleet stub'  # a blank in the path: the wrapper gets quoted too
    path.write_text('#!/usr/bin/python3\nimport json, sys\n'
                    'json.dump({"argv": sys.argv, "stdin": sys.stdin.read()}, sys.stdout)\n')
    path.chmod(0o755)
    return path


def printed(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
