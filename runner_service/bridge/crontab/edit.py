"""Line edits for the crontab bridge: wrap a job in dbfleet's reporting wrapper (observe),
comment it out (takeover), put it back exactly (revert), write a new line for an edited
schedule (sync back). Pure functions on text; files.py does the I/O.

Wrapping quotes the command *as written* (before cron's `%` and backslash processing) in
single quotes, each `'` written `'\\''`. That survives both layers: cron's escapes (`\\%`,
`\\\\`) are two-character tokens whose meaning does not depend on the quotes around them,
and `\\'` is not one of them, so cron turns the quoted text into exactly the shell word whose
value is the command cron would have run; the shell then hands it to the wrapper unchanged.
The original text is recoverable from the wrapped line, so unwrapping is byte-exact.
"""

from __future__ import annotations

import difflib
import re

from .syntax import (BLANKS, COMMAND_BYTES, MARKER, WRAP_VERB, Crontab, Entry, Taken, cron_reads, line_body, parse,
                     schedule_id_ok, split_lines)

_SAFE_WORD = re.compile(r'[A-Za-z0-9_./+:@=,-]+\Z')


def wrapped_line(entry: Entry, schedule_id: str, wrapper: str) -> str:
    """The entry's line with its command run as `<wrapper> cron exec <id> -- '<command>'`;
    time fields, user, blanks and the `%` stdin part stay as written."""
    schedule_id = str(schedule_id)
    if entry.observed:
        raise ValueError('line %d is already wrapped for schedule %s' % (entry.number, entry.observed))
    if not schedule_id_ok(schedule_id):
        raise ValueError('schedule id %r: use letters, digits and . _ : - only' % schedule_id)
    raw = entry.text[entry.command_start:entry.command_end]
    call = '%s %s %s -- %s' % (_wrapper_word(wrapper), WRAP_VERB, schedule_id, shell_quote(raw))
    _check_cron_keeps(call + entry.text[entry.command_end:], 'line %d wrapped' % entry.number)
    return entry.text[:entry.command_start] + call + entry.text[entry.command_end:]


def unwrapped_line(entry: Entry) -> str:
    """The exact line a wrapped entry had before wrapped_line."""
    if entry.observed_raw is None:
        raise ValueError('line %d is not wrapped by dbfleet' % entry.number)
    return entry.text[:entry.command_start] + entry.observed_raw + entry.text[entry.command_end:]


def taken_line(line_text: str, schedule_id: str) -> str:
    """The line commented out by takeover; restored_line gives it back exactly."""
    schedule_id = str(schedule_id)
    if not schedule_id_ok(schedule_id):
        raise ValueError('schedule id %r: use letters, digits and . _ : - only' % schedule_id)
    _one_line(line_text)
    return MARKER + schedule_id + ' ' + line_text


def restored_line(taken: Taken) -> str:
    return taken.original


def entry_line(timing: str, command: str, stdin: str | None = None, user: str | None = None) -> str:
    """A new line that cron reads back as exactly (timing, user, command, stdin), escaping
    `%` and the backslashes cron would otherwise eat; ValueError when cron cannot express it."""
    timing = ' '.join(timing.split())
    _one_line(command)
    if stdin is not None and '\r' in stdin:
        raise ValueError('stdin: carriage returns cannot be written in a crontab line')
    if not command.strip(BLANKS) or command[0] in BLANKS:
        raise ValueError('command %r: cron drops blanks before a command and needs one' % command)
    if user is not None and (not user or any(ch in user for ch in ' \t\n\r')):
        raise ValueError('user %r: give one user name without blanks' % user)
    escaped = _escape_command(command, stdin is not None)
    head = timing + ' ' + (user + ' ' if user is not None else '') + escaped
    for tail in _stdin_candidates(stdin):
        _check_cron_keeps(escaped + tail, 'the command')
        line = head + tail
        tab = parse(line + '\n', system=user is not None)
        if tab.errors:
            raise ValueError('%s: %s' % (tab.errors[0].reason, line))
        entry = tab.entries[0] if len(tab.entries) == 1 else None
        if entry and (entry.timing, entry.user, entry.command, entry.stdin) == (timing, user, command, stdin):
            return line
    raise ValueError('cron cannot express this command and stdin in one line (stdin must end with a '
                     'newline, and a backslash cannot come right before one)')


def replace_line(crontab: Crontab, number: int, new_text: str) -> str:
    """The whole text with line `number` replaced by `new_text`, its line ending kept."""
    _one_line(new_text)
    if not 1 <= number <= len(crontab.lines):
        raise ValueError('%s has no line %d' % (crontab.source, number))
    lines = list(crontab.lines)
    old = lines[number - 1]
    lines[number - 1] = new_text + old[len(line_body(old)):]
    return ''.join(lines)


def diff(old: str, new: str, source: str) -> str:
    """A unified diff (git's `\\ No newline at end of file` included), '' when equal."""
    if old == new:
        return ''
    return ''.join(difflib.unified_diff(_diff_lines(old), _diff_lines(new), source, source))


def shell_quote(text: str) -> str:
    """One single-quoted sh word; cron leaves `'\\''` alone, so this also survives cron."""
    return "'" + text.replace("'", "'\\''") + "'"


def _wrapper_word(wrapper: str) -> str:
    if not wrapper.startswith('/') or any(ch in wrapper for ch in '%\\\n\r'):
        raise ValueError('wrapper %r: give the absolute path of the dbfleet executable (without %% or '
                         'backslashes)' % wrapper)
    return wrapper if _SAFE_WORD.match(wrapper) else shell_quote(wrapper)


def _escape_command(command: str, has_stdin: bool) -> str:
    """`%` as `\\%`; a backslash doubled only where cron would otherwise pair it with the next
    character (another backslash, a `%`, or the `%` that starts stdin)."""
    out = []
    for index, ch in enumerate(command):
        following = command[index + 1:index + 2]
        if ch == '%':
            out.append('\\%')
        elif ch == '\\' and (following in ('\\', '%') or (not following and has_stdin)):
            out.append('\\\\')
        else:
            out.append(ch)
    return ''.join(out)


def _stdin_candidates(stdin: str | None) -> list[str]:
    """Texts after the command for this stdin, most natural first (cron adds the final
    newline itself); entry_line keeps the first that parses back exactly."""
    if stdin is None:
        return ['']
    escaped = ''.join({'%': '\\%', '\n': '%'}.get(ch, ch) for ch in stdin)
    natural = escaped[:-1] if stdin.endswith('\n') and not stdin.endswith('\n\n') else escaped
    return ['%' + natural, '%' + escaped]


def _check_cron_keeps(command_part: str, what: str) -> None:
    """ValueError when cron would run less than `command_part` (the line from its command on):
    it keeps only the first 999 bytes of a command, and nothing after a NUL."""
    if '\0' in command_part:
        raise ValueError('%s: a NUL byte ends a command for cron' % what)
    if cron_reads(command_part) != command_part:
        raise ValueError('%s: cron runs only the first %d bytes of a command, and this one is %d bytes' % (
            what, COMMAND_BYTES, len(command_part.encode('utf-8', 'surrogateescape'))))


def _one_line(text: str) -> None:
    if '\n' in text or '\r' in text:
        raise ValueError('%r: a crontab line cannot contain a line break' % text)


def _diff_lines(text: str) -> list[str]:
    lines = split_lines(text)
    if lines and not lines[-1].endswith('\n'):
        lines[-1] += '\n\\ No newline at end of file\n'
    return lines
