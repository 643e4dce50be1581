"""Parsing crontabs as Debian's cron reads them (rules checked against /usr/sbin/cron and
`crontab -n` on this machine), byte-exact round trips, error reporting with line numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from croniter import croniter

from runner_service.bridge.crontab import parse
from runner_service.schedules.triggers import parse_trigger

DATA = Path(__file__).parent / 'data'

CORPUS = '\r\n'.join([
    '# user crontab with awkward lines',                                      # 1
    'SHELL=/bin/bash',                                                        # 2
    '  MAILTO = "ops@example.com"  ',                                         # 3
    "GREETING = ' hello world'",                                              # 4
    'CRON_TZ=Europe/Berlin',                                                  # 5
    '',                                                                       # 6
    '*/5\t*\t* * *\t\techo "$HOME" \'single\' `date` ; ls  ',                 # 7
    '0 22 * * 1-5 mail -s "It\'s 10pm" joe%Joe,%%Where are your kids?%',      # 8
    '15 3 * * 7 date +\\%Y-\\%m-\\%d > /tmp/stamp',                           # 9
    '@reboot /usr/local/bin/start-agent',                                     # 10
    '0 0 1 JAN,jul Sun backup --label=half-year',                             # 11
    '   # an indented comment',                                               # 12
    '61 * * * * bad minute',                                                  # 13
    '0 0 * * funday bad name',                                                # 14
    '0 0 * *',                                                                # 15
    '@hourly printf "a\\\\b" \\\\%stdin \\% here',                            # 16
]) + '\r\n0 0 * * * last line without newline'                               # 17


def test_corpus_parses_like_cron_and_round_trips():
    tab = parse(CORPUS, 'corpus')
    assert tab.text() == CORPUS
    assert [entry.number for entry in tab.entries] == [7, 8, 9, 10, 11, 16, 17]
    assert [(error.number, error.reason) for error in tab.errors] == [
        (13, 'bad minute'), (14, 'bad day-of-week'), (15, 'bad day-of-week')]
    assert str(tab.errors[0]) == 'corpus:13: bad minute: 61 * * * * bad minute'
    assert tab.ignored.startswith('line 13: bad minute')
    assert {warning.reason.split(':')[0] for warning in tab.warnings} == {
        'CRLF line endings', "no newline at the end of the file; Debian's cron skips the whole file"}

    tabbed = tab.entry(7)
    assert tabbed.text == '*/5\t*\t* * *\t\techo "$HOME" \'single\' `date` ; ls  '
    assert tabbed.timing == '*/5 * * * *' and tabbed.expression == '*/5 * * * *'
    assert tabbed.command == 'echo "$HOME" \'single\' `date` ; ls  '   # trailing blanks reach the shell
    assert tabbed.stdin is None
    assert tabbed.env == {'SHELL': '/bin/bash', 'MAILTO': 'ops@example.com', 'GREETING': ' hello world',
                          'CRON_TZ': 'Europe/Berlin'}
    assert tabbed.timezone == 'Europe/Berlin'

    mail = tab.entry(8)
    assert mail.command == 'mail -s "It\'s 10pm" joe'
    assert mail.stdin == 'Joe,\n\nWhere are your kids?\n'
    assert tab.entry(9).command == 'date +%Y-%m-%d > /tmp/stamp' and tab.entry(9).expression == '15 3 * * 0'
    assert tab.entry(10).reboot and tab.entry(10).expression is None
    assert tab.entry(11).expression == '0 0 1 1,7 0'
    assert tab.entry(11).day_or  # neither day field starts with *: either may match
    hourly = tab.entry(16)
    assert hourly.command == 'printf "a\\b" \\' and hourly.stdin == 'stdin % here\n'
    assert hourly.expression == '0 * * * *'


@pytest.mark.parametrize('line, reason', [
    ('A=', 'bad minute'), ("A='x' y", 'bad minute'), ('5/10 * * * * e', 'bad minute'),
    ('*/0 * * * * e', 'bad minute'), ('0 0 0 * * e', 'bad day-of-month'), ('0 0 * * 8 e', 'bad day-of-week'),
    ('0 0 * * monday e', 'bad day-of-week'), ('@DAILY e', 'bad time specifier'), ('@ daily e', 'bad time specifier'),
    ('0 24 * * * e', 'bad hour'), ('1,,2 * * * * e', 'bad minute'), ('0 0 * * * * e', 'bad command'),
    ('5x * * * * e', 'bad minute'), ('1-5/2x * * * * e', 'bad minute'), ('0 0 * 13 * e', 'bad month'),
    ('0 0 * * 1-5/0 e', 'bad day-of-week'), ('1 2 3 4', 'bad day-of-week'), ('"A=b', 'bad minute'),
    ('0 0 * * *', 'missing command'),
])
def test_lines_cron_rejects(line, reason):
    """Each verdict matches `crontab -n` on this machine (missing command: cron accepts an
    empty command and runs nothing; for dbfleet there is nothing to import)."""
    tab = parse('# x\n' + line + '\n', 'tab')
    assert [(error.number, error.reason) for error in tab.errors] == [(2, reason)]
    assert tab.entries == [] and tab.text() == '# x\n' + line + '\n'
    assert (tab.ignored is None) == (reason == 'missing command')


@pytest.mark.parametrize('line, expression', [
    ('5;x * * * * e', '5 * * * *'), ('*;x * * * * e', '* * * * *'), ('0 0 * * mon,tue e', '0 0 * * 1,2'),
    ('0 0 * * MON e', '0 0 * * 1'), ('0 0 * * sun-sat e', '0 0 * * *'), ('0 0 * * 0-7 e', '0 0 * * *'),
    ('*/60 * * * * e', '*/60 * * * *'), ('007 * * * * e', '7 * * * *'), ('0 0 1 1-12/3 * e', '0 0 1 1-10/3 *'),
    ('0 0 * jan-mar * e', '0 0 * 1-3 *'), ('*-5 * * * * e', '* * * * *'), ('*/5-7 * * * * e', '*/5 * * * *'),
    ('1-5-7 * * * * e', '1-5 * * * *'), ('0 0 1-31/2 * * e', '0 0 1-31/2 * *'), ('0 0 * * 1,7 e', '0 0 * * 0,1'),
    ('@daily\te', '0 0 * * *'), ('@annually e', '0 0 1 1 *'), ('0 0 1-31 * 1 e', '0 0 * * *'),
    ('0 0 31 2 * e', '0 0 31 2 *'), ('0-58/2 */2 * * * e', '0-58/2 */2 * * *'),
])
def test_lines_cron_accepts_and_their_expression(line, expression):
    entry = parse(line + '\n').entries[0]
    assert entry.expression == expression and entry.exact
    assert croniter.is_valid(expression)


def test_backwards_range_never_runs():
    entry = parse('5-1 * * * * e\n').entries[0]
    assert entry.expression is None and not entry.exact and entry.note.startswith('never runs')


def _fires(expression: str, count: int, **kwargs) -> list[dt.date]:
    iterator = croniter(expression, dt.datetime(2026, 3, 1), **kwargs)
    return [iterator.get_next(dt.datetime).date() for _ in range(count)]


def _vixie_days(dom: set[int], dow: set[int], star: bool, count: int) -> list[dt.date]:
    """cron.c: a day matches both fields when one starts with `*`, else either."""
    days, day = [], dt.date(2026, 3, 2)
    while len(days) < count:
        in_dom, in_dow = day.day in dom, day.isoweekday() % 7 in dow
        if (in_dom and in_dow) if star else (in_dom or in_dow):
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def test_star_step_day_field_means_both_days_must_match():
    """vixie: `*/2` in day-of-month with a day of week = odd days that are Mondays. croniter
    (7.0.0) ORs them unless day_or=False: the entry says so and carries day_or."""
    entry = parse('0 0 */2 * 1 e\n').entries[0]
    assert (entry.day_or, entry.exact) == (False, False) and 'day_or=False' in entry.note
    expected = _vixie_days(set(range(1, 32, 2)), {1}, True, 6)
    assert _fires(entry.expression, 6, day_or=entry.day_or) == expected
    assert _fires(entry.expression, 6) != expected  # croniter's default differs

    both = parse('0 0 1,15 * */2 e\n').entries[0]
    assert not both.exact
    assert _fires(both.expression, 4, day_or=False) == _vixie_days({1, 15}, {0, 2, 4, 6}, True, 4)


@pytest.mark.parametrize('line', ['0 0 * * 1 e', '0 0 */2 * * e', '0 0 1,15 * 5 e', '0 0 * * */2 e',
                                  '0 0 1-31 * 1 e', '0 0 */1 * 1 e', '@weekly e', '@monthly e'])
def test_exact_expressions_fire_like_cron_with_croniter_defaults(line):
    entry = parse(line + '\n').entries[0]
    assert entry.exact
    fields = line.split()
    dom_text, dow_text = (fields[2], fields[4]) if not line.startswith('@') else (None, None)
    fires = _fires(entry.expression, 8)
    if dom_text is not None:
        dom = _field_set(dom_text, 1, 31)
        dow = {day % 7 for day in _field_set(dow_text, 0, 7)}
        star = dom_text.startswith('*') or dow_text.startswith('*')
        assert fires == _vixie_days(dom, dow, star, 8)
    parse_trigger('cron', entry.expression, 'UTC')


def _field_set(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(','):
        span, _, step = part.partition('/')
        first, last = (low, high) if span == '*' else map(int, (span.split('-') * 2)[:2])
        values.update(range(first, last + 1, int(step or 1)))
    return values


@pytest.mark.parametrize('name', ['crontab', 'e2scrub_all', 'php', 'sysstat', 'popularity-contest', 'certbot'])
def test_debian_system_crontabs(name):
    text = (DATA / name).read_text()
    tab = parse(text, '/etc/cron.d/' + name, system=True)
    assert tab.text() == text
    assert tab.errors == [] and tab.warnings == [] and tab.ignored is None
    assert tab.entries and all(entry.user == 'root' for entry in tab.entries)
    for entry in tab.entries:
        parse_trigger('cron', entry.expression, 'UTC')


def test_etc_crontab_details():
    tab = parse((DATA / 'crontab').read_text(), '/etc/crontab', system=True)
    weekly = tab.entries[2]
    assert weekly.timing == '47 6 * * 7' and weekly.expression == '47 6 * * 0'
    assert weekly.command == 'test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }'
    assert weekly.env == {'SHELL': '/bin/sh', 'PATH': '/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin'}


def test_system_command_starts_after_one_blank():
    """Observed on /usr/sbin/cron: `root   cmd` runs '  cmd', `root<TAB><TAB>cmd` runs '<TAB>cmd'."""
    tab = parse('* * * * * root   t20 spaced\n* * * * * root\t\tt21 tabbed\n@reboot root t22\n', system=True)
    assert [entry.command for entry in tab.entries] == ['  t20 spaced', '\tt21 tabbed', 't22']
    assert tab.entries[2].reboot and tab.entries[2].user == 'root'
    assert [error.reason for error in parse('* * * * * root\n', system=True).errors] == [
        'missing command after the user name']


@pytest.mark.parametrize('line, setting', [
    ('A = "x y" ', ('A', 'x y')), ('X = 1 2 ', ('X', '1 2')), ('"A"=b', ('A', 'b')), ('=b', ('', 'b')),
    ("Q='\"x\"'", ('Q', 'x')), ('E=""', ('E', '')), ('P=a=b', ('P', 'a=b')), ('T = " x "', ('T', ' x')),
])
def test_environment_lines_follow_env_c(line, setting):
    tab = parse(line + '\n* * * * * e\n')
    assert tab.errors == [] and tab.entries[0].env == dict([setting])


def test_blank_comment_and_taken_lines():
    text = '\n \t\n# c\n#dbfleet:takeover:s-1 0 5 * * * backup %x\n#dbfleet:takeover:bad\n'
    tab = parse(text)
    assert tab.entries == [] and tab.errors == [] and tab.text() == text
    assert [(taken.number, taken.schedule_id, taken.original) for taken in tab.taken] == [
        (4, 's-1', '0 5 * * * backup %x')]
    assert tab.find_taken('s-1') is tab.taken[0] and tab.find_taken('x') is None


def test_empty_text():
    tab = parse('')
    assert (tab.lines, tab.entries, tab.errors, tab.text(), tab.ignored) == ([], [], [], '', None)


def test_only_newline_ends_lines():
    text = '* * * * * printf "a\x0cb\x1cc\u2028d"\n'
    tab = parse(text)
    assert len(tab.lines) == 1 and tab.text() == text
    assert tab.entries[0].command == 'printf "a\x0cb\x1cc\u2028d"'
