"""Crontab text as Debian's cron (vixie cron 3.0pl1-162) reads it, kept byte for byte.

    tab = parse(text, source='/etc/crontab', system=True)
    tab.entries, tab.errors, tab.text() == text

The rules follow the daemon's own code (entry.c, env.c, do_command.c) and were checked
against /usr/sbin/cron and `crontab -n` on Debian, including its quirks:
- a line is an environment setting when env.c's state machine accepts it (`NAME = value`,
  either side quoted); anything else that is not blank or a comment is a job;
- a time field is read like get_list(): after a valid prefix the rest of the field is
  skipped (`*x` means `*`, `5;` means 5); a single number followed by `/` is an error;
  a range running backwards is empty; names are the first three letters, any case;
- a day-of-month or day-of-week field *starting with* `*` (`*`, `*/2`) makes cron require
  both day fields to match; when both start otherwise, either day field suffices;
- in system tables the command starts right after the one blank that ends the user name;
- in the command, `\\%` gives `%`, `\\\\` gives one backslash (not kept as two, and it escapes
  nothing after it), any other backslash stays; the first unescaped `%` ends the command and
  the rest becomes stdin (see `cron_stdin`);
- the daemon skips a whole file on any syntax error or a missing final newline
  (`Crontab.ignored` says so).
CRLF line endings are kept, and the `\\r` is not part of `Entry.text` or `Entry.command` (the
line as written); cron hands it on as the command's last character, or after a `%` as stdin's:
`as_cron_runs_it(entry)` gives the command and stdin with it, as cron runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER = '#dbfleet:takeover:'
WRAP_VERB = 'cron exec'
BLANKS = ' \t'
SPECIAL = {'yearly': '0 0 1 1 *', 'annually': '0 0 1 1 *', 'monthly': '0 0 1 * *', 'weekly': '0 0 * * 0',
           'daily': '0 0 * * *', 'midnight': '0 0 * * *', 'hourly': '0 * * * *', 'reboot': None}
_MONTHS = ('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec')
_WEEKDAYS = ('sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')
_MAX_TEMPSTR = 100  # get_number()'s buffer: longer tokens are errors in cron
# cron.h's MAX_COMMAND is the command buffer, its NUL included: a command keeps this many bytes.
COMMAND_BYTES = 999
_SCHEDULE_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9._:-]*\Z')


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


_FIELDS = (_Field('minute', 0, 59), _Field('hour', 0, 23), _Field('day-of-month', 1, 31),
           _Field('month', 1, 12, _MONTHS), _Field('day-of-week', 0, 7, _WEEKDAYS))


@dataclass(frozen=True)
class Entry:
    number: int               # 1-based line number
    text: str                 # the line exactly, without its line ending
    timing: str               # time fields as written, whitespace collapsed
    expression: str | None    # for triggers.parse_trigger('cron', ...); None for @reboot or never
    reboot: bool              # @reboot: recorded, never scheduled
    user: str | None          # the user field of system crontabs
    command: str              # what cron hands the shell
    stdin: str | None         # what cron writes to the command's stdin; None without a `%`
    env: dict[str, str]       # environment lines in effect at this line
    timezone: str | None      # CRON_TZ in effect (Debian's cron itself ignores it)
    observed: str | None      # schedule id when the line is wrapped by dbfleet
    command_start: int = 0    # text[command_start:command_end] is the command as written
    command_end: int = 0      # index of the `%` that starts stdin, else len(text)
    day_or: bool = True       # cron's day rule: True when either day field may match
    exact: bool = True        # croniter's defaults on `expression` give cron's fire times
    note: str | None = None   # why not exact (or why it never fires)
    observed_command: str | None = None  # a wrapped line: the command the wrapper runs
    observed_raw: str | None = None      # a wrapped line: its command as written before wrapping
    crlf: bool = False                   # the line ends in \r\n


@dataclass(frozen=True)
class Taken:
    number: int
    text: str                 # the comment line as it is
    schedule_id: str
    original: str             # the line as it was before takeover (exact)


@dataclass(frozen=True)
class LineError:
    source: str
    number: int
    text: str
    reason: str

    def __str__(self) -> str:
        return '%s:%d: %s: %s' % (self.source, self.number, self.reason, self.text)


@dataclass
class Crontab:
    source: str
    system: bool
    lines: list[str]          # each line with its own ending
    entries: list[Entry]
    taken: list[Taken]
    errors: list[LineError]
    warnings: list[LineError] = field(default_factory=list)
    ignored: str | None = None  # why Debian's cron skips this whole file, else None

    def text(self) -> str:
        return ''.join(self.lines)

    def entry(self, number: int) -> Entry | None:
        return next((entry for entry in self.entries if entry.number == number), None)

    def find_observed(self, schedule_id: str) -> Entry | None:
        return next((entry for entry in self.entries if entry.observed == str(schedule_id)), None)

    def find_taken(self, schedule_id: str) -> Taken | None:
        return next((taken for taken in self.taken if taken.schedule_id == str(schedule_id)), None)


class _Bad(ValueError):
    """A line that is not a usable job; the message is cron's own wording where it has one.
    cron_accepts: cron loads the line anyway (an empty command), so the file still runs."""

    def __init__(self, reason: str, cron_accepts: bool = False):
        super().__init__(reason)
        self.cron_accepts = cron_accepts


def split_lines(text: str) -> list[str]:
    """Lines with their endings. Only `\\n` ends a line for cron (str.splitlines also splits
    on form feeds and Unicode separators, which would break byte-exact round trips)."""
    parts = text.split('\n')
    lines = [part + '\n' for part in parts[:-1]]
    return lines + [parts[-1]] if parts[-1] else lines


def line_body(line: str) -> str:
    """A line without its ending (`\\n` or `\\r\\n`)."""
    if line.endswith('\r\n'):
        return line[:-2]
    return line[:-1] if line.endswith('\n') else line


def parse(text: str, source: str = '<crontab>', system: bool = False) -> Crontab:
    lines = split_lines(text)
    tab = Crontab(source, system, lines, [], [], [])
    env: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        body = line_body(line)
        stripped = body.lstrip(BLANKS)
        if stripped.startswith(MARKER):
            taken = _taken(number, body)
            if taken:
                tab.taken.append(taken)
            continue
        if not stripped or stripped.startswith('#'):
            continue
        setting = env_setting(stripped)
        if setting is not None:
            env[setting[0]] = setting[1]
            continue
        try:
            entry = _entry(number, body, system, dict(env), crlf=line.endswith('\r\n'))
        except _Bad as error:
            tab.errors.append(LineError(source, number, body, str(error)))
            if tab.ignored is None and not error.cron_accepts:
                tab.ignored = 'line %d: %s; Debian\'s cron skips the whole file' % (number, error)
            continue
        tab.entries.append(entry)
        cut = _cut_reason(body[entry.command_start:])
        if cut:
            tab.warnings.append(LineError(source, number, body, cut))
    _file_warnings(tab)
    return tab


def _file_warnings(tab: Crontab) -> None:
    if tab.lines and not tab.lines[-1].endswith('\n'):
        reason = 'no newline at the end of the file; Debian\'s cron skips the whole file'
        tab.warnings.append(LineError(tab.source, len(tab.lines), line_body(tab.lines[-1]), reason))
        tab.ignored = tab.ignored or reason
    crlf = [number for number, line in enumerate(tab.lines, 1) if line.endswith('\r\n')]
    if crlf:
        tab.warnings.append(LineError(tab.source, crlf[0], line_body(tab.lines[crlf[0] - 1]),
                                      'CRLF line endings: cron passes the \\r to the shell as part of the command'))


def _taken(number: int, body: str) -> Taken | None:
    if not body.startswith(MARKER):
        return None
    schedule_id, space, original = body[len(MARKER):].partition(' ')
    if not space or not _SCHEDULE_ID.match(schedule_id):
        return None
    return Taken(number, body, schedule_id, original)


def env_setting(text: str) -> tuple[str, str] | None:
    """(name, value) when cron's load_env() takes `text` (a line without leading blanks) as
    an environment setting, else None. A port of its state machine, quirks included: a
    value quoted or not loses trailing blanks, and a value wrapped in matching quotes loses
    one more pair of them."""
    name, value, i, n = '', '', 0, len(text)
    quote = text[0] if text[:1] in ('"', "'") else ''
    i += bool(quote)
    while i < n and (text[i] != quote if quote else text[i] not in '= \t\n\r\v\f'):
        if quote and text[i] == '=':
            return None
        name += text[i]
        i += 1
    if quote:
        if i >= n:
            return None
        i += 1
    while i < n and text[i] != '=':   # EQ1: only blanks before the '='
        if not text[i].isspace():
            return None
        i += 1
    if i >= n:
        return None
    i += 1
    while i < n and text[i].isspace():  # EQ2
        i += 1
    if i >= n:
        return None
    quote = text[i] if text[i] in ('"', "'") else ''
    i += bool(quote)
    if quote:
        end = text.find(quote, i)
        if end < 0 or text[end + 1:].strip() != '':
            return None
        value = text[i:end]
    else:
        value = text[i:]
    value = value.rstrip()
    if len(value) >= 2 and value[0] in ('"', "'") and value[-1] == value[0]:
        value = value[1:-1]
    return name, value


class _Reader:
    """get_char()/Skip_Blanks over one line; '\\n' stands for the end of the line."""

    def __init__(self, text: str, pos: int = 0):
        self.text, self.pos = text, pos

    @property
    def ch(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else '\n'

    def next(self) -> None:
        self.pos += 1

    def skip_blanks(self) -> None:
        while self.ch in BLANKS:
            self.pos += 1

    def skip_nonblanks(self) -> None:
        while self.ch not in ' \t\n':
            self.pos += 1


def _entry(number: int, body: str, system: bool, env: dict[str, str], crlf: bool = False) -> Entry:
    reader = _Reader(body, len(body) - len(body.lstrip(BLANKS)))
    start = reader.pos
    if reader.ch == '@':
        name = _special(reader)
        timing = '@' + name
        schedule = dict(expression=SPECIAL[name], day_or=True, exact=True, note=None)
    else:
        sets, stars = [], []
        for spec in _FIELDS:
            stars.append(reader.ch == '*')
            sets.append(_get_list(reader, spec))
        timing = ' '.join(body[start:reader.pos].split())
        schedule = _schedule(sets, stars)
    reader.skip_blanks()
    user = None
    if system:
        user, reader.pos = _user(body, reader.pos)
    elif reader.ch == '*':
        raise _Bad('bad command')
    command_start = reader.pos
    raw = body[command_start:]
    command, stdin, command_end = cron_command(cron_reads(raw))
    if stdin is None:
        command_end = len(raw)  # a cut command still ends, as written, at the end of the line
    if not command.strip(BLANKS):
        raise _Bad('missing command', cron_accepts=True)
    return Entry(number=number, text=body, timing=timing, reboot=timing == '@reboot', user=user,
                 command=command, stdin=stdin, env=env, timezone=env.get('CRON_TZ'),
                 command_start=command_start, command_end=command_start + command_end, crlf=crlf,
                 **schedule, **_observed(raw[:command_end]))


def _special(reader: _Reader) -> str:
    """The name after `@`; get_string() also eats the blank that ends it."""
    reader.next()
    start = reader.pos
    reader.skip_nonblanks()
    name = reader.text[start:reader.pos]
    if name not in SPECIAL:  # strcmp(): lower case only
        raise _Bad('bad time specifier')
    reader.next()
    return name


def _user(body: str, pos: int) -> tuple[str, int]:
    end = pos
    while end < len(body) and body[end] not in BLANKS:
        end += 1
    if end == pos:
        raise _Bad('missing user name')
    if end >= len(body):
        raise _Bad('missing command after the user name')
    return body[pos:end], end + 1


def _get_list(reader: _Reader, spec: _Field) -> set[int]:
    values: set[int] = set()
    while True:
        _get_range(reader, spec, values)
        if reader.ch != ',':
            break
        reader.next()
    reader.skip_nonblanks()  # cron ignores whatever follows a valid prefix of the field
    reader.skip_blanks()
    if spec.name == 'day-of-week' and values & {0, 7}:
        values |= {0, 7}
    return values


def _get_range(reader: _Reader, spec: _Field, values: set[int]) -> None:
    if reader.ch == '*':
        first, last = spec.low, spec.high
        reader.next()
    else:
        first = _get_number(reader, spec, spec.names, spec.low)
        if reader.ch != '-':
            if reader.ch == '/' or not spec.low <= first <= spec.high:
                raise _Bad('bad ' + spec.name)
            values.add(first)
            return
        reader.next()
        last = _get_number(reader, spec, spec.names, spec.low)
    step = 1
    if reader.ch == '/':
        reader.next()
        step = _get_number(reader, spec, (), 0)
        if step <= 0:
            raise _Bad('bad ' + spec.name)
    if not (spec.low <= first <= spec.high and spec.low <= last <= spec.high):
        raise _Bad('bad ' + spec.name)
    values.update(range(first, last + 1, step))


def _get_number(reader: _Reader, spec: _Field, names: tuple[str, ...], low: int) -> int:
    start = reader.pos
    while reader.ch.isascii() and reader.ch.isalnum():
        reader.next()
    token = reader.text[start:reader.pos]
    if not token or len(token) >= _MAX_TEMPSTR:
        raise _Bad('bad ' + spec.name)
    if token.lower() in names:
        return names.index(token.lower()) + low
    if token.isdigit():
        return int(token)
    raise _Bad('bad ' + spec.name)


def _schedule(sets: list[set[int]], stars: list[bool]) -> dict:
    """The croniter expression for cron's sets, and whether croniter's default day rule
    (OR unless a day field is exactly `*`) gives cron's (AND when a day field starts with `*`)."""
    minute, hour, dom, month, dow = sets
    dow = {day % 7 for day in dow}
    day_or = not (stars[2] or stars[4])
    days, exact, note = _days(dom, dow, stars, day_or)
    if not minute or not hour or not month or days is None:
        return dict(expression=None, day_or=day_or, exact=False,
                    note='never runs: a field selects nothing (a range written backwards?)')
    fields = [_render(minute, 0, 59, stars[0]), _render(hour, 0, 23, stars[1]), days[0],
              _render(month, 1, 12, stars[3]), days[1]]
    return dict(expression=' '.join(fields), day_or=day_or, exact=exact, note=note)


def _days(dom: set[int], dow: set[int], stars: list[bool], day_or: bool) -> tuple[tuple[str, str] | None, bool, str | None]:
    dom_all, dow_all = dom == set(range(1, 32)), dow == set(range(7))
    if day_or:
        if dom_all or dow_all:
            return ('*', '*'), True, None
        if not dom and not dow:
            return None, False, None
        return (_render(dom, 1, 31, False) if dom else '*', _render(dow, 0, 6, False) if dow else '*'), True, None
    if not dom or not dow:
        return None, False, None
    if dom_all or dow_all:
        return (_render(dom, 1, 31, stars[2]), _render(dow, 0, 6, stars[4])), True, None
    note = ('cron runs this only on days matching both day fields (one starts with *); croniter '
            'needs day_or=False for that')
    return (_render(dom, 1, 31, stars[2]), _render(dow, 0, 6, stars[4])), False, note


def _render(values: set[int], low: int, high: int, star: bool) -> str:
    """A field croniter reads as exactly `values`: `*` or `*/N` when written with a star (the
    scheduler tells hourly jobs by it), else ranges and lists of numbers."""
    ordered = sorted(values)
    if star or len(values) == high - low + 1:
        for step in range(1, high - low + 2):
            if ordered == list(range(low, high + 1, step)):
                return '*' if step == 1 else '*/%d' % step
    steps = {b - a for a, b in zip(ordered, ordered[1:])}
    if len(ordered) >= 3 and len(steps) == 1:
        step = steps.pop()
        return '%d-%d' % (ordered[0], ordered[-1]) + ('/%d' % step if step > 1 else '')
    return ','.join(str(value) for value in ordered)


def as_cron_runs_it(entry: Entry) -> tuple[str, str | None]:
    """(command, stdin) exactly as cron hands them to the shell: a CRLF line's `\\r` included."""
    if not entry.crlf:
        return entry.command, entry.stdin
    command, stdin, _ = cron_command(cron_reads(entry.text[entry.command_start:] + '\r'))
    return command, stdin


def cron_reads(raw: str) -> str:
    """The command part of a line as cron keeps it: entry.c reads it with get_string() into a
    buffer of MAX_COMMAND (1000) bytes, so only its first 999 bytes survive, and the C string ends
    at a NUL byte. Bytes cut inside a UTF-8 character stay as they are (surrogateescape), which is
    also how they reach the shell."""
    data = raw.encode('utf-8', 'surrogateescape').split(b'\0', 1)[0][:COMMAND_BYTES]
    return data.decode('utf-8', 'surrogateescape')


def _cut_reason(raw: str) -> str | None:
    if '\0' in raw:
        return 'a NUL byte in the command: cron runs only what comes before it'
    if cron_reads(raw) != raw:
        return 'command longer than %d bytes: cron runs only its first %d' % (COMMAND_BYTES, COMMAND_BYTES)
    return None


def cron_command(raw: str) -> tuple[str, str | None, int]:
    """(command, stdin, end) from the command part of a line as Debian's do_command.c splits
    it: `\\%` -> `%`, `\\\\` -> `\\`, other backslashes kept; `end` is the index of the first
    unescaped `%` (len(raw) without one)."""
    out: list[str] = []
    escaped = False
    for index, ch in enumerate(raw):
        if escaped:
            if ch in '%\\':
                out[-1] = ch
            else:
                out.append(ch)
            escaped = False
        elif ch == '\\':
            out.append(ch)
            escaped = True
        elif ch == '%':
            return ''.join(out), cron_stdin(raw[index + 1:]), index
        else:
            out.append(ch)
    return ''.join(out), None, len(raw)


def cron_stdin(raw: str) -> str:
    """What cron writes to the command's stdin for the text after the first unescaped `%`:
    `%` -> newline, `\\%` -> `%`, a backslash before anything else stays (and a backslash after
    a backslash escapes again), a newline is added when the data does not end with one."""
    out: list[str] = []
    escaped = need_newline = False
    for ch in raw:
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


def _observed(raw: str) -> dict:
    """schedule id, wrapped command and original text of a line wrapped by edit.wrapped_line."""
    match = re.match(r"(?P<wrapper>'(?:[^']|'\\'')*'|[^\s']+) %s (?P<id>\S+) -- '" % WRAP_VERB, raw)
    if not match or not _SCHEDULE_ID.match(match['id']):
        return dict(observed=None)
    original, i = [], match.end()
    while i < len(raw):
        if raw.startswith("'\\''", i):
            original.append("'")
            i += 4
        elif raw[i] == "'":
            break
        else:
            original.append(raw[i])
            i += 1
    if i != len(raw) - 1:
        return dict(observed=None)
    text = ''.join(original)
    return dict(observed=match['id'], observed_raw=text, observed_command=cron_command(text)[0])


def schedule_id_ok(schedule_id: str) -> bool:
    return bool(_SCHEDULE_ID.match(schedule_id))
