"""Running compiled tag rules against one host: the sandbox, the evidence, the explanations.

A rule's `when` is a Jinja2 expression written by users, so it runs in a sandbox
(`RuleEnvironment`, an ImmutableSandboxedEnvironment without Jinja's default globals) and sees
only the names in CONTEXT_NAMES. Three things make the results explainable and robust:

- Facts, attributes and variables are wrapped in `Recorded` mappings: every value the
  expression reads is written to the rule's evidence under its path
  ('facts.schemas.totals.total_bytes'), so a tag can say why it was set.
- A missing key reads as a `PathUndefined` that remembers its path. Using it (comparison,
  arithmetic, truth test) raises `MissingData`, which ends the rule as FALSE with the reason
  "facts.x is missing" — incomplete facts are normal (a subset denied by privileges), not
  errors. `is defined` and `default()` still work, so a rule can handle gaps on purpose.
- Anything else that fails (a sandbox violation, a bad date, a type error) is that host's
  error for that rule: the rule counts as false and the other rules and hosts go on.

Speed matters (30 rules x 10,000 hosts in well under 2 s): each rule is compiled once, one
Jinja context serves every rule of a host, and the wrappers are small slotted objects.
"""

from __future__ import annotations

import datetime as _datetime
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import FunctionType

from jinja2 import Undefined, nodes
from jinja2.exceptions import UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import missing

# Mapping methods a rule may call on facts/attrs/vars when no key has that name: `facts.x.get('y', 0)`.
MAPPING_METHODS = frozenset({'get', 'keys', 'items', 'values'})
# Limits for the operators that can allocate without bound ('x' * 10**9, 10 ** 10 ** 10).
MAX_REPEAT_LENGTH = 100_000
MAX_EXPONENT = 1_000


class MissingData(Exception):
    """A rule used a value that is not there; the rule is false, and the reason names the path."""

    def __init__(self, reason: str, null_path: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.null_path = null_path   # the null value in the way, if that was the cause


def _join(path: str, key) -> str:
    return path + '.' + key if type(key) is str else '%s[%r]' % (path, key)


# The scope of the host being evaluated, per thread. The sandbox sees a bare None when a rule
# reads an attribute of a null fact (`facts.schemas.totals` with `facts.schemas` null); the
# scope remembers which path that None came from, so the reason can name it.
_current = threading.local()


# --- Undefined with a path ------------------------------------------------------------------------

class PathUndefined(Undefined):
    """An Undefined that knows which path was missing and stops the rule when used."""

    __slots__ = ('_path', '_first_missing', '_null_parent')

    def __init__(self, hint=None, obj=missing, name=None, exc=UndefinedError, path=None, first_missing=None,
                 null_parent=None):
        super().__init__(hint, obj, name, exc)
        self._path = path
        self._first_missing = first_missing or path
        self._null_parent = null_parent

    def child(self, key) -> 'PathUndefined':
        """`facts.nope.deeper` stays undefined (so `is defined` is false) and keeps the first gap."""
        if self._path is None or self._undefined_exception is not UndefinedError:
            return self
        return PathUndefined(path=_join(self._path, key), first_missing=self._first_missing,
                             null_parent=self._null_parent)

    @property
    def missing_reason(self) -> str:
        if self._path is None:
            return self._undefined_message
        if self._null_parent:
            return '%s is missing (%s is null)' % (self._path, self._null_parent)
        if self._first_missing != self._path:
            return '%s is missing (%s is missing)' % (self._path, self._first_missing)
        return '%s is missing' % self._path

    def _fail(self, *args, **kwargs):
        if self._undefined_exception is not UndefinedError:
            # The sandbox refused an attribute (SecurityError): an error, not missing data.
            raise self._undefined_exception(self._undefined_message)
        raise MissingData(self.missing_reason, self._null_parent)


# Every operation Jinja's Undefined refuses, plus those StrictUndefined refuses (truth test,
# equality, iteration, str, len, in): a rule must not silently compare a missing value.
for _name, _value in list(vars(Undefined).items()):
    if _value is Undefined._fail_with_undefined_error and _name != '_fail_with_undefined_error':
        setattr(PathUndefined, _name, PathUndefined._fail)
for _name in ('__iter__', '__str__', '__len__', '__eq__', '__ne__', '__bool__', '__hash__', '__contains__'):
    setattr(PathUndefined, _name, PathUndefined._fail)
PathUndefined._fail_with_undefined_error = PathUndefined._fail


def _fail_if_undefined(value):
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()


# --- Recording wrappers --------------------------------------------------------------------------

class _Scope:
    """Per host: where the current rule's evidence goes and the last null it read (both reset
    before each rule)."""

    __slots__ = ('evidence', 'null_path')

    def __init__(self):
        self.evidence = {}
        self.null_path = None


class Recorded(Mapping):
    """A read-only view of a dict that writes every leaf value read into the rule's evidence.

    Nested dicts come back wrapped with a longer path; lists and scalars are leaves. Keys win
    over dict methods, so `facts.schemas.items` is the schema dict, not dict.items.
    Children (wrappers and leaf paths) are cached: the 30 rules of a host read the same few
    sections, and the data cannot change under an immutable sandbox.
    """

    __slots__ = ('_data', '_path', '_scope', '_children')

    def __init__(self, data: Mapping, path: str, scope: _Scope):
        self._data = data
        self._path = path
        self._scope = scope
        self._children = {}

    def read(self, key, attribute=False):
        """The sandbox's attribute and item access: a value, a wrapper or a PathUndefined."""
        try:
            child = self._children.get(key)
        except TypeError:   # an unhashable key cannot name anything
            return PathUndefined(path=_join(self._path, key))
        if child is None:   # first read of this key on this host
            data = self._data
            if key not in data:
                if attribute and key in MAPPING_METHODS:
                    return getattr(self, key)
                if type(key) is str and key.startswith('_'):   # a name built at run time: '_' ~ '_class__'
                    return PathUndefined('access to attribute %r of %r is unsafe.' % (key, self._path),
                                         obj=self, name=key, exc=SecurityError)
                return PathUndefined(path=_join(self._path, key))
            value = data[key]
            path = self._path + '.' + key if type(key) is str else _join(self._path, key)
            if isinstance(value, dict):
                child = self._children[key] = Recorded(value, path, self._scope)
                return child
            child = self._children[key] = path
        elif type(child) is Recorded:
            return child
        else:
            value = self._data[key]
        scope = self._scope
        scope.evidence[child] = value
        if value is None:
            scope.null_path = child
        return value

    def __getitem__(self, key):
        if key not in self._data:
            raise KeyError(key)
        return self.read(key)

    # Whole-dict reads: `facts.errors | length` counted the entries, so they are the evidence;
    # `'users' in facts.errors` and iteration read the keys (values read later record themselves).
    def __len__(self):
        self._scope.evidence[self._path] = self._data
        return len(self._data)

    def __iter__(self):
        self._scope.evidence[self._path] = list(self._data)
        return iter(self._data)

    def __contains__(self, key):
        self._scope.evidence[self._path] = list(self._data)
        return key in self._data

    def __repr__(self):
        return '<%s>' % self._path


class TagView:
    """`tags.x`, `tags['x']`, `'x' in tags`: whether tag x is true so far (manual or evaluated)."""

    __slots__ = ('_true', '_scope')

    def __init__(self, true_tags: set, scope: _Scope):
        self._true = true_tags
        self._scope = scope

    def read(self, name) -> bool:
        value = name in self._true
        self._scope.evidence['tags.%s' % name] = value
        return value

    __contains__ = read

    def __repr__(self):
        return '<tags>'


# --- Helpers available to rules ------------------------------------------------------------------

def _number(helper: str, value):
    _fail_if_undefined(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError('%s() needs a number, got %s %r' % (helper, type(value).__name__, value))
    return value


def days(n):
    """Seconds in n days."""
    return _number('days', n) * 86400


def hours(n):
    """Seconds in n hours."""
    return _number('hours', n) * 3600


def gb(n):
    """Bytes in n GiB (1024**3), the unit DBAs mean when they say GB of data."""
    return _number('gb', n) * 1024 ** 3


def mb(n):
    """Bytes in n MiB (1024**2)."""
    return _number('mb', n) * 1024 ** 2


def date(value):
    """ISO date or date-time ('2027-03-31', '2027-03-31T12:00:00Z') -> epoch seconds; naive means UTC."""
    _fail_if_undefined(value)
    if isinstance(value, _datetime.datetime):
        moment = value
    elif isinstance(value, _datetime.date):   # YAML turns an unquoted 2027-03-31 into a date
        moment = _datetime.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = _datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError('date(): %r is not an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)' % value) from None
    else:
        raise TypeError('date() needs an ISO date string, got %s %r' % (type(value).__name__, value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_datetime.timezone.utc)
    return moment.timestamp()


HELPERS = {'days': days, 'hours': hours, 'gb': gb, 'mb': mb, 'date': date}
_TRUSTED_CALLABLES = frozenset(HELPERS.values())
# Everything a `when` expression may name. Jinja's default globals (range, lipsum, dict,
# cycler, joiner, namespace) are deliberately absent.
CONTEXT_NAMES = frozenset({'facts', 'attrs', 'tags', 'vars', 'now', 'host'}) | frozenset(HELPERS)


# --- The sandbox ---------------------------------------------------------------------------------

class RuleEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox rules run in: no globals but the rule context, paths on every lookup."""

    intercepted_binops = frozenset({'*', '**'})

    def __init__(self):
        super().__init__(undefined=PathUndefined, autoescape=False)
        self.globals.clear()
        # Any template gives a Context; an empty one is the cheapest to keep around.
        self._context_template = self.from_string('')

    def getattr(self, obj, attribute):
        kind = type(obj)
        if kind is Recorded:
            # Recorded.read inlined for the commonest case, a leaf this host has read before:
            # it is the hottest line of a fleet-wide evaluation, and a Python call costs as much.
            child = obj._children.get(attribute)
            if type(child) is str:
                value = obj._data[attribute]
                scope = obj._scope
                scope.evidence[child] = value
                if value is None:
                    scope.null_path = child
                return value
            return child if child is not None else obj.read(attribute, True)
        if kind is TagView:
            return obj.read(attribute)
        if kind is PathUndefined:
            return obj.child(attribute)
        if obj is None:
            return self._attribute_of_null(attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        kind = type(obj)
        if kind is Recorded:
            return obj.read(argument)
        if kind is TagView:
            return obj.read(argument)
        if kind is PathUndefined:
            return obj.child(argument)
        if obj is None:
            return self._attribute_of_null(argument)
        return super().getitem(obj, argument)

    @staticmethod
    def _attribute_of_null(key):
        scope = getattr(_current, 'scope', None)
        parent = scope.null_path if scope is not None else None
        if parent is None:
            return PathUndefined(hint='null has no attribute %r' % (key,))
        return PathUndefined(path=_join(parent, key), null_parent=parent)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's signature
        if type(__obj) is FunctionType and __obj in _TRUSTED_CALLABLES:   # our helpers skip the checks
            return __obj(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context, operator_, left, right):
        if operator_ == '**' and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError('exponent %r is larger than %d' % (right, MAX_EXPONENT))
        if operator_ == '*':
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) \
                        and len(sequence) * count > MAX_REPEAT_LENGTH:
                    raise SecurityError('repeating a %s %d times would exceed %d items'
                                        % (type(sequence).__name__, count, MAX_REPEAT_LENGTH))
        return super().call_binop(context, operator_, left, right)

    def compile_rule(self, expression: nodes.Expr):
        """The render function of `result = <expression>`, compiled once (what compile_expression does)."""
        body = [nodes.Assign(nodes.Name('result', 'store'), expression, lineno=1)]
        return self.from_string(nodes.Template(body, lineno=1)).root_render_func

    def host_context(self, namespace: dict):
        return self._context_template.new_context(namespace, shared=True)


ENVIRONMENT = RuleEnvironment()


# --- Results -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HostContext:
    """What rules see of one host: its facts (ansible_facts.mysql), attributes and manual tags."""

    name: str
    facts: Mapping | None
    attributes: Mapping | None = None
    manual_tags: frozenset[str] = frozenset()


class Explanation:
    """Why one rule is true or false on one host.

    `reason` is built on demand from the evidence when the rule simply evaluated (most rules on
    most hosts), so explaining costs nothing until someone asks.
    """

    __slots__ = ('tag', 'result', 'evidence', 'error', '_reason')

    def __init__(self, tag: str, result: bool, evidence: dict, error: str | None = None, reason: str | None = None):
        self.tag = tag
        self.result = result
        self.evidence = evidence
        self.error = error
        self._reason = reason

    @property
    def reason(self) -> str:
        """'true: read facts.x=1, vars.y=2', 'facts.x is missing', 'error: ...'."""
        if self._reason is not None:
            return self._reason
        read = ', '.join('%s=%r' % item for item in self.evidence.items()) or 'no values'
        return '%s: read %s' % ('true' if self.result else 'false', read)

    @property
    def outcome(self) -> str:
        """'true', 'false', 'missing' (stopped on missing or null data) or 'error'."""
        if self.error is not None:
            return 'error'
        if self._reason is not None:
            return 'missing'
        return 'true' if self.result else 'false'

    def as_dict(self) -> dict:
        return dict(tag=self.tag, result=self.result, outcome=self.outcome, reason=self.reason,
                    evidence=self.evidence, error=self.error)

    def __eq__(self, other):
        return isinstance(other, Explanation) and self.as_dict() == other.as_dict()

    def __repr__(self):
        return 'Explanation(tag=%r, result=%r, reason=%r)' % (self.tag, self.result, self.reason)


class Evaluation:
    """The rules' verdict on one host.

    `tags` (true tag -> evidence) and `errors` (tag -> "host X: rule Y: why") are filled as the
    rules run; `explanations` (every rule, in evaluation order) are built when first asked for,
    because a fleet-wide evaluation rarely reads them and building 300,000 of them is not free.
    """

    __slots__ = ('host', 'now', 'tags', 'errors', '_compiled', '_results', '_evidence', '_reasons', '_explanations')

    def __init__(self, host: str, now: float, compiled: tuple):
        self.host = host
        self.now = now
        self.tags: dict[str, dict] = {}
        self.errors: dict[str, str] = {}
        self._compiled = compiled   # ((tag, render), ...): the order of _results and _evidence
        self._results: list[bool] = []
        self._evidence: list[dict] = []
        self._reasons: dict[str, str] = {}   # tag -> reason, for rules that stopped on missing data or an error
        self._explanations = None

    @property
    def explanations(self) -> dict[str, Explanation]:
        if self._explanations is None:
            self._explanations = {
                tag: Explanation(tag, result, evidence, self.errors.get(tag), self._reasons.get(tag))
                for (tag, _render), result, evidence in zip(self._compiled, self._results, self._evidence)}
        return self._explanations

    def as_dict(self) -> dict:
        return dict(host=self.host, now=self.now, tags=self.tags, errors=self.errors,
                    explanations={tag: item.as_dict() for tag, item in self.explanations.items()})

    def __repr__(self):
        return 'Evaluation(host=%r, tags=%r, errors=%r)' % (self.host, sorted(self.tags), self.errors)


# --- Evaluation ----------------------------------------------------------------------------------

def _describe_error(exc: Exception) -> str:
    if isinstance(exc, SecurityError):
        return 'blocked by the sandbox: %s' % exc
    if isinstance(exc, (ValueError, TypeError)) and str(exc).startswith(tuple('%s()' % name for name in HELPERS)):
        return str(exc)
    return '%s: %s' % (type(exc).__name__, exc)


def _subset_error(facts, null_path: str | None) -> str:
    """mysql_facts sets a subset it could not gather to null and says why under facts.errors."""
    if not null_path or not null_path.startswith('facts.') or not isinstance(facts, Mapping):
        return ''
    subset = null_path.split('.')[1]
    errors = facts.get('errors')
    if null_path == 'facts.' + subset and isinstance(errors, Mapping) and errors.get(subset):
        return ' - facts.errors.%s: %s' % (subset, errors[subset])
    return ''


def evaluate_host(compiled: tuple, variables: Mapping, host: HostContext, now: float,
                  environment: RuleEnvironment = ENVIRONMENT) -> Evaluation:
    """Run `compiled` (((tag, render function), ...) in dependency order) against one host."""
    scope = _current.scope = _Scope()
    true_tags = set(host.manual_tags or ())
    context = environment.host_context(dict(
        HELPERS, now=now, host=host.name, tags=TagView(true_tags, scope),
        facts=Recorded(host.facts or {}, 'facts', scope),
        attrs=Recorded(host.attributes or {}, 'attrs', scope),
        vars=Recorded(variables, 'vars', scope)))
    context_vars = context.vars   # where the compiled `result = ...` lands
    evaluation = Evaluation(host.name, now, compiled)
    results, evidences, tags = evaluation._results, evaluation._evidence, evaluation.tags
    for tag, render in compiled:
        evidence = scope.evidence = {}
        evidences.append(evidence)
        scope.null_path = None
        try:
            for _ in render(context):
                pass
            result = bool(context_vars['result'])
        except Exception as exc:  # noqa: BLE001 - a user's rule: any failure is explained, never raised
            results.append(False)
            _explain_failure(evaluation, host, tag, exc, scope.null_path)
            continue
        results.append(result)
        if result:
            true_tags.add(tag)
            tags[tag] = evidence
    return evaluation


def _explain_failure(evaluation: Evaluation, host: HostContext, tag: str, exc: Exception, null_path: str | None):
    """Missing or null data makes the rule false with a reason; anything else is also an error."""
    if isinstance(exc, MissingData):
        evaluation._reasons[tag] = exc.reason + _subset_error(host.facts, exc.null_path)
        return
    if isinstance(exc, TypeError) and null_path is not None and 'None' in str(exc):
        # A comparison or a helper met a null fact (the lag of a stopped SQL thread...).
        evaluation._reasons[tag] = '%s is null%s' % (null_path, _subset_error(host.facts, null_path))
        return
    why = _describe_error(exc)
    evaluation.errors[tag] = 'host %s: rule %s: %s' % (host.name, tag, why)
    evaluation._reasons[tag] = 'error: %s' % why


def evaluate_hosts(compiled: tuple, variables: Mapping, hosts: Iterable[HostContext], now: float | None = None,
                   environment: RuleEnvironment = ENVIRONMENT) -> dict[str, Evaluation]:
    """Every host against the same rules and the same `now`, so a fleet's tags are consistent."""
    moment = time.time() if now is None else now
    return {host.name: evaluate_host(compiled, variables, host, moment, environment) for host in hosts}


__all__ = ['CONTEXT_NAMES', 'ENVIRONMENT', 'Evaluation', 'Explanation', 'HELPERS', 'HostContext', 'MissingData',
           'PathUndefined', 'Recorded', 'RuleEnvironment', 'TagView', 'evaluate_host', 'evaluate_hosts']
