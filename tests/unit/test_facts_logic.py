"""Pure logic of the fact collectors (module_utils/facts.py): subsets, conversions, roles."""

import pytest
from ansible_collections.dbfleet.mysql.plugins.module_utils.facts import (
    SUBSETS,
    SubsetError,
    _channel_facts,
    decode_tablespace_name,
    on_off,
    replication_role,
    resolve_subsets,
    to_number,
)


@pytest.mark.parametrize('requested,expected', [
    (None, set(SUBSETS)),
    (['all'], set(SUBSETS)),
    (['!all'], {'server'}),
    (['min'], {'server'}),
    (['schemas'], {'server', 'schemas'}),
    (['replication', 'schemas'], {'server', 'replication', 'schemas'}),
    # As with setup, an exclusion alone leaves only min: write ['all', '!users'] to drop one subset.
    (['!users'], {'server'}),
    (['all', '!users', '!host'], set(SUBSETS) - {'users', 'host'}),
    (['!all', '!min', 'schemas'], {'schemas'}),
    (['!all', 'users'], {'server', 'users'}),
])
def test_gather_subset_semantics_follow_setup(requested, expected):
    assert resolve_subsets(requested) == expected


def test_unknown_subset_names_the_valid_ones():
    with pytest.raises(SubsetError) as error:
        resolve_subsets(['schemas', 'bogus'])
    message = str(error.value)
    assert 'bogus' in message and 'replication' in message and 'schemas,' not in message.split(';', maxsplit=1)[0]


@pytest.mark.parametrize('raw,expected', [
    ('123', 123), ('-5', -5), ('1.50', 1.5), ('ON', 'ON'), ('', ''), (None, None), (b'42', 42),
    ('10.11.6-MariaDB', '10.11.6-MariaDB'),
])
def test_to_number(raw, expected):
    assert to_number(raw) == expected


@pytest.mark.parametrize('raw,expected', [
    ('ON', True), ('on', True), ('1', True), (1, True), ('Yes', True), ('OFF', False), ('0', False),
    ('No', False), ('Connecting', False), (None, None),
])
def test_on_off(raw, expected):
    assert on_off(raw) is expected


@pytest.mark.parametrize('name,expected', [
    ('shop/orders', ('shop', 'orders')),
    ('my@002dshop/t@0020x', ('my-shop', 't x')),
    ('shop/events#P#p2024', ('shop', 'events')),
    ('innodb_system', (None, None)),
])
def test_tablespace_names(name, expected):
    assert decode_tablespace_name(name) == expected


@pytest.mark.parametrize('channels,replicas,role', [
    (False, False, 'standalone'), (False, True, 'primary'), (True, False, 'replica'), (True, True, 'relay'),
])
def test_replication_role(channels, replicas, role):
    assert replication_role(channels, replicas) == role


def test_channel_health_and_numbers():
    healthy = _channel_facts({'Connection_name': '', 'Slave_IO_Running': 'Yes', 'Slave_SQL_Running': 'Yes',
                              'Seconds_Behind_Master': '3', 'Last_IO_Errno': 0, 'Last_SQL_Errno': 0,
                              'Master_Port': '3306'})
    assert healthy['healthy'] is True and healthy['seconds_behind'] == 3 and healthy['source_port'] == 3306
    broken = _channel_facts({'Connection_name': 'b', 'Slave_IO_Running': 'Connecting', 'Slave_SQL_Running': 'Yes',
                             'Seconds_Behind_Master': None, 'Last_IO_Errno': 2003, 'Last_SQL_Errno': 0})
    assert broken['healthy'] is False and broken['io_running'] is False and broken['channel'] == 'b'


@pytest.mark.parametrize('pattern,like', [
    ('shop', 'shop'), ('tenant_*', 'tenant\\_%'), ('db?', 'db_'), ('100%', '100\\%'), ('a[bc]', None),
])
def test_schema_patterns_become_like(pattern, like):
    from ansible_collections.dbfleet.mysql.plugins.module_utils.facts import _like
    assert _like(pattern) == like


def test_schema_condition_prunes_only_when_every_pattern_translates():
    from ansible_collections.dbfleet.mysql.plugins.module_utils.facts import _schema_condition
    where, args = _schema_condition('TABLE_SCHEMA', ['shop', 'tenant_*'])
    assert where.endswith('AND (TABLE_SCHEMA LIKE %s OR TABLE_SCHEMA LIKE %s)')
    assert args[-2:] == ['shop', 'tenant\\_%'] and 'mysql' in args
    where, args = _schema_condition('TABLE_SCHEMA', ['shop', 'a[bc]'])
    assert 'LIKE' not in where and len(args) == 4
