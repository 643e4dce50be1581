"""Tag filter expressions: `large and not (maintenance or tag-x)`.

The one language every tool uses to pick hosts by tag (inventory plugin, API, CLI, job
targets). Deliberately tiny: tag names, `and`, `or`, `not`, parentheses, with the usual
precedence (not > and > or). It is parsed by hand, not by Jinja or eval, so a filter typed
by a user can only ever test tag membership. Errors carry the position and show it with a
caret, because filters are typed on command lines and in inventory files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Tag names: letters, digits and _ - . : (so 'env:prod', 'mysql-8.0', 'rack_12' are names).
TAG_NAME = re.compile(r'[A-Za-z0-9_.:\-]+')
KEYWORDS = frozenset({'and', 'or', 'not'})
# How deep parentheses and `not` may nest. Real filters nest two or three levels; the bound keeps
# the recursive-descent parser (and every walk of the tree) far from Python's recursion limit.
MAX_NESTING = 50


def is_valid_tag_name(name) -> bool:
    """Whether `name` can be used as a tag, hence written in a filter expression."""
    return isinstance(name, str) and TAG_NAME.fullmatch(name) is not None and name.lower() not in KEYWORDS


class TagExpressionError(ValueError):
    """A filter expression that cannot be parsed. `str()` shows where, with a caret."""

    def __init__(self, reason: str, position: int, expression: str = '', hint: str | None = None):
        self.reason = reason
        self.position = position
        self.expression = expression
        self.hint = hint
        shown, caret = _around(expression, position)
        self.message = '%s at position %d%s\n  %s\n  %s^' % (
            reason, position, ': ' + hint if hint else '', shown, ' ' * caret)
        super().__init__(self.message)


# An error shows at most this much of the expression, around the position it points at.
SHOWN_CHARACTERS = 120


def _around(expression: str, position: int) -> tuple[str, int]:
    """The part of `expression` an error shows, and where the caret goes in it."""
    if len(expression) <= SHOWN_CHARACTERS:
        return expression, position
    start = max(0, min(position - SHOWN_CHARACTERS // 2, len(expression) - SHOWN_CHARACTERS))
    shown = expression[start:start + SHOWN_CHARACTERS]
    prefix = '...' if start else ''
    suffix = '...' if start + SHOWN_CHARACTERS < len(expression) else ''
    return prefix + shown + suffix, len(prefix) + position - start


# --- Syntax tree ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tag:
    name: str

    def evaluate(self, tags: frozenset) -> bool:
        return self.name in tags

    def names(self):
        yield self.name

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Not:
    operand: object

    def evaluate(self, tags: frozenset) -> bool:
        return not self.operand.evaluate(tags)

    def names(self):
        return self.operand.names()

    def __str__(self):
        return 'not ' + _wrap(self.operand, (And, Or))


@dataclass(frozen=True)
class And:
    operands: tuple

    def evaluate(self, tags: frozenset) -> bool:
        return all(operand.evaluate(tags) for operand in self.operands)

    def names(self):
        for operand in self.operands:
            yield from operand.names()

    def __str__(self):
        return ' and '.join(_wrap(operand, (Or,)) for operand in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple

    def evaluate(self, tags: frozenset) -> bool:
        return any(operand.evaluate(tags) for operand in self.operands)

    def names(self):
        for operand in self.operands:
            yield from operand.names()

    def __str__(self):
        return ' or '.join(str(operand) for operand in self.operands)


def _wrap(node, needs_parentheses: tuple) -> str:
    return '(%s)' % node if isinstance(node, needs_parentheses) else str(node)


def _combine(kind, operands: list):
    """`a and (b and c)` is `a and b and c`: flatten, so equal filters print and compare equal."""
    if len(operands) == 1:
        return operands[0]
    flat = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else (operand,))
    return kind(tuple(flat))


class TagExpression:
    """A parsed filter. `str()` is the normalized form, which parses back to an equal expression."""

    __slots__ = ('root', 'source')

    def __init__(self, root, source: str):
        self.root = root
        self.source = source

    def matches(self, tags: Iterable[str]) -> bool:
        return self.root.evaluate(tags if isinstance(tags, (set, frozenset)) else frozenset(tags))

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.root.names())

    def __str__(self):
        return str(self.root)

    def __repr__(self):
        return 'TagExpression(%r)' % str(self)

    def __eq__(self, other):
        return isinstance(other, TagExpression) and self.root == other.root

    def __hash__(self):
        return hash(self.root)


# --- Parser --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str       # 'name', 'and', 'or', 'not', '(', ')', 'end'
    text: str
    position: int


def _tokens(expression: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(expression):
        char = expression[position]
        if char.isspace():
            position += 1
        elif char in '()':
            tokens.append(_Token(char, char, position))
            position += 1
        else:
            match = TAG_NAME.match(expression, position)
            if match is None:
                raise TagExpressionError('unexpected character %r' % char, position, expression,
                                         hint='tag names use letters, digits and _ - . :')
            word = match.group()
            kind = word.lower() if word.lower() in KEYWORDS else 'name'
            tokens.append(_Token(kind, word, position))
            position = match.end()
    tokens.append(_Token('end', '', len(expression)))
    return tokens


class _Parser:
    """Recursive descent: or_expr := and_expr ('or' and_expr)*; and_expr := not_expr ('and'
    not_expr)*; not_expr := 'not' not_expr | NAME | '(' or_expr ')'."""

    def __init__(self, expression: str):
        self.expression = expression
        self.tokens = _tokens(expression)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, reason: str, token: _Token, hint: str | None = None):
        raise TagExpressionError(reason, token.position, self.expression, hint)

    def parse(self):
        if self.current.kind == 'end':
            self.fail('empty tag expression', self.current, 'expected tag names combined with and, or, not, ( )')
        root = self.or_expression()
        token = self.current
        if token.kind == ')':
            self.fail("unexpected ')'", token, "no matching '('")
        if token.kind != 'end':
            self.fail('unexpected %r' % token.text, token, "expected 'and', 'or' or the end")
        return root

    def or_expression(self):
        operands = [self.and_expression()]
        while self.current.kind == 'or':
            self.advance()
            operands.append(self.and_expression())
        return _combine(Or, operands)

    def and_expression(self):
        operands = [self.not_expression()]
        while self.current.kind == 'and':
            self.advance()
            operands.append(self.not_expression())
        return _combine(And, operands)

    def nested(self, token: _Token, parse):
        """`parse()` one level deeper; past MAX_NESTING levels an error instead of a RecursionError."""
        if self.depth >= MAX_NESTING:
            self.fail('nested too deeply', token, 'at most %d levels of parentheses and not' % MAX_NESTING)
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1

    def not_expression(self):
        token = self.current
        if token.kind == 'not':
            self.advance()
            return Not(self.nested(token, self.not_expression))
        if token.kind == 'name':
            self.advance()
            return Tag(token.text)
        if token.kind == '(':
            self.advance()
            inner = self.nested(token, self.or_expression)
            if self.current.kind != ')':
                if self.current.kind == 'end':
                    self.fail("unbalanced '('", token, "no matching ')'")
                self.fail('unexpected %r' % self.current.text, self.current, "expected 'and', 'or' or ')'")
            self.advance()
            return inner
        previous = self.tokens[self.index - 1].text if self.index else None
        expected = "expected a tag name or '('" + (" after '%s'" % previous if previous else '')
        if token.kind == 'end':
            self.fail('unexpected end of expression', token, expected)
        self.fail('unexpected %r' % token.text, token, expected)


def parse_tag_expression(expression: str) -> TagExpression:
    """Parse a filter such as `large and not (maintenance or tag-x)`; TagExpressionError if invalid."""
    if not isinstance(expression, str):
        raise TagExpressionError('a tag expression must be a string, got %s' % type(expression).__name__, 0, '')
    return TagExpression(_Parser(expression).parse(), expression)
