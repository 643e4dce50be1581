"""The Store's behaviour on SQLite and MariaDB: hosts, facts, tags, expiry, audit, inventory, concurrency."""

from __future__ import annotations

import datetime as dt
import decimal
import multiprocessing
import traceback

import pytest

from dbfleet.store import SUMMARY_FACT_PATHS, UnknownHost, open_store

UTC = dt.timezone.utc


def now_utc():
    return dt.datetime.now(UTC)


def facts_for(version='10.11.19', role='primary', total_bytes=1000, **extra):
    return dict(server=dict(flavour='mariadb', version=dict(full=version, major=10), uptime_seconds=50,
                            read_only=False),
                replication=dict(role=role, lag_seconds=None),
                schemas=dict(totals=dict(total_bytes=total_bytes), largest='app'),
                **extra)


def actions(events):
    return [(event['tag'], event['action']) for event in events]


# -- hosts ---------------------------------------------------------------------------------

def test_upsert_host_creates_then_merges_attributes(store):
    created = store.hosts.upsert('db1', address='10.0.0.1', port=3306,
                                 attributes={'owner': 'alice', 'rack': 'r1', 'purchase_date': dt.date(2021, 3, 4)})
    assert created['name'] == 'db1'
    assert (created['address'], created['port']) == ('10.0.0.1', 3306)
    assert created['attributes'] == {'owner': 'alice', 'rack': 'r1', 'purchase_date': '2021-03-04'}
    assert created['created_at'] == created['updated_at']
    assert created['created_at'].tzinfo is not None

    updated = store.hosts.upsert('db1', attributes={'owner': 'bob', 'rack': None, 'business': 'payments'})
    assert updated['attributes'] == {'owner': 'bob', 'purchase_date': '2021-03-04', 'business': 'payments'}
    assert (updated['address'], updated['port']) == ('10.0.0.1', 3306), 'None leaves address and port alone'
    assert updated['created_at'] == created['created_at']
    assert updated['updated_at'] > created['updated_at']

    unchanged = store.hosts.upsert('db1', address='10.0.0.1')
    assert unchanged['updated_at'] == updated['updated_at'], 'nothing changed, nothing touched'
    assert store.hosts.get('db1') == unchanged


def test_list_and_delete_hosts(store):
    for name in ('db2', 'db1', 'db3'):
        store.hosts.upsert(name)
    store.facts.record('db2', facts_for())
    store.tags.sync_rules('db2', {'role:primary': None}, who='test')

    assert [host['name'] for host in store.hosts.list()] == ['db1', 'db2', 'db3']
    assert store.hosts.delete('db2', who='alice') is True
    assert store.hosts.delete('db2') is False
    assert store.hosts.get('db2') is None
    assert [host['name'] for host in store.hosts.list()] == ['db1', 'db3']
    assert store.tags.list()[0]['hosts'] == 0
    [event] = store.tags.events(host='db2', limit=1)
    assert (event['action'], event['tag'], event['who']) == ('removed', 'role:primary', 'alice')

    store.facts.record('db2', facts_for())  # a host of the same name starts with an empty history
    assert len(store.facts.history('db2')) == 1


def test_host_specific_calls_on_unknown_host_raise(store):
    assert store.hosts.get('nope') is None
    for call in (lambda: store.facts.latest('nope'), lambda: store.facts.history('nope'),
                 lambda: store.tags.of_host('nope'), lambda: store.tags.sync_rules('nope', {}, who='t'),
                 lambda: store.tags.remove('nope', 'x', who='t')):
        with pytest.raises(UnknownHost, match='no host named nope in the store'):
            call()


def test_bad_input_is_refused_with_a_message(store):
    with pytest.raises(ValueError, match='host name must be a non-empty string'):
        store.hosts.upsert('')
    with pytest.raises(ValueError, match='port of host db1 must be an integer'):
        store.hosts.upsert('db1', port='3306')
    with pytest.raises(ValueError, match="kind must be one of manual, rule, derived, got 'auto'"):
        store.tags.define([{'name': 'x', 'kind': 'auto'}])
    with pytest.raises(ValueError, match='already past'):
        store.tags.add('db1', 'maint', who='t', expires_at=now_utc() - dt.timedelta(seconds=1))


# -- facts ---------------------------------------------------------------------------------

def test_latest_facts_history_and_pruning(store_url):
    store = open_store(store_url, keep_snapshots=3)
    try:
        start = dt.datetime(2025, 1, 1, tzinfo=UTC)
        ids = [store.facts.record('db1', facts_for(version='10.11.%d' % i), collected_at=start + dt.timedelta(hours=i))
               for i in range(5)]
        assert len(set(ids)) == 5
        assert store.hosts.get('db1') is not None, 'record_facts creates the host'

        latest = store.facts.latest('db1')
        assert latest['collected_at'] == start + dt.timedelta(hours=4)
        assert latest['facts']['server']['version']['full'] == '10.11.4'

        history = store.facts.history('db1')
        assert [item['facts']['server']['version']['full'] for item in history] == ['10.11.4', '10.11.3', '10.11.2']
        assert len(store.facts.history('db1', limit=1)) == 1

        # A late snapshot older than the latest joins the history but does not become the latest.
        store.facts.record('db1', facts_for(version='late'), collected_at=start + dt.timedelta(hours=3, minutes=30))
        assert store.facts.latest('db1')['facts']['server']['version']['full'] == '10.11.4'
        assert [item['facts']['server']['version']['full'] for item in store.facts.history('db1')] == \
            ['10.11.4', 'late', '10.11.3']
        [host] = store.hosts.inventory(fact_paths=['server.version.full'])
        assert host['facts'] == {'server.version.full': '10.11.4'}

        store.hosts.upsert('db2')
        assert store.facts.latest('db2') is None
        assert store.facts.history('db2') == []
    finally:
        store.close()


def test_facts_keep_non_json_values_readable(store):
    store.facts.record('db1', {'checked': dt.datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC), 'ratio': decimal.Decimal('0.5'),
                               'count': decimal.Decimal('3'), 'names': ('a', 'b')})
    assert store.facts.latest('db1')['facts'] == {'checked': '2025-05-06T07:08:09+00:00', 'ratio': 0.5, 'count': 3,
                                                 'names': ['a', 'b']}


# -- rule tags -----------------------------------------------------------------------------

def test_sync_rule_tags_adds_removes_keeps_and_leaves_manual_tags(store):
    store.tags.define([{'name': 'size:large', 'dimension': 'size', 'description': 'over 1 TB', 'kind': 'rule'},
                       {'name': 'risk:high', 'dimension': 'risk', 'kind': 'derived'}])
    store.hosts.upsert('db1')
    store.tags.add('db1', 'owner:payments', who='alice', dimension='business')

    first = store.tags.sync_rules('db1', {'size:large': {'total_bytes': 2e12}, 'role:primary': {'role': 'primary'},
                                         'risk:high': ['size:large']}, who='fleet_tags')
    assert first == {'added': ['risk:high', 'role:primary', 'size:large'], 'removed': [], 'kept': [], 'updated': []}
    tags = store.tags.of_host('db1')
    assert sorted(tags) == ['owner:payments', 'risk:high', 'role:primary', 'size:large']
    assert tags['size:large'] | {'since': None} == dict(dimension='size', kind='rule', source='rule', since=None,
                                                         expires_at=None, evidence={'total_bytes': 2e12},
                                                         set_by='fleet_tags')
    assert (tags['risk:high']['source'], tags['risk:high']['dimension']) == ('derived', 'risk')
    assert (tags['role:primary']['kind'], tags['role:primary']['dimension']) == ('rule', None), \
        'an unknown tag is created as a rule tag without dimension'

    # Evidence changes alone: logged as 'updated', not a change.
    events_before = len(store.tags.events(limit=1000))
    second = store.tags.sync_rules('db1', {'size:large': {'total_bytes': 3e12}, 'role:primary': {'role': 'primary'},
                                          'risk:high': ['size:large']}, who='fleet_tags')
    assert second == {'added': [], 'removed': [], 'kept': ['risk:high', 'role:primary', 'size:large'],
                      'updated': ['size:large']}
    assert len(store.tags.events(limit=1000)) == events_before + 1
    [event] = store.tags.events(limit=1)
    assert (event['tag'], event['action']) == ('size:large', 'updated')
    assert event['old']['evidence'] == {'total_bytes': 2e12} and event['new']['evidence'] == {'total_bytes': 3e12}

    # The same set again: nothing at all happens.
    events_before = len(store.tags.events(limit=1000))
    assert store.tags.sync_rules('db1', {'size:large': {'total_bytes': 3e12}, 'role:primary': {'role': 'primary'},
                                        'risk:high': ['size:large']}, who='fleet_tags')['updated'] == []
    assert len(store.tags.events(limit=1000)) == events_before

    # Rules no longer true are removed; the manual tag stays; a rule true for a manual tag keeps it manual.
    third = store.tags.sync_rules('db1', {'role:replica': {'role': 'replica'}, 'owner:payments': {}}, who='fleet_tags')
    assert third == {'added': ['role:replica'], 'removed': ['risk:high', 'role:primary', 'size:large'],
                     'kept': ['owner:payments'], 'updated': []}
    tags = store.tags.of_host('db1')
    assert sorted(tags) == ['owner:payments', 'role:replica']
    assert (tags['owner:payments']['source'], tags['owner:payments']['set_by']) == ('manual', 'alice')
    assert sorted(actions(store.tags.events(host='db1', limit=4))) == [
        ('risk:high', 'removed'), ('role:primary', 'removed'), ('role:replica', 'added'), ('size:large', 'removed')]


def test_preview_rule_tags_writes_nothing(store):
    store.facts.record('db1', facts_for())
    store.tags.sync_rules('db1', {'a': 1, 'b': 2}, who='t')
    events = store.tags.events()
    tags = store.tags.of_host('db1')

    preview = store.tags.preview_rules('db1', {'b': 3, 'c': 4})
    assert preview == {'added': ['c'], 'removed': ['a'], 'kept': ['b'], 'updated': ['b']}
    assert store.tags.events() == events
    assert store.tags.of_host('db1') == tags
    assert [tag['name'] for tag in store.tags.list()] == ['a', 'b'], 'not even the new tag definition'

    assert store.tags.preview_rules('new-host', {'c': None}) == {'added': ['c'], 'removed': [], 'kept': [],
                                                                 'updated': []}
    assert store.hosts.get('new-host') is None


def test_equivalent_evidence_is_not_an_update(store):
    store.hosts.upsert('db1')
    store.tags.sync_rules('db1', {'a': {'values': (1, 2), 'at': dt.date(2025, 1, 2)}}, who='t')
    assert store.tags.sync_rules('db1', {'a': {'values': [1, 2], 'at': '2025-01-02'}}, who='t')['updated'] == []


# -- manual tags, audit ----------------------------------------------------------------------

def test_manual_tags_add_update_remove_with_audit(store):
    expires = now_utc() + dt.timedelta(days=1)
    assert store.tags.add('db1', 'maintenance', who='alice', expires_at=expires, evidence={'ticket': 'OPS-1'},
                          dimension='lifecycle', description='in a maintenance window') is True
    assert store.hosts.get('db1') is not None, 'add_tag creates the host'
    assert store.tags.add('db1', 'maintenance', who='bob', expires_at=expires, evidence={'ticket': 'OPS-1'}) is False

    later = expires + dt.timedelta(days=1)
    assert store.tags.add('db1', 'maintenance', who='bob', expires_at=later, evidence={'ticket': 'OPS-1'}) is True
    tag = store.tags.of_host('db1')['maintenance']
    assert (tag['source'], tag['set_by'], tag['expires_at'], tag['dimension']) == ('manual', 'bob', later, 'lifecycle')

    assert store.tags.remove('db1', 'maintenance', who='carol') is True
    assert store.tags.remove('db1', 'maintenance', who='carol') is False
    assert store.tags.of_host('db1') == {}
    assert store.tags.remove('db1', 'never-defined', who='carol') is False

    removed, updated, added = store.tags.events(host='db1')
    assert (added['action'], added['who'], added['old']) == ('added', 'alice', None)
    assert added['new'] == {'source': 'manual', 'expires_at': expires.isoformat(), 'evidence': {'ticket': 'OPS-1'},
                            'set_by': 'alice'}
    assert (updated['action'], updated['who']) == ('updated', 'bob')
    assert (updated['old']['expires_at'], updated['new']['expires_at']) == (expires.isoformat(), later.isoformat())
    assert (removed['action'], removed['who'], removed['new']) == ('removed', 'carol', None)
    assert removed['old']['set_by'] == 'bob'
    assert [tag['dimension'] for tag in store.tags.list()] == ['lifecycle']


def test_adding_a_rule_tag_by_hand_pins_it(store):
    store.hosts.upsert('db1')
    store.tags.sync_rules('db1', {'role:primary': {'role': 'primary'}}, who='rules')
    assert store.tags.add('db1', 'role:primary', who='alice') is True
    assert store.tags.events(limit=1)[0]['action'] == 'updated'
    assert store.tags.sync_rules('db1', {}, who='rules')['removed'] == []
    assert store.tags.of_host('db1')['role:primary']['source'] == 'manual'


def test_tag_events_filters(store):
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    store.hosts.upsert('db1')
    store.hosts.upsert('db2')
    store.tags.sync_rules('db1', {'a': None}, who='t', now=start)
    store.tags.sync_rules('db2', {'a': None, 'b': None}, who='t', now=start + dt.timedelta(hours=1))
    store.tags.sync_rules('db1', {}, who='t', now=start + dt.timedelta(hours=2))

    assert actions(store.tags.events()) == [('a', 'removed'), ('b', 'added'), ('a', 'added'), ('a', 'added')]
    assert actions(store.tags.events(host='db1')) == [('a', 'removed'), ('a', 'added')]
    assert actions(store.tags.events(tag='b')) == [('b', 'added')]
    assert len(store.tags.events(since=start + dt.timedelta(hours=1))) == 3
    assert len(store.tags.events(limit=2)) == 2
    assert store.tags.events()[0]['at'] == start + dt.timedelta(hours=2)


# -- expiry --------------------------------------------------------------------------------

def test_expired_tags_disappear_everywhere_and_expire_tags_logs_them(store):
    now = now_utc()
    store.facts.record('db1', facts_for())
    store.tags.add('db1', 'maintenance', who='alice', expires_at=now + dt.timedelta(hours=1))
    store.tags.add('db1', 'pinned', who='alice')
    after = now + dt.timedelta(hours=2)

    assert set(store.tags.of_host('db1', now=now)) == {'maintenance', 'pinned'}
    assert set(store.tags.of_host('db1', now=after)) == {'pinned'}
    assert store.hosts.inventory(now=after)[0]['tags'] == ['pinned']
    assert {tag['name']: tag['hosts'] for tag in store.tags.list(now=after)} == {'maintenance': 0, 'pinned': 1}
    assert {tag['name']: tag['hosts'] for tag in store.tags.list(now=now)} == {'maintenance': 1, 'pinned': 1}

    assert store.tags.expire(now=now) == []
    [event] = store.tags.expire(now=after)
    assert (event['host'], event['tag'], event['action'], event['at'], event['new']) == \
        ('db1', 'maintenance', 'expired', after, None)
    assert event['old']['set_by'] == 'alice'
    assert store.tags.events(limit=1) == [event]
    assert store.tags.expire(now=after) == []
    assert set(store.tags.of_host('db1', now=now)) == {'pinned'}, 'deleted, not just hidden'


def test_a_lapsed_tag_is_logged_as_expired_before_it_is_replaced(store):
    store.hosts.upsert('db1')
    store.tags.add('db1', 'maintenance', who='alice', expires_at=now_utc() + dt.timedelta(milliseconds=50))
    result = store.tags.sync_rules('db1', {'maintenance': None}, who='rules', now=now_utc() + dt.timedelta(minutes=1))
    assert result['added'] == ['maintenance']
    assert actions(store.tags.events(host='db1')) == [('maintenance', 'added'), ('maintenance', 'expired'),
                                                     ('maintenance', 'added')]


# -- inventory -----------------------------------------------------------------------------

def test_inventory_shape_and_fact_paths(store):
    store.hosts.upsert('db2', address='10.0.0.2', port=3307, attributes={'owner': 'bob'})
    store.facts.record('db2', facts_for(version='8.0.36', total_bytes=5))
    store.tags.sync_rules('db2', {'size:small': None, 'role:primary': None}, who='t')
    store.tags.add('db2', 'pinned', who='alice')
    store.hosts.upsert('db1')

    db1, db2 = store.hosts.inventory()
    assert db1 == dict(name='db1', address=None, port=None, attributes={}, tags=[], facts={})
    assert db2['tags'] == ['pinned', 'role:primary', 'size:small']
    assert (db2['address'], db2['port'], db2['attributes']) == ('10.0.0.2', 3307, {'owner': 'bob'})
    assert set(db2['facts']) == set(SUMMARY_FACT_PATHS) - {'host.uptime_seconds'}, 'missing paths are left out'
    assert db2['facts']['replication.lag_seconds'] is None, 'a null fact is a fact'

    [_, db2] = store.hosts.inventory(fact_paths=['server.version.full', 'schemas.largest', 'server.version',
                                           'no.such.path', 'server.version.full.deeper'])
    assert db2['facts'] == {'server.version.full': '8.0.36', 'schemas.largest': 'app',
                            'server.version': {'full': '8.0.36', 'major': 10}}
    assert store.hosts.inventory(fact_paths=[])[1]['facts'] == {}


# -- datetimes -----------------------------------------------------------------------------

def test_datetimes_round_trip_as_utc(store):
    india = dt.timezone(dt.timedelta(hours=5, minutes=30))
    collected = dt.datetime(2025, 6, 30, 23, 59, 58, 123456, tzinfo=india)
    store.facts.record('db1', {'x': 1}, collected_at=collected)
    back = store.facts.latest('db1')['collected_at']
    assert back == collected
    assert back.tzinfo == UTC and back.microsecond == 123456
    assert back.hour == 18

    naive = dt.datetime(2025, 7, 1, 12, 0, 0, 654321)
    store.facts.record('db1', {'x': 2}, collected_at=naive)
    assert store.facts.latest('db1')['collected_at'] == naive.replace(tzinfo=UTC), 'naive means UTC'

    expires = (now_utc() + dt.timedelta(days=3)).astimezone(india)
    store.tags.add('db1', 'maintenance', who='t', expires_at=expires)
    tag = store.tags.of_host('db1')['maintenance']
    assert tag['expires_at'] == expires and tag['expires_at'].tzinfo == UTC
    assert tag['since'].tzinfo == UTC


# -- processes -----------------------------------------------------------------------------

WORKERS, HOSTS_PER_WORKER = 8, 50


def _sync_worker(url, worker, barrier, failures):
    """One Ansible-worker-like process: facts, rule tags, manual tags, rule tags again, per host."""
    try:
        store = open_store(url)
        barrier.wait(timeout=120)
        who = 'worker%d' % worker
        for index in range(HOSTS_PER_WORKER):
            host = 'w%d-db%02d' % (worker, index)
            store.facts.record(host, facts_for(total_bytes=index))
            store.tags.sync_rules(host, {'size:small': {'bytes': index}, 'role:primary': {'seen': 1},
                                        'risk:high': None}, who=who)
            store.tags.add(host, 'team:dba', who=who)
            store.tags.add(host, 'pin:%s' % host, who=who)
            store.tags.sync_rules(host, {'size:small': {'bytes': index}, 'role:primary': {'seen': 2},
                                        'risk:low': None}, who=who)
        store.close()
    except BaseException:
        failures.put('worker %d:\n%s' % (worker, traceback.format_exc()))
        raise


def test_concurrent_processes_lose_nothing(store, store_url):
    context = multiprocessing.get_context('fork')
    barrier, failures = context.Barrier(WORKERS), context.Queue()
    processes = [context.Process(target=_sync_worker, args=(store_url, worker, barrier, failures))
                 for worker in range(WORKERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=600)
    errors = [failures.get() for _ in range(failures.qsize())]
    assert not errors, '\n'.join(errors)
    assert [process.exitcode for process in processes] == [0] * WORKERS

    hosts = store.hosts.inventory()
    assert len(hosts) == WORKERS * HOSTS_PER_WORKER
    for host in hosts:
        assert host['tags'] == sorted(['pin:%s' % host['name'], 'risk:low', 'role:primary', 'size:small',
                                       'team:dba']), host['name']
        assert host['facts']['server.version.full'] == '10.11.19'
    events = store.tags.events(limit=100_000)
    count = WORKERS * HOSTS_PER_WORKER
    assert len(events) == 8 * count
    by_action = {action: sum(1 for event in events if event['action'] == action)
                 for action in ('added', 'removed', 'updated', 'expired')}
    assert by_action == {'added': 6 * count, 'removed': count, 'updated': count, 'expired': 0}
    counts = {tag['name']: tag['hosts'] for tag in store.tags.list() if not tag['name'].startswith('pin:')}
    assert counts == {'risk:high': 0, 'risk:low': count, 'role:primary': count, 'size:small': count,
                      'team:dba': count}


def _write_from_child(store):
    store.hosts.upsert('child', attributes={'pid': 'child'})
    store.tags.sync_rules('child', {'forked': None}, who='child')
    store.close()


def test_a_store_inherited_across_fork_keeps_working(store):
    store.hosts.upsert('parent')  # leaves a pooled connection that the child inherits
    context = multiprocessing.get_context('fork')
    child = context.Process(target=_write_from_child, args=(store,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    assert set(store.tags.of_host('child')) == {'forked'}
    store.hosts.upsert('parent', attributes={'after': 'fork'})
    assert store.hosts.get('parent')['attributes'] == {'after': 'fork'}
