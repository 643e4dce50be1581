"""Tag rules: load the YAML file, check every rule before any of them runs, order them.

A rules file is user input, so everything that can be wrong with it is found at load time
with a message that names the rule: YAML syntax, missing or unknown keys, duplicate tags,
Jinja syntax, unknown names or variables, unsafe names (anything starting with '_', which
is how sandbox escapes begin), references to tags nobody defines, and cycles between
derived rules. A rule set that loads never fails on the rules' own account at evaluation;
only a host's data can make a rule fail there (see evaluate.py).
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import yaml
from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser

from dbfleet.tags.evaluate import (
    CONTEXT_NAMES,
    ENVIRONMENT,
    Evaluation,
    HostContext,
    evaluate_host,
    evaluate_hosts,
)
from dbfleet.tags.expression import is_valid_tag_name

TOP_LEVEL_KEYS = ('rules', 'vars')
RULE_KEYS = ('tag', 'dimension', 'description', 'when')
REQUIRED_RULE_KEYS = ('tag', 'dimension', 'when')
VARIABLE_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


class RulesError(Exception):
    """The rules file (or the overrides) cannot be used; the message says where and why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Rule:
    """One rule: `tag` is true on a host when `when` is. Derived rules refer to other tags."""

    tag: str
    dimension: str
    description: str
    when: str
    kind: str                   # 'rule' | 'derived' (derived iff it refers to tags)
    depends_on: frozenset[str]  # the tags `when` refers to (rule tags and manual tags)


class RuleSet:
    """Checked, compiled rules in dependency order, ready to evaluate any number of hosts."""

    def __init__(self, rules: list[Rule], order: list[str], variables: dict, compiled: tuple, source: str):
        self.rules = rules
        self.order = order
        self.source = source
        self._variables = variables
        self._compiled = compiled
        self._by_tag = {rule.tag: rule for rule in rules}

    @property
    def variables(self) -> dict:
        """The thresholds in effect (file values with overrides applied); a copy."""
        return dict(self._variables)

    def rule(self, tag: str) -> Rule:
        return self._by_tag[tag]

    def definitions(self) -> list[dict]:
        """Tag definitions as the store keeps them, in file order."""
        return [dict(name=rule.tag, dimension=rule.dimension, description=rule.description, kind=rule.kind)
                for rule in self.rules]

    def evaluate(self, host: HostContext, now: float | None = None) -> Evaluation:
        return evaluate_host(self._compiled, self._variables, host, time.time() if now is None else now)

    def evaluate_many(self, hosts: Iterable[HostContext], now: float | None = None) -> dict[str, Evaluation]:
        return evaluate_hosts(self._compiled, self._variables, hosts, now)

    def __repr__(self):
        return '<RuleSet %s: %d rules>' % (self.source, len(self.rules))


def load_rules(path: str | Path | None = None, overrides: Mapping | None = None,
               known_manual_tags: Iterable[str] = ()) -> RuleSet:
    """Load and check a rules file (default: the `tag_rules` setting).

    `overrides` replace values under `vars` (only names the file defines); `known_manual_tags`
    are tags set by hand that rules may refer to (`tags.maintenance`).
    """
    if path is None:
        from dbfleet.settings import get_settings
        path = get_settings().tag_rules
    try:
        text = Path(path).read_text(encoding='utf-8')
    except OSError as exc:
        raise RulesError('cannot read tag rules file %s: %s' % (path, exc.strerror or exc)) from None
    except UnicodeDecodeError as exc:
        raise RulesError('tag rules file %s is not UTF-8 text (byte %d)' % (path, exc.start)) from None
    return parse_rules(text, source=str(path), overrides=overrides, known_manual_tags=known_manual_tags)


def parse_rules(text: str, source: str = '<rules>', overrides: Mapping | None = None,
                known_manual_tags: Iterable[str] = ()) -> RuleSet:
    """The same as load_rules for rules already in memory (an upload, a test)."""
    document = _parse_yaml(text, source)
    variables = _apply_overrides(_variables(document.get('vars'), source), overrides, source)
    entries = _rule_entries(document.get('rules'), source)
    rule_tags = [entry['tag'] for entry in entries]
    manual = frozenset(known_manual_tags or ())
    rules, expressions = [], {}
    for number, entry in enumerate(entries, 1):
        where = "%s: rule '%s' (#%d)" % (source, entry['tag'], number)
        expression = _parse_when(entry['when'], where)
        depends_on = frozenset(_check_expression(expression, where, variables))
        unknown = sorted(depends_on - set(rule_tags) - manual)
        if unknown:
            raise RulesError("%s: refers to unknown tag '%s' (no rule defines it and it is not a known manual tag)"
                             % (where, unknown[0]))
        rules.append(Rule(tag=entry['tag'], dimension=entry['dimension'], description=entry.get('description') or '',
                          when=entry['when'], kind='derived' if depends_on else 'rule', depends_on=depends_on))
        expressions[entry['tag']] = (expression, where)
    order = _dependency_order(rules, source)
    compiled = tuple((tag, _compile(*expressions[tag])) for tag in order)
    return RuleSet(rules, order, variables, compiled, source)


# --- The document --------------------------------------------------------------------------------

def _parse_yaml(text: str, source: str) -> dict:
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = ' at line %d, column %d' % (mark.line + 1, mark.column + 1) if mark else ''
        problem = ' '.join(part for part in (exc.context, exc.problem) if part)
        raise RulesError('%s: invalid YAML%s: %s' % (source, position, problem)) from None
    except yaml.YAMLError as exc:
        raise RulesError('%s: invalid YAML: %s' % (source, exc)) from None
    if document is None:
        raise RulesError("%s: the file is empty; expected a mapping with 'rules' (and optionally 'vars')" % source)
    if not isinstance(document, dict):
        raise RulesError("%s: expected a mapping with 'rules' (and optionally 'vars'), got %s"
                         % (source, _type_name(document)))
    _reject_unknown_keys(document, TOP_LEVEL_KEYS, source)
    if 'rules' not in document:
        raise RulesError("%s: missing key 'rules'" % source)
    return document


def _variables(raw, source: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RulesError("%s: 'vars' must be a mapping of name: value, got %s" % (source, _type_name(raw)))
    for name in raw:
        if not isinstance(name, str) or not VARIABLE_NAME.match(name):
            raise RulesError("%s: variable name %r must start with a letter and contain only letters, digits "
                             "and '_'" % (source, name))
    return dict(raw)


def _apply_overrides(variables: dict, overrides: Mapping | None, source: str) -> dict:
    """Overrides may only change thresholds the file defines (a typo must not pass silently);
    a numeric threshold stays numeric, though numeric strings from a command line are accepted."""
    if not overrides:
        return variables
    merged = dict(variables)
    for name, value in overrides.items():
        if name not in variables:
            raise RulesError("%s: cannot override unknown variable '%s'; the rules define: %s"
                             % (source, name, ', '.join(sorted(variables)) or 'no variables'))
        if _is_number(variables[name]) and not _is_number(value):
            value = _to_number(value)
            if value is None:
                raise RulesError("%s: override for '%s' must be a number, got %r"
                                 % (source, name, overrides[name]))
        merged[name] = value
    return merged


def _rule_entries(raw, source: str) -> list[dict]:
    if not isinstance(raw, list):
        raise RulesError("%s: 'rules' must be a list of rules, got %s" % (source, _type_name(raw)))
    entries, seen = [], {}
    for number, entry in enumerate(raw, 1):
        if not isinstance(entry, dict):
            raise RulesError('%s: rule #%d must be a mapping with keys %s, got %s'
                             % (source, number, ', '.join(RULE_KEYS), _type_name(entry)))
        label = "rule '%s' (#%d)" % (entry['tag'], number) if isinstance(entry.get('tag'), str) else 'rule #%d' % number
        where = '%s: %s' % (source, label)
        missing = [key for key in REQUIRED_RULE_KEYS if entry.get(key) in (None, '')]
        if missing:
            raise RulesError("%s: missing key%s %s" % (where, 's' if len(missing) > 1 else '',
                                                         ', '.join("'%s'" % key for key in missing)))
        _reject_unknown_keys(entry, RULE_KEYS, where)
        for key in RULE_KEYS:
            if key in entry and entry[key] is not None and not isinstance(entry[key], str):
                raise RulesError("%s: '%s' must be a string, got %s" % (where, key, _type_name(entry[key])))
        tag = entry['tag']
        if not is_valid_tag_name(tag):
            raise RulesError("%s: invalid tag name '%s': use letters, digits and _ - . : (and not and/or/not)"
                             % (where, tag))
        if tag in seen:
            raise RulesError("%s: duplicate tag '%s': rule #%d defines it already" % (where, tag, seen[tag]))
        seen[tag] = number
        entries.append(entry)
    return entries


def _reject_unknown_keys(mapping: dict, allowed: tuple, where: str):
    for key in mapping:
        if key not in allowed:
            guess = difflib.get_close_matches(str(key), allowed, n=1)
            hint = " (did you mean '%s'?)" % guess[0] if guess else ''
            raise RulesError("%s: unknown key '%s'%s; allowed keys: %s"
                             % (where, key, hint, ', '.join(sorted(allowed))))


# --- The `when` expressions ----------------------------------------------------------------------

def _parse_when(source: str, where: str) -> nodes.Expr:
    try:
        parser = Parser(ENVIRONMENT, source, state='variable')
        expression = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise TemplateSyntaxError('unexpected %r after the expression' % token.value, token.lineno)
    except TemplateSyntaxError as exc:
        raise RulesError('%s: syntax error in when (%s): %s' % (where, source.strip(), exc.message)) from None
    expression.set_environment(ENVIRONMENT)
    return expression


def _compile(expression: nodes.Expr, where: str):
    try:
        return ENVIRONMENT.compile_rule(expression)
    except TemplateSyntaxError as exc:  # includes TemplateAssertionError (unknown filter...)
        raise RulesError('%s: cannot compile when: %s' % (where, exc.message)) from None


def _is_name(node, name: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == name


def _literal_string(node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _check_expression(expression: nodes.Expr, where: str, variables: dict) -> set[str]:
    """Reject what must never run, and return the tags the expression refers to."""
    _reject_unsafe_names(expression, where)
    return _check_names(expression, where, variables)


def _reject_unsafe_names(expression: nodes.Expr, where: str):
    """Every sandbox escape starts with a name like __class__ or __globals__: refuse any name,
    attribute or attribute-like string argument starting with '_', in reading order.
    (A name built at run time is still stopped by the sandbox, as that host's error.)"""
    def names(node):
        if isinstance(node, nodes.Name):
            yield node.name
        elif isinstance(node, nodes.Getattr):
            yield from names(node.node)
            yield node.attr
            return
        elif isinstance(node, nodes.Getitem):
            yield from names(node.node)
            if _literal_string(node.arg) is not None:
                yield node.arg.value
            yield from names(node.arg)
            return
        elif isinstance(node, (nodes.Filter, nodes.Test, nodes.Call)):
            # attr('__class__'), map(attribute='__class__'), selectattr('_x')...
            for argument in list(node.args) + [keyword.value for keyword in node.kwargs]:
                if _literal_string(argument) is not None:
                    yield argument.value
        for child in node.iter_child_nodes():
            yield from names(child)

    for name in names(expression):
        if name.startswith('_'):
            raise RulesError("%s: unsafe expression: '%s' - names and attributes starting with '_' are not allowed"
                             % (where, name))


def _check_names(expression: nodes.Expr, where: str, variables: dict) -> set[str]:
    """Names, variables, filters and tests must exist; tags must be named literally (tags.x,
    tags['x'], 'x' in tags) so that the rules can be ordered. Returns the tags referred to."""
    referenced: set[str] = set()

    def check_variable(name):
        if name is not None and name not in variables:
            raise RulesError("%s: unknown variable 'vars.%s'; defined: %s"
                             % (where, name, ', '.join(sorted(variables)) or 'none'))

    def visit(node):
        if isinstance(node, nodes.Name):
            if node.name == 'tags':
                raise RulesError("%s: use tags as tags.NAME, tags['NAME'] or 'NAME' in tags" % where)
            if node.name not in CONTEXT_NAMES:
                raise RulesError("%s: unknown name '%s'; rules can use: %s"
                                 % (where, node.name, ', '.join(sorted(CONTEXT_NAMES))))
            return
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            key = node.attr if isinstance(node, nodes.Getattr) else _literal_string(node.arg)
            if _is_name(node.node, 'tags'):
                if key is None:
                    raise RulesError("%s: tags[...] needs a literal tag name, like tags['tag-x']" % where)
                referenced.add(key)
                return
            if _is_name(node.node, 'vars'):
                check_variable(key)
        elif isinstance(node, nodes.Compare):
            left = node.expr
            visit(left)
            for operand in node.ops:
                if operand.op in ('in', 'notin') and _is_name(operand.expr, 'tags'):
                    name = _literal_string(left)
                    if name is None:
                        raise RulesError("%s: '... in tags' needs a literal tag name, like 'tag-x' in tags" % where)
                    referenced.add(name)
                else:
                    visit(operand.expr)
                left = operand.expr
            return
        elif isinstance(node, (nodes.Filter, nodes.Test)):
            kind = 'filter' if isinstance(node, nodes.Filter) else 'test'
            if node.name not in (ENVIRONMENT.filters if kind == 'filter' else ENVIRONMENT.tests):
                raise RulesError("%s: unknown %s '%s'" % (where, kind, node.name))
        for child in node.iter_child_nodes():
            visit(child)

    visit(expression)
    return referenced


# --- Order ---------------------------------------------------------------------------------------

def _dependency_order(rules: list[Rule], source: str) -> list[str]:
    """Tags in an order where every rule comes after the rules it refers to; file order otherwise."""
    position = {rule.tag: index for index, rule in enumerate(rules)}
    sorter = TopologicalSorter({rule.tag: {tag for tag in rule.depends_on if tag in position} for rule in rules})
    try:
        sorter.prepare()
    except CycleError as exc:
        raise RulesError('%s: rule cycle: %s' % (source, ' -> '.join(_readable_cycle(exc.args[1], position)))) from None
    order = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order.extend(ready)
        sorter.done(*ready)
    return order


def _readable_cycle(cycle: list[str], position: dict) -> list[str]:
    """graphlib lists a cycle as predecessors (b before a when a refers to b); show "a -> b"
    as "a refers to b", starting from the rule that comes first in the file."""
    loop = list(reversed(cycle))[:-1]
    start = min(range(len(loop)), key=lambda index: position[loop[index]])
    loop = loop[start:] + loop[:start]
    return loop + [loop[0]]


# --- Small helpers -------------------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _to_number(value):
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value.strip())
            except ValueError:
                pass
    return None


def _type_name(value) -> str:
    return {dict: 'a mapping', list: 'a list', str: 'a string', type(None): 'nothing'}.get(type(value),
                                                                                          type(value).__name__)
