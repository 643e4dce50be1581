"""Tagging one host: record its facts, evaluate the tag rules or apply manual tags, persist.

The front door for everything that changes a host's tags — the fleet_tags action plugin and the
`dbfleet tags add|remove` commands call apply_tags(), so the rules are applied one way only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache

from dbfleet.durations import TimeSpecError, parse_point_in_time
from dbfleet.store import StoreError, open_store
from dbfleet.store.binlogs import archive_fact
from dbfleet.store.drills import drill_fact
from dbfleet.tags import HostContext, RulesError, is_valid_tag_name, load_rules


class InspectionError(Exception):
    """Tagging a host failed for a reason the user can fix; the message says which."""


@dataclass
class TagRequest:
    host: str
    facts: dict | None = None               # rules mode: the host's ansible_facts.mysql
    manual_tags: list[str] | None = None    # manual mode: these tags, with `state`
    state: str = 'present'
    expires: str | None = None              # manual tags: '7d', '2026-12-31', ...
    attributes: dict = field(default_factory=dict)
    address: str | None = None
    port: int | None = None
    rules_path: str | None = None
    rule_vars: dict = field(default_factory=dict)
    store_url: str | None = None
    who: str = 'dbfleet'
    check_mode: bool = False
    create_host: bool = True                # manual tags on a host the store does not know: add it


@dataclass
class TagOutcome:
    host: str
    before: list[str]
    after: list[str]
    added: list[str]
    removed: list[str]
    evidence: dict = field(default_factory=dict)
    rule_errors: dict = field(default_factory=dict)
    dimensions: dict = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)

    def as_result(self) -> dict:
        return dict(host=self.host, tags=self.after, added=self.added, removed=self.removed,
                    tags_changed=self.changed, evidence=self.evidence, rule_errors=self.rule_errors,
                    changes=self.changes())

    def changes(self) -> list[dict]:
        """One entry per added or removed tag; `priority` orders new risks first, then other additions,
        then removed risks, then other removals."""
        entries = []
        for change, tags in (('added', self.added), ('removed', self.removed)):
            for tag in tags:
                dimension = self.dimensions.get(tag)
                priority = (0 if dimension == 'risk' else 1) + (2 if change == 'removed' else 0)
                entries.append(dict(host=self.host, tag=tag, dimension=dimension, change=change, priority=priority))
        return entries


@lru_cache(maxsize=8)
def _rules(path: str | None, mtime: float | None, overrides_json: str):
    return load_rules(path, overrides=json.loads(overrides_json) or None)


def rules_for(path: str | None, overrides: dict | None):
    """The rule set, loaded once per process for the same file contents and overrides."""
    from dbfleet.settings import get_settings
    resolved = str(path or get_settings().tag_rules)
    try:
        mtime = os.stat(resolved).st_mtime
    except OSError:
        raise InspectionError('tag rules file %s does not exist' % resolved) from None
    return _rules(resolved, mtime, json.dumps(overrides or {}, sort_keys=True, default=str))


def apply_tags(request: TagRequest) -> TagOutcome:
    try:
        store = open_store(request.store_url)
        try:
            if request.manual_tags is not None:
                return _apply_manual(store, request)
            return _apply_rules(store, request)
        finally:
            store.close()
    except (StoreError, RulesError, TimeSpecError) as exc:
        raise InspectionError(str(exc)) from None


def apply_manual_tags(store, request: TagRequest) -> TagOutcome:
    """apply_tags for manual tags, on a store the caller has open (the runner service's)."""
    try:
        return _apply_manual(store, request)
    except (StoreError, TimeSpecError, OverflowError) as exc:
        raise InspectionError(str(exc)) from None


def _apply_rules(store, request: TagRequest) -> TagOutcome:
    ruleset = rules_for(request.rules_path, request.rule_vars)
    if not request.check_mode:
        store.tags.expire()
        store.tags.define(ruleset.definitions())
        store.hosts.upsert(request.host, address=request.address, port=request.port,
                           attributes=request.attributes or None)
        store.facts.record(request.host, request.facts)
    stored = store.hosts.get(request.host)
    attributes = dict(stored['attributes'] if stored else {}, **(request.attributes or {}))
    current = store.tags.of_host(request.host) if stored else {}
    manual = frozenset(name for name, tag in current.items() if tag['source'] == 'manual')
    evaluation = ruleset.evaluate(HostContext(request.host, rule_facts(store, request.host, request.facts),
                                              attributes, manual))
    if request.check_mode:
        diff = store.tags.preview_rules(request.host, evaluation.tags) if stored else dict(
            added=sorted(evaluation.tags), removed=[])
    else:
        diff = store.tags.sync_rules(request.host, evaluation.tags, who=request.who)
    dimensions = dict((tag['name'], tag['dimension']) for tag in ruleset.definitions())
    return _outcome(request.host, current, diff, evidence=evaluation.tags, rule_errors=evaluation.errors,
                    dimensions=dimensions)


def rule_facts(store, host: str, facts: dict | None) -> dict | None:
    """The facts the tag rules read of `host`: those gathered on it, plus what the store knows and the host
    itself does not - facts.binlog_archive from its binlog archive's last pass, facts.restore_drill from
    its restore drills (since when its backups went untested)."""
    extra = dict(binlog_archive=archive_fact(store.binlogs.state(host)),
                 restore_drill=drill_fact(store.drills.state(host)))
    extra = {name: value for name, value in extra.items() if value is not None}
    if not extra:
        return facts
    return dict(facts or {}, **extra)


def _apply_manual(store, request: TagRequest) -> TagOutcome:
    for tag in request.manual_tags:
        if not is_valid_tag_name(tag):
            raise InspectionError('invalid tag name %r: use letters, digits and _ - . : (and not and/or/not), '
                                  'as tag filters read them' % str(tag)[:100])
    expires_at = parse_point_in_time(request.expires) if request.expires else None
    stored = store.hosts.get(request.host)
    if stored is None and request.state == 'present' and not request.create_host:
        raise InspectionError('unknown host %r: `dbfleet hosts list` shows the hosts; add it with --create'
                              % str(request.host)[:100])
    current = store.tags.of_host(request.host) if stored else {}
    added, removed = [], []
    for tag in request.manual_tags:
        if request.state == 'present':
            if request.check_mode:
                changed = tag not in current
            else:
                changed = store.tags.add(request.host, tag, who=request.who, expires_at=expires_at)
            if changed:
                added.append(tag)
        else:
            if request.check_mode:
                changed = tag in current
            else:
                changed = stored is not None and store.tags.remove(request.host, tag, who=request.who)
            if changed:
                removed.append(tag)
    dimensions = dict((tag['name'], tag['dimension']) for tag in store.tags.list())
    return _outcome(request.host, current, dict(added=added, removed=removed), dimensions=dimensions)


def _outcome(host, current, diff, evidence=None, rule_errors=None, dimensions=None) -> TagOutcome:
    added, removed = sorted(diff['added']), sorted(diff['removed'])
    after = sorted((set(current) - set(removed)) | set(added))
    return TagOutcome(host=host, before=sorted(current), after=after, added=added, removed=removed,
                      evidence=evidence or {}, rule_errors=rule_errors or {}, dimensions=dimensions or {})


def explain(host: str, tag: str | None = None, store_url: str | None = None, rules_path: str | None = None,
            rule_vars: dict | None = None) -> list[dict]:
    """Why each rule is true or false for `host`, from its latest stored facts (nothing is written)."""
    try:
        ruleset = rules_for(rules_path, rule_vars)
        store = open_store(store_url)
        try:
            stored = store.hosts.get(host)
            if stored is None:
                raise InspectionError('no host named %s in the store' % host)
            latest = store.facts.latest(host)
            facts = rule_facts(store, host, latest['facts'] if latest else {})
            current = store.tags.of_host(host)
        finally:
            store.close()
    except (StoreError, RulesError) as exc:
        raise InspectionError(str(exc)) from None
    if tag is not None and tag not in ruleset.order:
        raise InspectionError('no rule for tag %s (rules: %s)' % (tag, ', '.join(ruleset.order)))
    manual = frozenset(name for name, value in current.items() if value['source'] == 'manual')
    evaluation = ruleset.evaluate(HostContext(host, facts, stored['attributes'], manual))
    rows = []
    for name in ruleset.order:
        if tag is not None and name != tag:
            continue
        explanation = evaluation.explanations[name]
        rows.append(dict(tag=name, result=explanation.result, reason=explanation.reason,
                         evidence=explanation.evidence, error=explanation.error,
                         stored=name in current, facts_collected_at=latest['collected_at'] if latest else None))
    return rows
