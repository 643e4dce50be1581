"""Loading, checking and ordering tag rules: every mistake in a rules file is caught at load."""

import textwrap

import pytest
import yaml

from dbfleet.tags import RulesError, load_rules, parse_rules
from tests.conftest import REPO

DEFAULT_RULES = REPO / 'inventories' / 'tag_rules.yml'


def rules_text(*rules, variables=None):
    document = {'rules': [dict(rule) for rule in rules]}
    if variables is not None:
        document['vars'] = variables
    return yaml.safe_dump(document, sort_keys=False)


def rule(tag, when, dimension='test', **extra):
    return dict(tag=tag, dimension=dimension, when=when, **extra)


def load_error(text, **kwargs) -> str:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, source='rules.yml', **kwargs)
    message = str(caught.value)
    assert message == caught.value.message
    return message


# --- The shipped rules ---------------------------------------------------------------------------

def test_default_rules_load_with_the_documented_tags_and_kinds():
    ruleset = load_rules(DEFAULT_RULES)
    kinds = {item.tag: item.kind for item in ruleset.rules}
    assert kinds == {
        'high_risk': 'rule', 'out_of_warranty': 'rule', 'large': 'rule', 'small': 'rule', 'primary': 'rule',
        'replica': 'rule', 'standalone': 'rule', 'lagging': 'rule', 'read_only': 'rule',
        'critical': 'derived', 'backup_heavy': 'derived', 'archive_lagging': 'rule',
        'untested_backup': 'rule',
    }
    assert ruleset.rule('critical').depends_on == frozenset({'high_risk', 'primary'})
    assert ruleset.rule('backup_heavy').depends_on == frozenset({'large', 'primary'})
    assert ruleset.variables == {'high_risk_days': 1095, 'large_gb': 50, 'small_gb': 1, 'lagging_seconds': 300,
                                 'archive_lag_seconds': 900, 'untested_backup_days': 30}


def test_default_path_comes_from_settings():
    assert [item.tag for item in load_rules().rules] == [item.tag for item in load_rules(DEFAULT_RULES).rules]


def test_definitions_are_what_the_store_keeps():
    definitions = load_rules(DEFAULT_RULES).definitions()
    assert definitions[0] == dict(name='high_risk', dimension='risk', kind='rule',
                                  description='mysqld and the OS not restarted for more than 3 years '
                                              '(unpatched kernel and server)')
    assert {item['name']: item['kind'] for item in definitions}['critical'] == 'derived'
    assert all(set(item) == {'name', 'dimension', 'description', 'kind'} for item in definitions)
    assert all(item['description'] for item in definitions)


def test_every_dependency_comes_before_the_rule_that_uses_it():
    ruleset = load_rules(DEFAULT_RULES)
    position = {tag: index for index, tag in enumerate(ruleset.order)}
    assert sorted(ruleset.order) == sorted(item.tag for item in ruleset.rules)
    for item in ruleset.rules:
        assert all(position[dependency] < position[item.tag] for dependency in item.depends_on)


def test_order_follows_dependencies_even_when_the_file_does_not():
    ruleset = parse_rules(rules_text(
        rule('c', 'tags.b and tags.a'),
        rule('b', 'tags.a'),
        rule('x', 'true'),
        rule('a', 'facts.server.read_only'),
    ))
    assert [item.tag for item in ruleset.rules] == ['c', 'b', 'x', 'a']   # rules stay in file order
    assert ruleset.order == ['x', 'a', 'b', 'c']                          # file order where free


def test_description_is_optional():
    ruleset = parse_rules(rules_text(rule('a', 'true')))
    assert ruleset.rules[0].description == ''


# --- Overrides -----------------------------------------------------------------------------------

def test_overrides_replace_thresholds():
    ruleset = load_rules(DEFAULT_RULES, overrides={'large_gb': 100, 'lagging_seconds': '60'})
    assert ruleset.variables['large_gb'] == 100
    assert ruleset.variables['lagging_seconds'] == 60      # a numeric string from a command line
    assert load_rules(DEFAULT_RULES).variables['large_gb'] == 50


def test_override_of_an_unknown_variable_is_refused():
    with pytest.raises(RulesError, match="cannot override unknown variable 'large_gib'; the rules define: "
                                         "archive_lag_seconds, high_risk_days, lagging_seconds, large_gb, small_gb"):
        load_rules(DEFAULT_RULES, overrides={'large_gib': 100})


def test_override_of_a_number_must_be_a_number():
    with pytest.raises(RulesError, match="override for 'large_gb' must be a number, got 'lots'"):
        load_rules(DEFAULT_RULES, overrides={'large_gb': 'lots'})


# --- File and document errors --------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(RulesError, match=r'cannot read tag rules file .*nope\.yml: No such file'):
        load_rules(tmp_path / 'nope.yml')


def test_binary_file(tmp_path):
    path = tmp_path / 'rules.yml'
    path.write_bytes(b'rules: []\n\xff\xfe')
    with pytest.raises(RulesError, match=r'rules\.yml is not UTF-8 text \(byte 10\)'):
        load_rules(path)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / 'rules.yml'
    path.write_text(textwrap.dedent("""\
        vars:
          large_gb: 50
        rules:
          - tag: large
            when: facts.x > 1
             dimension: size
        """))
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value).startswith('%s: invalid YAML at line 6, column ' % path)


@pytest.mark.parametrize('text,expected', [
    ('', "rules.yml: the file is empty; expected a mapping with 'rules'"),
    ('- a\n- b\n', "rules.yml: expected a mapping with 'rules' (and optionally 'vars'), got a list"),
    ('vars: {}\n', "rules.yml: missing key 'rules'"),
    ('rules: []\nvariables: {}\n',
     "rules.yml: unknown key 'variables' (did you mean 'vars'?); allowed keys: rules, vars"),
    ('rules: {a: 1}\n', "rules.yml: 'rules' must be a list of rules, got a mapping"),
    ('rules: []\nvars: [1]\n', "rules.yml: 'vars' must be a mapping of name: value, got a list"),
    ('rules: []\nvars: {large-gb: 1}\n', "rules.yml: variable name 'large-gb' must start with a letter"),
    ('rules: [just-a-string]\n', 'rules.yml: rule #1 must be a mapping with keys tag, dimension, description, when'),
])
def test_document_errors(text, expected):
    assert load_error(text).startswith(expected)


def test_an_empty_rule_list_is_a_valid_rule_set():
    ruleset = parse_rules('rules: []\n')
    assert ruleset.rules == [] and ruleset.order == [] and ruleset.definitions() == []


# --- Rule errors ---------------------------------------------------------------------------------

def test_missing_keys_are_named():
    message = load_error(rules_text(dict(tag='large', description='big')))
    assert message == "rules.yml: rule 'large' (#1): missing keys 'dimension', 'when'"
    assert load_error(rules_text(dict(dimension='size', when='true'))) == "rules.yml: rule #1: missing key 'tag'"


def test_unknown_key_suggests_the_right_one():
    message = load_error(rules_text(dict(tag='large', dimension='size', when='true', whne='x')))
    assert message == ("rules.yml: rule 'large' (#1): unknown key 'whne' (did you mean 'when'?); "
                       "allowed keys: description, dimension, tag, when")


def test_duplicate_tag():
    message = load_error(rules_text(rule('large', 'true'), rule('small', 'true'), rule('large', 'false')))
    assert message == "rules.yml: rule 'large' (#3): duplicate tag 'large': rule #1 defines it already"


def test_when_must_be_a_string():
    assert load_error(rules_text(rule('a', True))) == "rules.yml: rule 'a' (#1): 'when' must be a string, got bool"


@pytest.mark.parametrize('tag', ['has space', 'a/b', 'and', 'NOT', 'ümlaut'])
def test_tag_names_must_be_usable_in_filter_expressions(tag):
    assert 'invalid tag name' in load_error(rules_text(rule(tag, 'true')))


def test_jinja_syntax_error_names_the_rule_and_the_problem():
    message = load_error(rules_text(rule('ok', 'true'), rule('broken', 'facts.server.uptime_seconds >')))
    assert message.startswith("rules.yml: rule 'broken' (#2): syntax error in when (facts.server.uptime_seconds >): ")
    assert message.endswith("unexpected 'end of template'")


def test_text_after_the_expression_is_a_syntax_error():
    message = load_error(rules_text(rule('a', 'facts.x > 1 facts.y')))
    assert "rule 'a' (#1): syntax error in when" in message and "unexpected 'facts'" in message


@pytest.mark.parametrize('when,name', [
    ('facts.__class__', '__class__'),
    ('().__class__.__bases__', '__class__'),
    ('facts._private > 1', '_private'),
    ("facts['__class__']", '__class__'),
    ("facts | attr('__class__')", '__class__'),
    ("facts.users.without_password | map(attribute='__class__') | list", '__class__'),
    ('_secret', '_secret'),
])
def test_names_starting_with_underscore_are_refused_before_anything_runs(when, name):
    message = load_error(rules_text(rule('escape', when)))
    assert message == ("rules.yml: rule 'escape' (#1): unsafe expression: '%s' - names and attributes "
                       "starting with '_' are not allowed" % name)


def test_cycler_globals_escape_is_refused():
    message = load_error(rules_text(rule('escape', 'cycler.__init__.__globals__')))
    assert "unsafe expression: '__globals__'" in message or "unsafe expression: '__init__'" in message


@pytest.mark.parametrize('name', ['lipsum', 'range', 'dict', 'cycler', 'joiner', 'namespace', 'os'])
def test_jinja_default_globals_are_not_available(name):
    message = load_error(rules_text(rule('a', '%s(10**9)' % name)))
    assert message.startswith("rules.yml: rule 'a' (#1): unknown name '%s'; rules can use: attrs, date, days, "
                              "facts, gb, host, hours, mb, now, tags, vars" % name)


def test_unknown_variable():
    message = load_error(rules_text(rule('a', 'facts.x > vars.lage_gb'), variables={'large_gb': 50}))
    assert message == "rules.yml: rule 'a' (#1): unknown variable 'vars.lage_gb'; defined: large_gb"


def test_unknown_filter_and_test():
    assert "unknown filter 'frobnicate'" in load_error(rules_text(rule('a', 'facts.x | frobnicate')))
    assert "unknown test 'frobnicated'" in load_error(rules_text(rule('a', 'facts.x is frobnicated')))


def test_reference_to_an_unknown_tag():
    message = load_error(rules_text(rule('a', 'true'), rule('b', 'tags.a and tags.nope')))
    assert message == ("rules.yml: rule 'b' (#2): refers to unknown tag 'nope' "
                       "(no rule defines it and it is not a known manual tag)")


def test_known_manual_tags_may_be_referred_to():
    ruleset = parse_rules(rules_text(rule('a', "tags.maintenance or 'tag-x' in tags or tags['env:prod']")),
                          known_manual_tags={'maintenance', 'tag-x', 'env:prod'})
    assert ruleset.rules[0].depends_on == frozenset({'maintenance', 'tag-x', 'env:prod'})
    assert ruleset.rules[0].kind == 'derived'


@pytest.mark.parametrize('when', ['tags[facts.name]', 'facts.name in tags', 'tags', 'tags | length > 1'])
def test_tags_must_be_named_literally(when):
    message = load_error(rules_text(rule('a', when)))
    assert 'literal tag name' in message or 'use tags as tags.NAME' in message


# --- Cycles --------------------------------------------------------------------------------------

def test_cycle_is_named_in_order():
    message = load_error(rules_text(
        rule('x', 'true'),
        rule('a', 'tags.b'),
        rule('b', 'tags.c and tags.x'),
        rule('c', 'tags.a'),
    ))
    assert message == 'rules.yml: rule cycle: a -> b -> c -> a'


def test_cycle_starts_at_the_first_rule_in_the_file():
    message = load_error(rules_text(rule('c', 'tags.a'), rule('b', 'tags.c'), rule('a', 'tags.b')))
    assert message == 'rules.yml: rule cycle: c -> a -> b -> c'


def test_a_rule_referring_to_itself_is_a_cycle():
    assert load_error(rules_text(rule('a', 'tags.a or true'))) == 'rules.yml: rule cycle: a -> a'
