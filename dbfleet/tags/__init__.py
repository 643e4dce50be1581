"""Tags: what a database host is, derived from its facts by rules, and filters over tags.

- rules.py: load, check and order the rules file (RuleSet, RulesError).
- evaluate.py: run rules against hosts in a sandbox, with evidence and explanations.
- expression.py: the filter language (`large and not maintenance`) every tool uses to pick hosts.
- groups.py: the inventory group name of a tag.
"""

from dbfleet.tags.evaluate import Evaluation, Explanation, HostContext
from dbfleet.tags.expression import TagExpression, TagExpressionError, is_valid_tag_name, parse_tag_expression
from dbfleet.tags.groups import tag_group
from dbfleet.tags.rules import Rule, RulesError, RuleSet, load_rules, parse_rules

__all__ = [
    'Evaluation',
    'Explanation',
    'HostContext',
    'Rule',
    'RuleSet',
    'RulesError',
    'TagExpression',
    'TagExpressionError',
    'is_valid_tag_name',
    'load_rules',
    'parse_rules',
    'parse_tag_expression',
    'tag_group',
]
