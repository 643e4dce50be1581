"""`dbfleet tags add|remove` and `dbfleet hosts delete`: manual tags only on hosts the store knows
(unless --create), tag names the filter language can read, and a delete that keeps the trail."""

from __future__ import annotations

import json

import pytest

from dbfleet.store import open_store
from dbfleet.tags import parse_tag_expression
from tests.helpers import ok, refused


def test_tags_add_on_an_unknown_host_is_an_error_unless_create(store_url):
    line = refused(store_url, 'tags', 'add', 'db-typo', 'maintenance')
    assert "unknown host 'db-typo'" in line and '--create' in line
    assert json.loads(ok(store_url, 'hosts', 'list', '--json').stdout) == []
    assert ok(store_url, 'tags', 'add', 'db1', 'maintenance', '--create').stdout.strip() == 'db1: added maintenance'
    assert ok(store_url, 'tags', 'add', 'db1', 'payments').stdout.strip() == 'db1: added payments'
    [host] = json.loads(ok(store_url, 'hosts', 'list', '--json').stdout)
    assert host['name'] == 'db1' and sorted(host['tags']) == ['maintenance', 'payments']


@pytest.mark.parametrize('name', ['and', 'NOT', 'a b', 'x(y)', 'café', 'tag!', '$(reboot)'])
def test_tag_names_are_what_a_tag_filter_can_name(store_url, name):
    ok(store_url, 'hosts', 'set', 'db1', 'owner=dba')
    line = refused(store_url, 'tags', 'add', 'db1', 'good', name)
    assert 'invalid tag name' in line and 'letters, digits' in line
    assert json.loads(ok(store_url, 'hosts', 'list', '--json').stdout)[0]['tags'] == []


@pytest.mark.parametrize('name', ['env:prod', 'mysql-8.0', 'rack_12'])
def test_every_accepted_tag_name_can_be_filtered_on(store_url, name):
    ok(store_url, 'tags', 'add', 'db1', name, '--create')
    listed = json.loads(ok(store_url, 'hosts', 'list', '--tags', name, '--json').stdout)
    assert [host['name'] for host in listed] == ['db1']
    assert parse_tag_expression(name).names == {name}


def test_hosts_delete_removes_the_host_and_its_tags_and_keeps_the_trail(store_url):
    ok(store_url, 'tags', 'add', 'db1', 'maintenance', 'payments', '--create')
    ok(store_url, 'tags', 'add', 'db2', 'payments', '--create')
    assert ok(store_url, 'hosts', 'delete', 'db1').stdout.strip() == 'db1: deleted (tags: maintenance, payments)'
    assert [host['name'] for host in json.loads(ok(store_url, 'hosts', 'list', '--json').stdout)] == ['db2']
    assert "unknown host 'db1'" in refused(store_url, 'hosts', 'delete', 'db1')
    assert "unknown host 'db1'" in refused(store_url, 'tags', 'add', 'db1', 'maintenance')
    store = open_store(store_url)
    try:
        [entry] = store.audit.list(action='host.delete')
        assert entry['target'] == 'db1' and entry['actor'].startswith('cli:')
        assert entry['detail'] == {'tags': ['maintenance', 'payments']}
        removed = [(event['tag'], event['action']) for event in store.tags.events(host='db1')]
    finally:
        store.close()
    assert ('maintenance', 'removed') in removed and ('payments', 'removed') in removed
