"""Tag filter expressions: precedence, parentheses, names, normal form, errors with positions."""

import itertools

import pytest

from dbfleet.tags import TagExpressionError, is_valid_tag_name, parse_tag_expression
from dbfleet.tags.expression import And, Not, Or, Tag


def matching(expression, universe):
    """The subsets of `universe` the expression matches, as sorted tuples."""
    parsed = parse_tag_expression(expression)
    subsets = itertools.chain.from_iterable(itertools.combinations(universe, size) for size in range(len(universe) + 1))
    return {subset for subset in subsets if parsed.matches(subset)}


def test_the_example():
    expression = parse_tag_expression('large and not (maintenance or tag-x)')
    assert expression.matches({'large', 'primary'})
    assert not expression.matches({'large', 'maintenance'})
    assert not expression.matches(['large', 'tag-x'])
    assert not expression.matches(iter(['primary']))
    assert expression.names == frozenset({'large', 'maintenance', 'tag-x'})
    assert str(expression) == 'large and not (maintenance or tag-x)'


@pytest.mark.parametrize('expression,tree', [
    ('a or b and c', Or((Tag('a'), And((Tag('b'), Tag('c')))))),
    ('a and b or c', Or((And((Tag('a'), Tag('b'))), Tag('c')))),
    ('not a and b', And((Not(Tag('a')), Tag('b')))),
    ('not a or b', Or((Not(Tag('a')), Tag('b')))),
    ('not (a or b)', Not(Or((Tag('a'), Tag('b'))))),
    ('(a or b) and c', And((Or((Tag('a'), Tag('b'))), Tag('c')))),
    ('not not a', Not(Not(Tag('a')))),
    ('a and b and c', And((Tag('a'), Tag('b'), Tag('c')))),
    ('a and (b and c)', And((Tag('a'), Tag('b'), Tag('c')))),
    ('((a))', Tag('a')),
])
def test_precedence_not_over_and_over_or(expression, tree):
    assert parse_tag_expression(expression).root == tree


def test_precedence_by_truth_table():
    universe = ('a', 'b', 'c')
    assert matching('a or b and c', universe) == matching('a or (b and c)', universe)
    assert matching('a or b and c', universe) != matching('(a or b) and c', universe)
    assert matching('not a and b', universe) == matching('(not a) and b', universe)
    assert matching('not a and b', universe) != matching('not (a and b)', universe)


@pytest.mark.parametrize('expression,normal', [
    ('  large   AND   not(maintenance OR tag-x) ', 'large and not (maintenance or tag-x)'),
    ('(a and b) or (c and d)', 'a and b or c and d'),
    ('(a or b) and (c or d)', '(a or b) and (c or d)'),
    ('not (not a)', 'not not a'),
    ('a or (b or c)', 'a or b or c'),
    ('(env:prod)', 'env:prod'),
])
def test_str_is_a_normal_form_that_parses_back(expression, normal):
    parsed = parse_tag_expression(expression)
    assert str(parsed) == normal
    assert parse_tag_expression(normal) == parsed
    assert str(parse_tag_expression(normal)) == normal


@pytest.mark.parametrize('name', ['large', 'env:prod', 'mysql-8.0', 'rack_12', 'tag-x', 'Team.DBA', '2026',
                                  'x:y-z.1_2'])
def test_tag_names_allow_letters_digits_and_separators(name):
    assert parse_tag_expression(name).names == frozenset({name})
    assert parse_tag_expression('%s and not %s-old' % (name, name)).matches({name})
    assert is_valid_tag_name(name)


@pytest.mark.parametrize('name', ['', 'a b', 'a/b', 'and', 'Or', 'NOT', 'café', 'a!', None, 3])
def test_invalid_tag_names(name):
    assert not is_valid_tag_name(name)


def test_keywords_are_case_insensitive():
    assert parse_tag_expression('a AND NOT b Or c') == parse_tag_expression('a and not b or c')


def error_of(expression) -> TagExpressionError:
    with pytest.raises(TagExpressionError) as caught:
        parse_tag_expression(expression)
    return caught.value


def test_error_message_points_at_the_position():
    error = error_of('large and not )')
    assert error.position == 14
    assert error.reason == "unexpected ')'"
    assert str(error) == error.message == ("unexpected ')' at position 14: expected a tag name or '(' after 'not'\n"
                                          "  large and not )\n"
                                          "                ^")


@pytest.mark.parametrize('expression,reason,position', [
    ('', 'empty tag expression', 0),
    ('   ', 'empty tag expression', 3),
    ('large and', 'unexpected end of expression', 9),
    ('large or ', 'unexpected end of expression', 9),
    ('not', 'unexpected end of expression', 3),
    ('and large', "unexpected 'and'", 0),
    ('large and or small', "unexpected 'or'", 10),
    ('(large', "unbalanced '('", 0),
    ('((large) or small', "unbalanced '('", 0),
    ('large)', "unexpected ')'", 5),
    ('(large))', "unexpected ')'", 7),
    ('()', "unexpected ')'", 1),
    ('large small', "unexpected 'small'", 6),
    ('(large small)', "unexpected 'small'", 7),
    ('large & small', "unexpected character '&'", 6),
    ('!large', "unexpected character '!'", 0),
    ('large || small', "unexpected character '|'", 6),
    ('owner=alice', "unexpected character '='", 5),
    ('tag/x', "unexpected character '/'", 3),
])
def test_errors_have_a_reason_and_a_position(expression, reason, position):
    error = error_of(expression)
    assert (error.reason, error.position, error.expression) == (reason, position, expression)
    first_line, source_line, caret_line = str(error).split('\n')
    assert first_line.startswith('%s at position %d' % (reason, position))
    assert source_line == '  ' + expression
    assert caret_line == ' ' * (position + 2) + '^'


def test_bad_character_error_says_what_names_may_contain():
    assert 'tag names use letters, digits and _ - . :' in str(error_of('a ! b'))


def test_a_non_string_is_refused():
    assert error_of(None).reason == 'a tag expression must be a string, got NoneType'


def test_expressions_compare_equal_when_their_normal_forms_are_equal():
    one, two = parse_tag_expression('a and (b or c)'), parse_tag_expression('a  and  ( b or c )')
    assert one == two and hash(one) == hash(two) and len({one, two}) == 1
    assert one != parse_tag_expression('a and b or c')
    assert repr(one) == "TagExpression('a and (b or c)')"
