"""A job template's survey: the extra vars a launch may set, and the rules each value must keep.

    check_survey(variables)                  # SurveyError when the survey itself is wrong
    values = apply_survey(variables, given)  # the launch's extra vars: checked, defaults filled in

A variable is a mapping {name, type, required, default, min, max, min_length, max_length,
choices, pattern} (runner_service.schemas.SurveyVariable dumped). Types: string, password
(a string that is sealed at rest and masked everywhere), integer, number, boolean, choice (one of
`choices`), multi-choice (a list of distinct `choices`). Names are identifiers and never start
with `ansible_`: connection and interpreter variables are set by admins in inventories, not by
a launch. A SurveyError's text names the variable and the rule, quotes at most
MAX_QUOTE characters of a value, and never a password's.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

import regex

TYPES = ('string', 'password', 'integer', 'number', 'boolean', 'choice', 'multi-choice')
TEXT_TYPES = ('string', 'password')
NUMBER_TYPES = ('integer', 'number')
CHOICE_TYPES = ('choice', 'multi-choice')
NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]{0,99}')
RESERVED_PREFIX = 'ansible_'
MAX_QUOTE = 200
MAX_PATTERN = 500
# Without a max_length, no string a launch sends is longer than this (a pattern runs over it).
DEFAULT_MAX_LENGTH = 65536
# A pattern is the admin's, but the value is the caller's: a pattern that backtracks without end
# ((a|aa)+$ on 'aaaa...!') would hold an API thread for hours. The `regex` engine stops a match
# after this long and the launch is refused instead.
PATTERN_SECONDS = 0.25
# Numbers a survey takes: what a 64-bit integer holds (Python's own would go on to any size and
# overflow math on floats).
MAX_NUMBER = 2 ** 63


def _in_range(value: int | float) -> bool:
    return (math.isfinite(value) if isinstance(value, float) else True) and -MAX_NUMBER <= value <= MAX_NUMBER


class SurveyError(ValueError):
    """A launch's extra vars (or a survey) break a rule; the text says which variable and rule."""


def quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + '...'


def check_survey(variables: Iterable[dict]) -> None:
    """The survey is consistent: names valid and distinct, bounds that fit the type, choices for
    choice types, a pattern that compiles, and each default keeping the variable's own rules."""
    seen: set[str] = set()
    for variable in variables:
        name, kind = variable.get('name'), variable.get('type')
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise SurveyError('survey: variable name %s is not an identifier (letters, digits, _; not starting with '
                              'a digit; at most 100 characters)' % quote(name))
        if name.lower().startswith(RESERVED_PREFIX):
            raise SurveyError('survey: %s: ansible_* variables (connection, interpreter) cannot be set by a launch; '
                              'set them in the inventory' % name)
        if name in seen:
            raise SurveyError('survey: %s is listed twice' % name)
        seen.add(name)
        if kind not in TYPES:
            raise SurveyError('survey: %s: type must be one of %s, got %s' % (name, ', '.join(TYPES), quote(kind)))
        _check_rules(name, kind, variable)
        if kind == 'password' and variable.get('default') is not None:
            raise SurveyError('survey: %s: a password has no default (the template would keep it in the clear); '
                              'make it required, or set it in the inventory' % name)
        if variable.get('default') is not None:
            try:
                check_value(variable, variable['default'])
            except SurveyError as exc:
                raise SurveyError('survey: the default of %s' % str(exc)) from None


def _check_rules(name: str, kind: str, variable: dict) -> None:
    def given(*keys: str) -> list[str]:
        return [key for key in keys if variable.get(key) is not None]

    wrong = {'min', 'max'} if kind not in NUMBER_TYPES else set()
    if kind not in TEXT_TYPES:
        wrong |= {'min_length', 'max_length', 'pattern'}
    if kind not in CHOICE_TYPES:
        wrong |= {'choices'}
    misplaced = given(*sorted(wrong))
    if misplaced:
        raise SurveyError('survey: %s: %s does not apply to type %s' % (name, ', '.join(misplaced), kind))
    for low, high in (('min', 'max'), ('min_length', 'max_length')):
        if given(low, high) == [low, high] and variable[low] > variable[high]:
            raise SurveyError('survey: %s: %s is above %s' % (name, low, high))
    for bound in given('min', 'max'):
        if isinstance(variable[bound], bool) or not isinstance(variable[bound], (int, float)) \
                or not _in_range(variable[bound]):
            raise SurveyError('survey: %s: %s must be a finite number' % (name, bound))
    if kind in CHOICE_TYPES:
        choices = variable.get('choices')
        if not choices or not isinstance(choices, list):
            raise SurveyError('survey: %s: type %s needs a non-empty list of choices' % (name, kind))
        if len(set(map(repr, choices))) != len(choices):
            raise SurveyError('survey: %s: choices are listed twice' % name)
    if variable.get('pattern') is not None:
        pattern = variable['pattern']
        if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
            raise SurveyError('survey: %s: pattern must be a regular expression of at most %d characters'
                              % (name, MAX_PATTERN))
        try:
            regex.compile(pattern)
        except (regex.error, OverflowError, RecursionError) as exc:  # a{99999999999} overflows
            raise SurveyError('survey: %s: pattern does not compile: %s' % (name, exc)) from None


def _matches(name: str, pattern: str, value: str) -> bool:
    try:
        return regex.fullmatch(pattern, value, timeout=PATTERN_SECONDS) is not None
    except TimeoutError:
        raise SurveyError('%s: the pattern %s took longer than %s s on the value (it backtracks without end); '
                          'an admin must simplify it' % (name, quote(pattern), PATTERN_SECONDS)) from None


def check_value(variable: dict, value: Any) -> None:
    """SurveyError unless `value` keeps the variable's type and rules."""
    name, kind = variable['name'], variable['type']
    shown = 'the value' if kind == 'password' else quote(value)
    if kind in TEXT_TYPES:
        if not isinstance(value, str):
            raise SurveyError('%s: must be a string, got %s' % (name, 'a ' + type(value).__name__
                                                                  if kind == 'password' else shown))
        if '\x00' in value:
            raise SurveyError('%s: NUL characters are refused' % name)
        low, high = variable.get('min_length'), variable.get('max_length')
        high_or_default = high if high is not None else DEFAULT_MAX_LENGTH
        if low is not None and len(value) < low:
            raise SurveyError('%s: at least %d characters, got %d' % (name, low, len(value)))
        if len(value) > high_or_default:
            raise SurveyError('%s: at most %d characters, got %d' % (name, high_or_default, len(value)))
        pattern = variable.get('pattern')
        if pattern is not None and not _matches(name, pattern, value):
            raise SurveyError('%s: %s does not match the pattern %s' % (name, shown, quote(pattern)))
    elif kind in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == 'integer'
                                                                               and not isinstance(value, int)):
            raise SurveyError('%s: must be %s, got %s' % (name, 'an integer' if kind == 'integer' else 'a number',
                                                          shown))
        if not _in_range(value):
            raise SurveyError('%s: must be a finite number between -2**63 and 2**63, got %s' % (name, shown[:60]))
        low, high = variable.get('min'), variable.get('max')
        if low is not None and value < low:
            raise SurveyError('%s: %s is below the minimum %s' % (name, shown, low))
        if high is not None and value > high:
            raise SurveyError('%s: %s is above the maximum %s' % (name, shown, high))
    elif kind == 'boolean':
        if not isinstance(value, bool):
            raise SurveyError('%s: must be true or false, got %s' % (name, shown))
    elif kind == 'choice':
        if not _among(value, variable['choices']):
            raise SurveyError('%s: %s is not one of the choices %s' % (name, shown, quote(variable['choices'])))
    elif kind == 'multi-choice':
        if not isinstance(value, list):
            raise SurveyError('%s: must be a list of choices, got %s' % (name, shown))
        for item in value:
            if not _among(item, variable['choices']):
                raise SurveyError('%s: %s is not one of the choices %s' % (name, quote(item),
                                                                          quote(variable['choices'])))
        if len(set(map(repr, value))) != len(value):
            raise SurveyError('%s: a choice is given twice' % name)


def _among(value: Any, choices: list) -> bool:
    # Exact type too: True is not the choice 1, nor 1.0 the choice 1.
    return any(type(value) is type(choice) and value == choice for choice in choices)


def apply_survey(variables: Iterable[dict], given: dict) -> dict:
    """The extra vars of a launch: each given one known to the survey and keeping its rules, each
    missing one with a default set to it; SurveyError for one not in the survey (nothing may be
    set that the survey does not name) and for a required one missing."""
    by_name = {variable['name']: variable for variable in variables}
    unknown = sorted(str(name) for name in given if name not in by_name)
    if unknown:
        more = ' (and %d more)' % (len(unknown) - 1) if len(unknown) > 1 else ''
        raise SurveyError('extra_vars: %s is not in the template\'s survey%s; it allows: %s'
                          % (quote(unknown[0]), more, ', '.join(sorted(by_name)) or 'nothing'))
    values: dict = {}
    for name, variable in by_name.items():
        if name in given and given[name] is not None:
            check_value(variable, given[name])
            values[name] = given[name]
        elif variable.get('default') is not None:
            values[name] = variable['default']
        elif variable.get('required'):
            raise SurveyError('%s: required by the template\'s survey, and it has no default' % name)
    return values


def password_names(variables: Iterable[dict]) -> set[str]:
    return {variable['name'] for variable in variables if variable['type'] == 'password'}
