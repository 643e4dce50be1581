"""A launch limit only narrows a template's hosts (runner_service.launch_limits), checked against
Ansible's own inventory manager: whatever the two patterns, the hosts of the combined limit are
among those of the template's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner_service.launch_limits import PatternError, narrow, terms

INVENTORY = """
[dbs]
db1
db2
db3
[web]
web1
web2
[prod]
db1
web1
[ungrouped_too]
x
"""
HOSTS = {'db1', 'db2', 'db3', 'web1', 'web2', 'x'}


@pytest.fixture(scope='module')
def ansible_hosts(tmp_path_factory):
    """Which hosts Ansible selects with a --limit pattern (None: no limit), over a real inventory."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    path = tmp_path_factory.mktemp('inventory') / 'hosts.ini'
    path.write_text(INVENTORY)
    manager = InventoryManager(loader=DataLoader(), sources=[str(path)])

    def select(limit: str | None) -> set[str]:
        manager.subset(limit)
        try:
            return {host.name for host in manager.get_hosts('all')}
        finally:
            manager.subset(None)
            manager.clear_pattern_cache()
    return select


@pytest.mark.parametrize('scope, requested, expected', [
    (None, 'db1', {'db1'}),
    ('dbs', 'all', {'db1', 'db2', 'db3'}),
    ('dbs', '*', {'db1', 'db2', 'db3'}),
    ('dbs', '~.*', {'db1', 'db2', 'db3'}),
    ('dbs', '!db2', {'db1', 'db3'}),
    ('dbs', 'prod:&dbs', {'db1'}),
    ('dbs', 'web1,db2', {'db2'}),
    ('dbs', 'web', set()),
    ('dbs:!db3', 'all', {'db1', 'db2'}),
    ('dbs,web', 'prod', {'db1', 'web1'}),
    ('dbs,web', '*1', {'db1', 'web1'}),
    ('dbs:&prod', 'dbs,web', {'db1'}),
    ('!x', 'all', HOSTS - {'x'}),
    ('dbs[0:1]', 'all', {'db1', 'db2'}),
])
def test_a_launch_limit_narrows_the_template_limit(ansible_hosts, scope, requested, expected):
    combined = narrow(scope, requested)
    assert ansible_hosts(combined) == expected
    assert ansible_hosts(combined) <= ansible_hosts(scope)


@pytest.mark.parametrize('requested', ['@hosts.txt', ' @x', 'db1,@x', 'db1:@x', '&@x', '!@x', 'db1,\x00', ':', ',',
                                       'db1,&', '!'])
def test_files_control_characters_and_empty_terms_are_refused(requested):
    with pytest.raises(PatternError):
        narrow('dbs', requested)
    with pytest.raises(PatternError):
        narrow(None, requested)


def test_two_lists_cannot_be_intersected_and_say_so():
    with pytest.raises(PatternError, match='one host, group or pattern per launch'):
        narrow('dbs,web', 'db1,web1')


def test_without_a_launch_limit_the_template_limit_stays():
    assert narrow('dbs:!db3', None) == 'dbs:!db3'
    assert narrow(None, None) is None


def test_terms_are_ordered_as_ansible_evaluates_them():
    assert terms('!x:&y:a') == ['a', '&y', '!x']
    assert terms('!x') == ['all', '!x']


TERM = st.sampled_from(['all', '*', 'dbs', 'web', 'prod', 'db1', 'web2', 'x', 'nothing', '~db.*', '~.*', 'db*',
                        'dbs[0]', 'web[0:1]'])
PATTERN = st.lists(st.tuples(st.sampled_from(['', '', '&', '!']), TERM), min_size=1, max_size=4).map(
    lambda parts: ','.join(prefix + term for prefix, term in parts))


@settings(max_examples=300, deadline=None)
@given(scope=st.none() | PATTERN, requested=PATTERN)
def test_no_launch_limit_ever_reaches_a_host_the_template_would_not(ansible_hosts, scope, requested):
    try:
        combined = narrow(scope, requested)
    except PatternError:
        return
    assert ansible_hosts(combined) <= ansible_hosts(scope)
    assert ansible_hosts(combined) == ansible_hosts(scope) & ansible_hosts(requested)
