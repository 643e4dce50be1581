"""Tag rules: the rules the service has loaded (DBFLEET_TAG_RULES), and a check of a rules file
sent as text: its errors, or the tags it would give each host from its latest facts. A check never
reads a file a request names and never writes to the store."""

from __future__ import annotations

from dbfleet.inspection import InspectionError, rule_facts, rules_for
from dbfleet.store import Store
from dbfleet.tags import HostContext, RulesError, parse_rules
from runner_service.errors import Conflict
from runner_service.fleet.schemas import MAX_RULES_TEXT

CHECK_SOURCE = 'rules'  # what a checked text is called in its error messages


class RuleService:
    def __init__(self, store: Store, rules_path: str | None = None):
        self.store = store
        self.rules_path = rules_path

    def loaded(self) -> dict:
        """The rules in effect, as the fleet_tags plugin and `dbfleet tags explain` load them."""
        try:
            ruleset = rules_for(self.rules_path, None)
        except (InspectionError, RulesError) as exc:
            raise Conflict("the service's tag rules (DBFLEET_TAG_RULES) cannot be loaded: %s" % str(exc)[:300]) \
                from None
        return dict(rules=[dict(tag=rule.tag, dimension=rule.dimension, description=rule.description, when=rule.when,
                                kind=rule.kind, depends_on=sorted(rule.depends_on)) for rule in ruleset.rules],
                    order=list(ruleset.order), vars=ruleset.variables)

    def check(self, text: str) -> dict:
        """{valid, errors, order, hosts: [{host, tags, added, removed, errors}]}: the file's errors,
        or what its rules make of every host in the store (manual tags as they are now)."""
        if len(text) > MAX_RULES_TEXT:
            return dict(valid=False, errors=['the rules text is longer than %d characters' % MAX_RULES_TEXT])
        manual_tags = [tag['name'] for tag in self.store.tags.list() if tag['kind'] == 'manual']
        try:
            ruleset = parse_rules(text, source=CHECK_SOURCE, known_manual_tags=manual_tags)
        except RulesError as exc:
            return dict(valid=False, errors=[exc.message])
        except RecursionError:
            return dict(valid=False, errors=['%s: nested too deeply to read' % CHECK_SOURCE])
        hosts = []
        for record in self.store.hosts.inventory(fact_paths=()):
            name = record['name']
            latest = self.store.facts.latest(name)
            facts = rule_facts(self.store, name, latest['facts'] if latest else {})
            current = self.store.tags.of_host(name)
            manual = frozenset(tag for tag, info in current.items() if info['source'] == 'manual')
            evaluation = ruleset.evaluate(HostContext(name, facts, record['attributes'], manual))
            diff = self.store.tags.preview_rules(name, evaluation.tags)
            hosts.append(dict(host=name, tags=sorted(evaluation.tags), added=diff['added'], removed=diff['removed'],
                              errors=dict(evaluation.errors)))
        return dict(valid=True, errors=[], order=list(ruleset.order), hosts=hosts)
