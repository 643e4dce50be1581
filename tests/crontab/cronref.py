"""What Debian's cron (vixie cron 3.0pl1 with Debian's patches) does with the command part of a
crontab line, rebuilt from cron's C source rather than from dbfleet's code, so the tests can hold
runner_service.bridge.crontab against it. It works on bytes, as C does, and keeps the C names.

Where each step lives in the cron source (Debian package `cron`):
- entry.c, load_entry(): after the time fields (and the user name in system tables) the command
  is "everything up to the next \\n or EOF", read by misc.c get_string() into a buffer of
  MAX_COMMAND (cron.h: 1000) bytes: longer commands are cut to 999 bytes, and a NUL byte ends
  the C string where it stands;
- do_command.c, child_process(), first block (Debian patch fixes/handle-escapes-in-commands):
  one pass over e->cmd with a read pointer `input_data` and a write pointer `p`; after a
  backslash, `%` or `\\` overwrites that backslash (`*--p = ch`), anything else is kept after
  it; the first unescaped `%` is replaced by NUL and `input_data` moves past it: what is left
  is the command, what follows is the input data;
- do_command.c, child_process(), the "child2" writer: only when the input data is not empty, it
  putc()s into the command's stdin pipe: `\\%` -> `%`, `%` -> newline, `\\x` -> `\\x` for every
  other x (a backslash after a backslash is pending again), a backslash pending at the end is
  written, and one newline is added when the last byte written by the loop was not a newline;
- the grandchild execs `SHELL -c COMMAND` (execle in child_process()).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

MAX_COMMAND = 1000   # cron.h
NUL = 0
BACKSLASH, PERCENT, NEWLINE = ord('\\'), ord('%'), ord('\n')


def get_string(line_rest: bytes, size: int = MAX_COMMAND) -> bytes:
    """misc.c get_string(cmd, MAX_COMMAND, file, "\\n") as the command's reader: at most size-1
    bytes are stored, the rest of the line is read and dropped."""
    stored = bytearray()
    for ch in line_rest:
        if ch == NEWLINE:
            break
        if size > 1:
            stored.append(ch)
            size -= 1
    return bytes(stored)


def c_string(buffer: bytes) -> bytes:
    """The C string a buffer holds: everything before its first NUL."""
    end = buffer.find(NUL)
    return buffer if end < 0 else buffer[:end]


def child_process_split(cmd: bytes) -> tuple[bytes, bytes | None]:
    """child_process()'s first block, pointer for pointer on a NUL-terminated copy of e->cmd.
    Returns (e->cmd as execed, input_data) with input_data None when no `%` ended the command
    (cron then writes nothing, as for an empty input_data)."""
    buf = bytearray(c_string(cmd)) + b'\0'
    input_data = p = 0
    escaped = False
    rest = None
    while buf[input_data] != NUL:
        ch = buf[input_data]
        if p != input_data:
            buf[p] = ch
        if escaped:
            if ch in (PERCENT, BACKSLASH):
                p -= 1
                buf[p] = ch
            escaped = False
        elif ch == BACKSLASH:
            escaped = True
        elif ch == PERCENT:
            buf[input_data] = NUL
            input_data += 1
            rest = c_string(bytes(buf[input_data:]))
            break
        input_data += 1
        p += 1
    buf[p] = NUL
    return c_string(bytes(buf)), rest


def child2_writes(input_data: bytes) -> bytes:
    """The bytes the "child2" process putc()s into the command's stdin pipe."""
    out = bytearray()
    if not input_data:       # `if (*input_data && fork() == 0)`: nothing is written
        return bytes(out)
    need_newline = escaped = False
    for ch in input_data:
        if escaped:
            if ch != PERCENT:
                out.append(BACKSLASH)
        elif ch == PERCENT:
            ch = NEWLINE
        escaped = ch == BACKSLASH
        if not escaped:
            out.append(ch)
            need_newline = ch != NEWLINE
    if escaped:
        out.append(BACKSLASH)
    if need_newline:
        out.append(NEWLINE)
    return bytes(out)


def split_command(part: str) -> tuple[str, str | None]:
    """(what `sh -c` gets, what cron writes to its stdin or None without a `%`) for the command
    part of a line (the text after the time fields and user, without the line's \\n)."""
    command, input_data = child_process_split(get_string(part.encode()))
    stdin = None if input_data is None else _text(child2_writes(input_data))
    return _text(command), stdin


def stdin_cron_writes(input_data: str) -> str:
    """What cron writes to stdin for the text after the command's first unescaped `%`."""
    return _text(child2_writes(input_data.encode()))


def _text(data: bytes) -> str:
    # a 999-byte cut can split a UTF-8 character; keep its bytes rather than fail
    return data.decode('utf-8', 'surrogateescape')


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
