"""The command and stdin dbfleet reads from a crontab line, held against cron itself: first
against what /usr/sbin/cron was recorded doing, then against the reference rebuilt from cron's
source (cronref: entry.c, misc.c get_string(), do_command.c child_process()) for any line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner_service.bridge.crontab import as_cron_runs_it, parse

from . import cronref

# Each row: a line, then what /usr/sbin/cron (3.0pl1-162) handed `sh -c` and wrote to stdin for
# it, recorded with a SHELL that dumps its argv and stdin.
OBSERVED = [
    (r'* * * * * t1 a\%b', 't1 a%b', None),
    (r'* * * * * t2 a\\b', 't2 a\\b', None),            # `\\` gives one backslash
    (r'* * * * * t3 a\\%b', 't3 a\\', 'b\n'),           # ... and escapes nothing after it
    (r'* * * * * t4 a\xb', 't4 a\\xb', None),
    ('* * * * * t5 a%b\\%c%d\\\\e\\', 't5 a', 'b%c\nd\\\\e\\\n'),
    ('* * * * * t6 a\\', 't6 a\\', None),
    ('* * * * * t7 a%', 't7 a', ''),
    ('* * * * * t8 a%b%', 't8 a', 'b\n'),
    ('* * * * * t9 a%%', 't9 a', '\n'),
    ('* * * * * t10 a%x\\\\%y', 't10 a', 'x\\%y\n'),
    ('* * * * * t11 a\\\\\\%b', 't11 a\\%b', None),
    ('* * * * * t12 a%x\\\\\\%y%z\\\\\\\\%w', 't12 a', 'x\\\\%y\nz\\\\\\%w\n'),
    ('*\t*\t*\t*\t*\t\tt13 lead tabs trailing spaces   ', 't13 lead tabs trailing spaces   ', None),
    ('*x * * * * t15 star junk', 't15 star junk', None),
    ('* * * * * t16 a\\\\\\\\%b', 't16 a\\\\', 'b\n'),
]


@pytest.mark.parametrize('line, command, stdin', OBSERVED)
def test_percent_and_backslash_rules_observed_on_debian_cron(line, command, stdin):
    entry = parse(line + '\n').entries[0]
    assert (entry.command, entry.stdin) == (command, stdin)


@pytest.mark.parametrize('line, command, stdin', OBSERVED)
def test_the_reference_reproduces_what_cron_was_observed_doing(line, command, stdin):
    """The reference is only worth comparing against if real cron agrees with it."""
    assert cronref.split_command(cronref.command_part(line)) == (command, stdin)


# The characters cron's command reader and do_command.c treat apart, plus a two-byte one.
_PART = st.text(st.sampled_from(list('a %\\\t\r') + ['é']), min_size=1, max_size=24)


@given(part=_PART, system=st.booleans(), crlf=st.booleans())
@settings(max_examples=1500, deadline=None)
def test_any_command_part_splits_as_do_command_c_splits_it(part, system, crlf):
    line = '*/5 1-3 * * sun\t' + ('root ' if system else '') + part
    tab = parse(line + ('\r\n' if crlf else '\n'), system=system)
    by_cron = cronref.split_command(cronref.command_part(line + ('\r' if crlf else ''), system))
    if not tab.entries:
        # dbfleet skips only lines cron runs as an empty command (or, on a CRLF line, as the
        # lone \r, which no shell finds): nothing to import either way
        assert by_cron[0].strip(' \t') in ('', '\r')
        return
    assert as_cron_runs_it(tab.entries[0]) == by_cron


@pytest.mark.parametrize('tail', [
    'x' * 1100,                         # cut inside the command: no stdin left
    'x' * 990 + '%' + 'stdin' * 5,      # the % survives, stdin is cut
    'x' * 998 + 'é',                    # the cut splits a two-byte character
    'echo a\0b%c',                      # a NUL byte ends the C string, the % after it too
])
def test_commands_cron_cuts_are_read_as_cut_and_flagged(tail):
    line = '0 3 * * * ' + tail
    tab = parse(line + '\n', 'tab')
    assert as_cron_runs_it(tab.entries[0]) == cronref.split_command(cronref.command_part(line))
    assert [warning.number for warning in tab.warnings] == [1]
    assert tab.text() == line + '\n'
