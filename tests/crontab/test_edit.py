"""Line edits: byte-exact round trips, and proof by execution that a wrapped or newly written
line makes cron + /bin/sh run exactly the intended command with the intended stdin."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runner_service.bridge.crontab import (
    MARKER,
    diff,
    entry_line,
    parse,
    replace_line,
    restored_line,
    taken_line,
    unwrapped_line,
    wrapped_line,
)

from .cronref import argv_printer, printed, run_like_cron, stdin_cron_writes

NASTY = [
    'echo "$HOME" \'single\' `date` ; ls',
    "echo '; touch /tmp/pwned; '",
    'echo it\'s; echo "it\'s"; echo \'"\'',
    'date +\\%Y-\\%m-\\%d',
    'printf "a\\\\b"',
    'printf "%%s\\n" x',
    'a\\\\\\%b',
    'cmd with trailing backslash \\',
    'x\\\\%stdin%more',
    "mail -s \"It's 10pm\" joe%Joe,%%Where are your kids?%",
    "echo '\\''",
    'echo $((1+2)) ${HOME} $(id -u) \\$x',
    'tab\there  and  spaces   ',
    "'",
    "''\\''",
    'café ☕ %ünïcode',
]


@pytest.fixture
def stub(tmp_path):
    return argv_printer(tmp_path)


@pytest.mark.parametrize('command', NASTY)
@pytest.mark.parametrize('system', [False, True])
def test_wrapped_line_runs_the_original_command_as_one_argument(command, system, stub, tmp_path):
    line = '*/5\t* * * *  ' + ('root\t ' if system else '') + command
    entry = parse(line + '\n', system=system).entries[0]
    wrapped = wrapped_line(entry, 'sched-42', str(stub))
    done = printed(run_like_cron(wrapped, system))
    assert done['argv'][1:] == ['cron', 'exec', 'sched-42', '--', entry.command]
    assert done['stdin'] == (entry.stdin or '')
    # time fields, user, blanks and the stdin part are untouched
    assert wrapped.startswith(line[:entry.command_start])
    assert wrapped.endswith(line[entry.command_end:])

    again = parse(wrapped + '\n', system=system).entries[0]
    assert again.observed == 'sched-42' and again.observed_command == entry.command
    assert (again.timing, again.user, again.stdin) == (entry.timing, entry.user, entry.stdin)
    assert unwrapped_line(again) == line


def test_nothing_is_injected(stub, tmp_path):
    target = tmp_path / 'pwned'
    for command in ("x '; touch %s; '" % target, 'x "; touch %s; "' % target, "x `touch %s`" % target,
                    'x $(touch %s)' % target, "x \\'; touch %s; '" % target, "x \\\\'; touch %s #" % target):
        entry = parse('* * * * * ' + command + '\n').entries[0]
        done = printed(run_like_cron(wrapped_line(entry, 's1', str(stub))))
        assert done['argv'][-1] == entry.command
        assert not target.exists()


@pytest.mark.parametrize('args, stdin', [
    (['plain'], None),
    (['%', '\\%', '\\\\%', 'a%b%c'], None),
    (["it's", '"q"', '$HOME', '`id`', ';', '&&', '|'], 'line 1\nline 2\n'),
    (['back\\', '\\slash\\\\'], '%percent\\%\n'),
    (['x'], ''),
    (['x'], '\n\n'),
    (['tail\\'], 'a\\\n'),
])
def test_entry_line_runs_exactly(args, stdin, stub):
    command = shlex.quote(str(stub)) + ' ' + ' '.join(shlex.quote(arg) for arg in args)
    line = entry_line('0 3 * * MON-FRI', command, stdin)
    entry = parse(line + '\n').entries[0]
    assert (entry.timing, entry.command, entry.stdin, entry.user) == ('0 3 * * MON-FRI', command, stdin, None)
    done = printed(run_like_cron(line))
    assert done['argv'][1:] == args and done['stdin'] == (stdin or '')

    system = entry_line('@daily', command, stdin, user='root')
    assert printed(run_like_cron(system, system=True))['argv'][1:] == args


@pytest.mark.parametrize('command, stdin', [
    ('', None), (' leading blank', None), ('*glob first', None), ('two\nlines', None), ('x', 'no newline'),
    ('x', '\\\n'), ('x', 'cr\r\n'),
])
def test_entry_line_refuses_what_cron_cannot_express(command, stdin):
    with pytest.raises(ValueError):
        entry_line('* * * * *', command, stdin)


def test_entry_line_refuses_bad_timing_and_user():
    with pytest.raises(ValueError, match='bad hour'):
        entry_line('0 24 * * *', 'x')
    with pytest.raises(ValueError, match='user'):
        entry_line('0 1 * * *', 'x', user='two words')


def test_wrapped_line_refusals(stub):
    entry = parse('* * * * * x\n').entries[0]
    with pytest.raises(ValueError, match='absolute path'):
        wrapped_line(entry, 's', 'dbfleet')
    with pytest.raises(ValueError, match='schedule id'):
        wrapped_line(entry, 'a b', '/usr/bin/dbfleet')
    wrapped = parse(wrapped_line(entry, 's', '/usr/bin/dbfleet') + '\n').entries[0]
    with pytest.raises(ValueError, match='already wrapped'):
        wrapped_line(wrapped, 't', '/usr/bin/dbfleet')
    with pytest.raises(ValueError, match='not wrapped'):
        unwrapped_line(entry)


def test_a_line_cron_would_cut_is_never_written(stub):
    # cron keeps the first 999 bytes of a command (entry.c, get_string into MAX_COMMAND): a wrap or a
    # new line beyond that would run a cut command, its quoting open.
    entry = parse('* * * * * ' + 'x' * 980 + '\n').entries[0]
    with pytest.raises(ValueError, match='only the first 999 bytes of a command, and this one is 1'):
        wrapped_line(entry, 'nightly', '/usr/bin/dbfleet')
    with pytest.raises(ValueError, match='only the first 999 bytes'):
        entry_line('* * * * *', 'y' * 1000)
    with pytest.raises(ValueError, match='only the first 999 bytes'):
        entry_line('* * * * *', 'echo', stdin='z' * 995 + '\n')
    assert parse(entry_line('* * * * *', 'y' * 999) + '\n').entries[0].command == 'y' * 999
    short = parse('* * * * * ' + 'x' * 900 + '\n').entries[0]
    assert parse(wrapped_line(short, 'n', '/usr/bin/dbfleet') + '\n').entries[0].observed == 'n'


def test_takeover_and_revert_round_trip():
    text = 'SHELL=/bin/sh\r\n0 5 * * * backup --all %x\\%y\r\n# keep\n'
    tab = parse(text)
    entry = tab.entries[0]
    taken_text = replace_line(tab, entry.number, taken_line(entry.text, 'job-7'))
    assert taken_text == 'SHELL=/bin/sh\r\n' + MARKER + 'job-7 0 5 * * * backup --all %x\\%y\r\n# keep\n'
    taken_tab = parse(taken_text)
    assert taken_tab.entries == [] and taken_tab.errors == []
    taken = taken_tab.find_taken('job-7')
    assert taken.original == entry.text
    assert replace_line(taken_tab, taken.number, restored_line(taken)) == text


def test_observe_round_trip_in_a_file(stub):
    text = '# mine\nMAILTO=""\n*/10 * * * * /opt/check --quiet "a b" 2>&1 | logger%in%put\n@reboot boot\n0 0 * * * last'
    tab = parse(text)
    observed = replace_line(tab, 3, wrapped_line(tab.entry(3), 'obs1', str(stub)))
    lines_before, lines_after = text.split('\n'), observed.split('\n')
    assert [a == b for a, b in zip(lines_before, lines_after)] == [True, True, False, True, True]
    again = parse(observed)
    entry = again.find_observed('obs1')
    assert entry.number == 3 and entry.observed_command == tab.entry(3).command
    assert replace_line(again, 3, unwrapped_line(entry)) == text


def test_replace_line_keeps_endings_and_everything_else():
    text = 'a\r\n* * * * * b\nc'
    tab = parse(text)
    assert replace_line(tab, 1, 'x') == 'x\r\n* * * * * b\nc'
    assert replace_line(tab, 3, 'y') == 'a\r\n* * * * * b\ny'
    with pytest.raises(ValueError):
        replace_line(tab, 4, 'z')
    with pytest.raises(ValueError):
        replace_line(tab, 1, 'two\nlines')


def test_diff():
    assert diff('a\n', 'a\n', 'f') == ''
    assert diff('a\nb\n', 'a\nc\n', '/etc/cron.d/x') == (
        '--- /etc/cron.d/x\n+++ /etc/cron.d/x\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n')
    assert '\\ No newline at end of file' in diff('a\nb', 'a\nc', 'f')


# Hypothesis: commands made of the characters that matter to cron and the shell.
_CHARS = st.sampled_from(list('ab \t%\\\'"$`;&|*#=') + ['é'])
_COMMANDS = st.text(_CHARS, min_size=1, max_size=30).filter(
    lambda text: text[0] not in ' \t*' and text.strip(' \t'))
_STDIN = st.none() | st.text(st.sampled_from(list('x %\\\n')), max_size=12)


@given(command=_COMMANDS, stdin=_STDIN, system=st.booleans())
@settings(max_examples=400, deadline=None)
def test_entry_line_parses_back(command, stdin, system):
    user = 'root' if system else None
    try:
        line = entry_line('*/5 1-3 * * sun', command, stdin, user)
    except ValueError:
        assume(False)
    entry = parse(line + '\n', system=system).entries[0]
    assert (entry.command, entry.stdin, entry.user) == (command, stdin, user)


@given(raw=st.text(st.sampled_from(list('x %\\')), max_size=12))
@settings(max_examples=300, deadline=None)
def test_entry_line_accepts_every_stdin_cron_can_write(raw):
    stdin = stdin_cron_writes(raw)  # whatever cron can write, by do_command.c's rules
    line = entry_line('* * * * *', 'x', stdin)
    assert parse(line + '\n').entries[0].stdin == stdin


@given(raw=st.text(st.sampled_from(list('ab %\\\'"$`;')), min_size=1, max_size=30), system=st.booleans())
@settings(max_examples=400, deadline=None)
def test_wrap_unwrap_round_trip(raw, system):
    line = '0\t0 * * *  ' + ('root ' if system else '') + raw
    tab = parse(line + '\n', system=system)
    assume(tab.entries)
    entry = tab.entries[0]
    wrapped = wrapped_line(entry, 's9', '/usr/local/bin/dbfleet')
    again = parse(wrapped + '\n', system=system).entries[0]
    assert again.observed == 's9'
    assert again.observed_command == entry.command and again.stdin == entry.stdin
    assert unwrapped_line(again) == line


@given(raw=st.text(st.sampled_from(list('ab %\\\'"$`;')), min_size=1, max_size=20))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_wrapped_line_executes_exactly(raw, stub):
    tab = parse('* * * * * ' + raw + '\n')
    assume(tab.entries)
    entry = tab.entries[0]
    done = printed(run_like_cron(wrapped_line(entry, 's9', str(stub))))
    assert done['argv'][1:] == ['cron', 'exec', 's9', '--', entry.command]
    assert done['stdin'] == (entry.stdin or '')
