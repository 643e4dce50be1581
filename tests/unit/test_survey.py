"""Survey checks (runner_service.templates.survey): what a template's survey may say, and what a launch may set."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner_service.templates.survey import MAX_QUOTE, SurveyError, apply_survey, check_survey, check_value

STRING = {'name': 'label', 'type': 'string', 'min_length': 2, 'max_length': 8, 'pattern': '[a-z]+'}
PASSWORD = {'name': 'secret_word', 'type': 'password', 'min_length': 8}
INTEGER = {'name': 'count', 'type': 'integer', 'min': 1, 'max': 10}
NUMBER = {'name': 'ratio', 'type': 'number', 'min': 0, 'max': 1}
BOOLEAN = {'name': 'dry', 'type': 'boolean'}
CHOICE = {'name': 'mode', 'type': 'choice', 'choices': ['full', 'incremental', 1]}
MULTI = {'name': 'schemas', 'type': 'multi-choice', 'choices': ['a', 'b', 'c']}
SURVEY = [STRING, PASSWORD, INTEGER, NUMBER, BOOLEAN, CHOICE, MULTI]


def refused(variable, value) -> str:
    with pytest.raises(SurveyError) as raised:
        check_value(variable, value)
    return str(raised.value)


def test_a_good_survey_passes():
    check_survey(SURVEY)


@pytest.mark.parametrize('variable, reason', [
    ({'name': 'ansible_host', 'type': 'string'}, 'ansible_* variables'),
    ({'name': 'ANSIBLE_BECOME', 'type': 'string'}, 'ansible_* variables'),
    ({'name': '1st', 'type': 'string'}, 'not an identifier'),
    ({'name': 'a-b', 'type': 'string'}, 'not an identifier'),
    ({'name': 'x', 'type': 'date'}, 'type must be one of'),
    ({'name': 'x', 'type': 'string', 'min': 1}, 'min does not apply to type string'),
    ({'name': 'x', 'type': 'integer', 'pattern': 'a'}, 'pattern does not apply'),
    ({'name': 'x', 'type': 'integer', 'min': 5, 'max': 1}, 'min is above max'),
    ({'name': 'x', 'type': 'number', 'max': math.inf}, 'finite'),
    ({'name': 'x', 'type': 'choice'}, 'needs a non-empty list of choices'),
    ({'name': 'x', 'type': 'choice', 'choices': ['a', 'a']}, 'listed twice'),
    ({'name': 'x', 'type': 'string', 'pattern': '('}, 'does not compile'),
    ({'name': 'x', 'type': 'string', 'pattern': 'a{99999999999}'}, 'does not compile'),
    ({'name': 'x', 'type': 'integer', 'max': 3, 'default': 4}, 'the default of x: 4 is above the maximum'),
    ({'name': 'x', 'type': 'password', 'default': 'hunter2hunter2'}, 'a password has no default'),
])
def test_a_wrong_survey_is_refused_with_its_reason(variable, reason):
    with pytest.raises(SurveyError, match=reason.replace('*', r'\*').replace('(', r'\(')):
        check_survey([variable])


def test_a_name_listed_twice_is_refused():
    with pytest.raises(SurveyError, match='listed twice'):
        check_survey([INTEGER, dict(INTEGER)])


def test_values_that_keep_the_rules_pass():
    values = apply_survey(SURVEY, {'label': 'abc', 'secret_word': 'long enough', 'count': 10, 'ratio': 0.5,
                                   'dry': False, 'mode': 1, 'schemas': ['c', 'a']})
    assert values['count'] == 10 and values['mode'] == 1 and values['schemas'] == ['c', 'a']


@pytest.mark.parametrize('variable, value, reason', [
    (STRING, 'a', 'label: at least 2 characters, got 1'),
    (STRING, 'abcdefghi', 'label: at most 8 characters, got 9'),
    (STRING, 'ABC', "label: 'ABC' does not match the pattern '[a-z]+'"),
    (STRING, 12, 'label: must be a string, got 12'),
    (STRING, 'a\x00b', 'NUL'),
    (INTEGER, 1.0, 'count: must be an integer, got 1.0'),
    (INTEGER, True, 'count: must be an integer, got True'),
    (INTEGER, 0, 'count: 0 is below the minimum 1'),
    (NUMBER, math.nan, 'ratio: must be a finite number'),
    (NUMBER, '0.5', "ratio: must be a number, got '0.5'"),
    (BOOLEAN, 'yes', "dry: must be true or false, got 'yes'"),
    (CHOICE, True, 'mode: True is not one of the choices'),
    (CHOICE, 'differential', "mode: 'differential' is not one of the choices"),
    (MULTI, 'a', "schemas: must be a list of choices, got 'a'"),
    (MULTI, ['a', 'd'], "schemas: 'd' is not one of the choices"),
    (MULTI, ['a', 'a'], 'schemas: a choice is given twice'),
])
def test_each_rule_names_the_variable_and_itself(variable, value, reason):
    assert reason in refused(variable, value)


def test_a_password_value_is_never_in_a_message():
    for value in ('short', 12345678, ['hunter2-hunter2'], 'x' * 70000):
        message = refused(dict(PASSWORD, max_length=64), value)
        assert 'hunter2' not in message and 'short' not in message and '12345678' not in message
        assert 'xxxx' not in message
    patterned = dict(PASSWORD, pattern='[0-9]+')
    assert 'letters-only' not in refused(patterned, 'letters-only')


def test_a_pattern_that_backtracks_without_end_is_refused_not_run_for_hours():
    # (a|aa)+$ on 60 a's and a '!' tries every way to split the a's: about 1.5e12 paths.
    catastrophic = {'name': 'label', 'type': 'string', 'pattern': '(a|aa)+$'}
    assert 'label: the pattern' in refused(catastrophic, 'a' * 60 + '!')
    assert 'backtracks without end' in refused(dict(PASSWORD, pattern='(a|aa)+$'), 'a' * 60 + '!')
    check_value(catastrophic, 'aaaa')  # the same pattern on a value it matches


def test_anything_not_in_the_survey_is_refused_by_name():
    with pytest.raises(SurveyError, match="'ansible_connection' is not in the template's survey"):
        apply_survey([INTEGER], {'count': 1, 'ansible_connection': 'local'})
    with pytest.raises(SurveyError, match="'anything' is not in the template's survey; it allows: nothing"):
        apply_survey([], {'anything': 1})


def test_defaults_fill_in_and_required_ones_must_be_given():
    survey = [dict(INTEGER, default=3), dict(CHOICE, required=True), dict(BOOLEAN)]
    assert apply_survey(survey, {'mode': 'full'}) == {'count': 3, 'mode': 'full'}
    assert apply_survey(survey, {'mode': 'full', 'count': 7, 'dry': True}) == {'count': 7, 'mode': 'full',
                                                                               'dry': True}
    with pytest.raises(SurveyError, match="mode: required by the template's survey"):
        apply_survey(survey, {'count': 2})


@settings(max_examples=300, deadline=None)
@given(value=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                          lambda children: st.lists(children, max_size=3)
                          | st.dictionaries(st.text(max_size=5), children, max_size=3), max_leaves=10),
       variable=st.sampled_from(SURVEY))
def test_any_value_is_accepted_only_if_it_keeps_the_rules_and_messages_stay_short(value, variable):
    try:
        check_value(variable, value)
    except SurveyError as exc:
        message = str(exc)
        assert message.startswith(variable['name'] + ':')
        assert len(message) <= 2 * MAX_QUOTE + 200
        return
    kind = variable['type']
    if kind in ('string', 'password'):
        assert isinstance(value, str) and variable['min_length'] <= len(value)
    elif kind in ('integer', 'number'):
        assert not isinstance(value, bool) and variable['min'] <= value <= variable['max']
        assert kind == 'number' or isinstance(value, int)
    elif kind == 'boolean':
        assert isinstance(value, bool)
    elif kind == 'choice':
        assert any(type(value) is type(choice) and value == choice for choice in variable['choices'])
    else:
        assert isinstance(value, list) and set(value) <= set(variable['choices']) and len(set(value)) == len(value)


@settings(max_examples=200, deadline=None)
@given(extra=st.dictionaries(st.text(min_size=1, max_size=300), st.integers(), min_size=1, max_size=5))
def test_any_name_outside_the_survey_is_refused(extra):
    names = {variable['name'] for variable in SURVEY}
    if set(extra) <= names:
        return
    with pytest.raises(SurveyError) as raised:
        apply_survey(SURVEY, extra)
    assert len(str(raised.value)) < MAX_QUOTE + 200
