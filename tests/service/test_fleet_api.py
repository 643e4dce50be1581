"""The fleet over the real API process: /api/v1/hosts (listing, profile, edits), /api/v1/tags
(definitions, manual tags with expiry), /api/v1/rules (loaded, check of a text) and
/api/v1/backups (the catalog), for each role, and the refusals of hostile input."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from dbfleet.store import open_store
from runner_service.fleet.schemas import MAX_RULES_TEXT
from tests.service.fleet_helpers import HOSTS, T0, seed_fleet
from devtools.service_harness import Service

pytestmark = pytest.mark.service

CRONTAB = '# the DBA team\n15 3 * * * /usr/local/bin/backup.sh --all\n'
# Every endpoint here with a body that would pass its checks: (method, path, body).
ENDPOINTS = [
    ('GET', '/api/v1/hosts', None),
    ('GET', '/api/v1/hosts/db-a', None),
    ('GET', '/api/v1/hosts/db-a/profile', None),
    ('PUT', '/api/v1/hosts/db-z', {'attributes': {'owner': 'x'}}),
    ('DELETE', '/api/v1/hosts/db-z', None),
    ('GET', '/api/v1/tags', None),
    ('POST', '/api/v1/tags/add', {'host': 'db-a', 'tags': ['probe']}),
    ('POST', '/api/v1/tags/remove', {'host': 'db-a', 'tags': ['probe']}),
    ('GET', '/api/v1/rules', None),
    ('POST', '/api/v1/rules/check', {'text': 'rules: []'}),
    ('GET', '/api/v1/backups', None),
]
NEEDS = {'PUT /api/v1/hosts/db-z': 'admin', 'DELETE /api/v1/hosts/db-z': 'admin', 'POST /api/v1/rules/check': 'admin',
         'POST /api/v1/tags/add': 'operator', 'POST /api/v1/tags/remove': 'operator'}
RANK = {'viewer': 0, 'operator': 1, 'admin': 2}


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    """The API without workers (nothing here runs a play), over a store holding a small fleet."""
    service = Service(tmp_path_factory.mktemp('fleet'), workers=0).start()
    service.seeded = seed_fleet(service.store_url)
    with service.client('admin') as admin:
        made = admin.post('/api/v1/tokens', json={'name': 'agent-db-a', 'role': 'agent', 'host': 'db-a'})
        assert made.status_code == 201, made.text
        service.tokens['agent'] = made.json()['token']
        imported = admin.post('/api/v1/cron/import', json={
            'host': 'db-a', 'file': {'kind': 'user', 'name': 'root', 'system': False}, 'text': CRONTAB})
        assert imported.status_code == 201, imported.text
    yield service
    service.stop()


def call(service, role, method, path, **kwargs):
    with service.client(role) as client:
        return client.request(method, path, **kwargs)


def ok(service, role, method, path, **kwargs):
    answer = call(service, role, method, path, **kwargs)
    assert answer.status_code == 200, answer.text
    return answer.json()


def refused(service, role, method, path, status, *words, **kwargs) -> str:
    answer = call(service, role, method, path, **kwargs)
    assert answer.status_code == status, answer.text
    detail = answer.json()['detail']
    for word in words:
        assert word in detail, detail
    return detail


def new_host(service, **attributes) -> str:
    name = 'db-%s' % uuid.uuid4().hex[:8]
    ok(service, 'admin', 'PUT', '/api/v1/hosts/' + name, json={'attributes': attributes})
    return name


# -- roles ------------------------------------------------------------------------------------

@pytest.mark.parametrize('role', ['viewer', 'operator', 'admin'])
def test_each_role_reads_and_only_the_right_ones_write(service, role):
    for method, path, body in ENDPOINTS:
        needed = NEEDS.get('%s %s' % (method, path), 'viewer')
        answer = call(service, role, method, path, json=body)
        if RANK[role] >= RANK[needed]:
            assert answer.status_code == 200, (method, path, answer.text)
        else:
            assert answer.status_code == 403, (method, path, answer.text)
            assert 'needs %s' % needed in answer.json()['detail']


def test_agent_tokens_and_strangers_are_refused_everywhere(service):
    for method, path, body in ENDPOINTS:
        agent = call(service, 'agent', method, path, json=body)
        assert agent.status_code == 403 and 'agent token' in agent.json()['detail'], (method, path, agent.text)
        stranger = call(service, None, method, path, json=body)
        assert stranger.status_code == 401, (method, path, stranger.text)
        with service.client(None) as client:
            forged = client.request(method, path, json=body, headers={'Authorization': 'Bearer dbf_forged'})
        assert forged.status_code == 401, (method, path, forged.text)


# -- hosts ------------------------------------------------------------------------------------

def test_hosts_listing_by_tag_expression_and_text(service):
    def names(**params):
        return [host['name'] for host in ok(service, 'viewer', 'GET', '/api/v1/hosts', params=params)['hosts']
                if host['name'] in HOSTS]

    assert names() == ['db-a', 'db-b', 'db-c']
    assert names(tags='large and not replica') == ['db-a']
    assert names(tags='(primary or standalone) and not small') == ['db-a']
    assert names(q='PAYMENTS') == ['db-a', 'db-b']        # an attribute value, any case
    assert names(q='10.0.9.') == ['db-c']                 # the address
    assert names(q='business=rep') == ['db-c']            # an attribute as key=value
    assert names(q='db-b', tags='large') == ['db-b']
    [db_a] = [host for host in ok(service, 'viewer', 'GET', '/api/v1/hosts')['hosts'] if host['name'] == 'db-a']
    assert db_a['address'] == '10.0.0.1' and db_a['port'] == 3306 and db_a['tags'] == ['large', 'primary']
    assert db_a['facts'] == {'server.version.full': '10.11.6-MariaDB', 'replication.role': 'primary',
                             'schemas.totals.total_bytes': 80 * 1024 ** 3}


def test_hosts_pages_by_name_without_repeats_or_gaps(service):
    seen, cursor = [], None
    while True:
        page = ok(service, 'viewer', 'GET', '/api/v1/hosts', params={'limit': 2, **({'cursor': cursor} if cursor else {})})
        assert len(page['hosts']) <= 2
        seen += [host['name'] for host in page['hosts']]
        cursor = page['next_cursor']
        if cursor is None:
            break
    everything = [host['name'] for host in ok(service, 'viewer', 'GET', '/api/v1/hosts',
                                              params={'limit': 1000})['hosts']]
    assert seen == everything == sorted(set(everything))


@pytest.mark.parametrize('expression, words', [
    ('large and', ['bad tag expression', 'end of expression']),
    ('large or or small', ['bad tag expression', "'or'"]),
    ('(' * 60 + 'large' + ')' * 60, ['bad tag expression', 'nest']),
    ('large; rm -rf /', ['bad tag expression']),
])
def test_a_bad_tag_expression_is_a_400_naming_the_problem(service, expression, words):
    refused(service, 'viewer', 'GET', '/api/v1/hosts', 400, *words, params={'tags': expression})


@pytest.mark.parametrize('params', [{'limit': 0}, {'limit': 1001}, {'limit': 'many'}, {'q': 'x' * 256},
                                    {'tags': 'a' * 5000}, {'cursor': 'c' * 256}, {'q': ''}])
def test_listing_parameters_out_of_bounds_are_422(service, params):
    refused(service, 'viewer', 'GET', '/api/v1/hosts', 422, params=params)


def test_one_host_and_unknown_or_traversing_names(service):
    host = ok(service, 'viewer', 'GET', '/api/v1/hosts/db-a')
    assert host['name'] == 'db-a' and host['attributes'] == HOSTS['db-a']['attributes']
    assert host['tags'] == ['large', 'primary']
    for name in ('db-nope', '..', '..%2F..%2Fetc%2Fpasswd', '%00', 'db-a%20'):
        answer = call(service, 'viewer', 'GET', '/api/v1/hosts/%s/profile' % name)
        assert answer.status_code in (404, 422), (name, answer.text)
    refused(service, 'viewer', 'GET', '/api/v1/hosts/db-nope', 404, "unknown host 'db-nope'")
    refused(service, 'viewer', 'GET', '/api/v1/hosts/%s' % ('x' * 256), 422)


def test_the_profile_is_the_whole_page(service):
    profile = ok(service, 'viewer', 'GET', '/api/v1/hosts/db-a/profile')
    assert profile['host']['name'] == 'db-a' and profile['host']['address'] == '10.0.0.1'
    assert dt.datetime.fromisoformat(profile['facts_collected_at']) == T0
    assert profile['facts']['version'] == '10.11.6-MariaDB' and profile['facts']['role'] == 'primary'
    assert profile['facts']['data bytes'] == 80 * 1024 ** 3
    assert sorted(profile['tags']) == ['role', 'size']
    [primary] = profile['tags']['role']
    assert primary['name'] == 'primary' and primary['source'] == 'rule'
    assert primary['evidence'] == {'facts.replication.role': 'primary'}
    assert {(event['tag'], event['action'], event['who']) for event in profile['tag_history']} >= {
        ('primary', 'added', 'fleet_tags'), ('large', 'added', 'fleet_tags')}
    [job] = profile['jobs']
    assert job['id'] == service.seeded['job'] and job['playbook'] == 'playbooks/backup.yml'
    assert job['counts']['ok'] == 4 and job['counts']['changed'] == 1
    [run] = profile['runs']
    assert run['job_id'] == service.seeded['job'] and run['lane'] == 0 and run['worker'] == 'worker1/100'
    assert [backup['method'] for backup in profile['backups']] == ['physical'] * 3
    starts = [backup['started_at'] for backup in profile['backups']]
    assert starts == sorted(starts, reverse=True)
    [entry] = profile['cron_entries']
    assert entry['mode'] == 'observe' and entry['line'] == 2 and entry['expression'] == '15 3 * * *'
    other = ok(service, 'viewer', 'GET', '/api/v1/hosts/db-c/profile')
    assert other['jobs'] == [] and other['runs'] == [] and other['cron_entries'] == []
    assert [backup['status'] for backup in other['backups']][0] == 'failed'


def test_admins_add_edit_and_delete_hosts(service):
    name = 'db-%s' % uuid.uuid4().hex[:8]
    made = ok(service, 'admin', 'PUT', '/api/v1/hosts/' + name,
              json={'address': 'db9.example.com', 'port': 3310, 'attributes': {'owner': 'dba', 'rack': 'r9'}})
    assert made['attributes'] == {'owner': 'dba', 'rack': 'r9'} and made['port'] == 3310
    changed = ok(service, 'admin', 'PUT', '/api/v1/hosts/' + name,
                 json={'attributes': {'rack': None, 'warranty_end': '2027-01-31'}})
    assert changed['attributes'] == {'owner': 'dba', 'warranty_end': '2027-01-31'}
    assert changed['address'] == 'db9.example.com' and changed['port'] == 3310
    [entry] = ok(service, 'admin', 'GET', '/api/v1/audit', params={'target': name, 'action': 'host.update',
                                                                   'limit': 1})['entries']
    assert entry['actor'] == 'admin' and entry['detail'] == {'attributes': {'rack': None,
                                                                            'warranty_end': '2027-01-31'}}
    ok(service, 'operator', 'POST', '/api/v1/tags/add', json={'host': name, 'tags': ['payments']})
    gone = ok(service, 'admin', 'DELETE', '/api/v1/hosts/' + name)
    assert gone == {'name': name, 'tags': ['payments']}
    refused(service, 'viewer', 'GET', '/api/v1/hosts/%s/profile' % name, 404)
    refused(service, 'admin', 'DELETE', '/api/v1/hosts/' + name, 404, 'unknown host')
    [entry] = ok(service, 'admin', 'GET', '/api/v1/audit', params={'target': name, 'action': 'host.delete'})['entries']
    assert entry['actor'] == 'admin' and entry['detail'] == {'tags': ['payments']}


def test_deleting_a_host_keeps_its_job_history(service):
    name = new_host(service)
    with open_store(service.store_url) as store:
        job, _ = store.jobs.create({'playbook': 'playbooks/inspect.yml', 'inventory': 'inventories/local_fleet.yml'})
        store.jobs.set_host_results(job['id'], {name: {'ok': 2}})
        store.jobs.transition(job['id'], 'canceled')
        store.backups.record(name, method='logical', started_at=T0)
    ok(service, 'admin', 'DELETE', '/api/v1/hosts/' + name)
    kept = ok(service, 'viewer', 'GET', '/api/v1/jobs/' + job['id'])
    assert kept['hosts'][name]['ok'] == 2
    assert [backup['host'] for backup in ok(service, 'viewer', 'GET', '/api/v1/backups',
                                            params={'host': name})['backups']] == [name]


def test_host_names_that_no_inventory_could_carry_are_refused(service):
    for name in ('db%20a', 'db%00a', 'db%5Ca', 'db%09a', 'x' * 256):
        answer = call(service, 'admin', 'PUT', '/api/v1/hosts/' + name, json={'attributes': {'owner': 'x'}})
        assert answer.status_code in (404, 422), (name, answer.text)
    refused(service, 'admin', 'PUT', '/api/v1/hosts/db%20a', 422, 'host name', json={'attributes': {}})
    names = [host['name'] for host in ok(service, 'viewer', 'GET', '/api/v1/hosts', params={'limit': 1000})['hosts']]
    assert not [name for name in names if not name.startswith('db-')]


@pytest.mark.parametrize('body, field', [
    ({'attributes': {'': 'x'}}, 'attributes'),
    ({'attributes': {'has space': 'x'}}, 'attributes'),
    ({'attributes': {'../../etc': 'x'}}, 'attributes'),
    ({'attributes': {'owner': 'x' * 1025}}, 'attributes'),
    ({'attributes': {'owner': 'nul\x00byte'}}, 'attributes'),
    ({'attributes': {'owner': 7}}, 'attributes'),
    ({'attributes': {'k%d' % index: 'v' for index in range(101)}}, 'attributes'),
    ({'port': 0}, 'port'), ({'port': 65536}, 'port'), ({'port': True}, 'port'),
    ({'address': 'a b'}, 'address'), ({'address': ''}, 'address'),
    ({'facts': {}}, 'facts'),
])
def test_host_edits_are_checked_at_the_boundary(service, body, field):
    detail = refused(service, 'admin', 'PUT', '/api/v1/hosts/db-a', 422, json=body)
    assert field in detail
    assert ok(service, 'viewer', 'GET', '/api/v1/hosts/db-a')['attributes'] == HOSTS['db-a']['attributes']


# -- tags -------------------------------------------------------------------------------------

def test_tag_definitions_with_host_counts(service):
    tags = {tag['name']: tag for tag in ok(service, 'viewer', 'GET', '/api/v1/tags')}
    assert tags['large']['hosts'] >= 2 and tags['large']['dimension'] == 'size' and tags['large']['kind'] == 'rule'
    assert tags['primary']['hosts'] == 1


def test_operators_set_and_take_off_manual_tags_with_expiry(service):
    name = new_host(service)
    added = ok(service, 'operator', 'POST', '/api/v1/tags/add',
               json={'host': name, 'tags': ['maintenance', 'payments'], 'expires': '7d'})
    assert added == {'host': name, 'added': ['maintenance', 'payments'], 'removed': [],
                     'tags': ['maintenance', 'payments']}
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)).replace(microsecond=0)
    ok(service, 'operator', 'POST', '/api/v1/tags/add', json={'host': name, 'tags': ['payments'],
                                                              'expires': later.isoformat()})
    profile = ok(service, 'viewer', 'GET', '/api/v1/hosts/%s/profile' % name)
    by_name = {tag['name']: tag for tags in profile['tags'].values() for tag in tags}
    assert by_name['payments']['source'] == 'manual' and by_name['payments']['set_by'] == 'operator'
    assert dt.datetime.fromisoformat(by_name['payments']['expires_at']) == later
    week = dt.datetime.fromisoformat(by_name['maintenance']['expires_at']) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=6) < week <= dt.timedelta(days=7)
    again = ok(service, 'operator', 'POST', '/api/v1/tags/add', json={'host': name, 'tags': ['payments'],
                                                                      'expires': later.isoformat()})
    assert again['added'] == []
    removed = ok(service, 'operator', 'POST', '/api/v1/tags/remove', json={'host': name, 'tags': ['maintenance',
                                                                                                 'never-set']})
    assert removed['removed'] == ['maintenance'] and removed['tags'] == ['payments']
    history = ok(service, 'viewer', 'GET', '/api/v1/hosts/%s/profile' % name)['tag_history']
    assert [(event['tag'], event['action'], event['who']) for event in history] == [
        ('maintenance', 'removed', 'operator'), ('payments', 'updated', 'operator'),
        ('payments', 'added', 'operator'), ('maintenance', 'added', 'operator')]
    audit = ok(service, 'admin', 'GET', '/api/v1/audit', params={'target': name, 'action': 'tag.'})['entries']
    assert [(entry['actor'], entry['action'], entry['detail']) for entry in audit] == [
        ('operator', 'tag.remove', {'tags': ['maintenance']}),
        ('operator', 'tag.add', {'tags': ['payments'], 'expires': later.isoformat()}),
        ('operator', 'tag.add', {'tags': ['maintenance', 'payments'], 'expires': '7d'})]


def test_manual_tags_on_an_unknown_host_need_create(service):
    name = 'db-%s' % uuid.uuid4().hex[:8]
    refused(service, 'operator', 'POST', '/api/v1/tags/add', 404, 'unknown host', json={'host': name, 'tags': ['x']})
    refused(service, 'operator', 'POST', '/api/v1/tags/remove', 404, 'unknown host',
            json={'host': name, 'tags': ['x']})
    ok(service, 'operator', 'POST', '/api/v1/tags/add', json={'host': name, 'tags': ['x'], 'create': True})
    assert ok(service, 'viewer', 'GET', '/api/v1/hosts/' + name)['tags'] == ['x']


@pytest.mark.parametrize('body, status, words', [
    ({'host': 'db-a', 'tags': ['and']}, 422, ['invalid tag name']),
    ({'host': 'db-a', 'tags': ['$(reboot)']}, 422, ['tags']),
    ({'host': 'db-a', 'tags': []}, 422, ['tags']),
    ({'host': 'db-a', 'tags': ['t%d' % index for index in range(101)]}, 422, ['tags']),
    ({'host': 'db-a', 'tags': ['x'], 'expires': 'soonish'}, 422, ['soonish']),
    ({'host': 'db-a', 'tags': ['x'], 'expires': '2001-01-01'}, 422, ['already past']),
    ({'host': 'db-a', 'tags': ['x'], 'expires': '99999999999999d'}, 422, []),
    ({'host': 'db-a', 'tags': ['x'], 'expires': 'x' * 65}, 422, ['expires']),
    ({'host': '../../etc/passwd', 'tags': ['x']}, 422, ['host']),
    ({'host': 'db a', 'tags': ['x']}, 422, ['host']),
    ({'host': 'db-a', 'tags': ['x'], 'who': 'admin'}, 422, ['who']),
    ({'host': 'db-a', 'tags': ['x'], 'create': 'yes'}, 422, ['create']),
])
def test_manual_tag_requests_are_checked_at_the_boundary(service, body, status, words):
    refused(service, 'operator', 'POST', '/api/v1/tags/add', status, *words, json=body)
    assert 'x' not in ok(service, 'viewer', 'GET', '/api/v1/hosts/db-a')['tags']


def test_remove_takes_no_expiry(service):
    refused(service, 'operator', 'POST', '/api/v1/tags/remove', 422, 'adding',
            json={'host': 'db-a', 'tags': ['x'], 'expires': '7d'})


# -- rules ------------------------------------------------------------------------------------

def test_the_loaded_rules(service):
    rules = ok(service, 'viewer', 'GET', '/api/v1/rules')
    by_tag = {rule['tag']: rule for rule in rules['rules']}
    assert by_tag['large']['dimension'] == 'size' and by_tag['large']['kind'] == 'rule'
    assert by_tag['critical']['kind'] == 'derived' and 'primary' in by_tag['critical']['depends_on']
    assert rules['order'].index('critical') > rules['order'].index('primary')
    assert rules['vars']['large_gb'] == 50


def test_a_rules_check_answers_each_hosts_tags_and_writes_nothing(service):
    text = ('vars: {big: 10}\n'
            'rules:\n'
            '  - {tag: big, dimension: size, when: "facts.schemas.totals.total_bytes > gb(vars.big)"}\n'
            '  - {tag: payments_db, dimension: business, when: "attrs.owner == \'payments-team\'"}\n'
            '  - {tag: big_payments, dimension: risk, when: "tags.big and tags.payments_db"}\n')
    before = ok(service, 'viewer', 'GET', '/api/v1/tags')
    checked = ok(service, 'admin', 'POST', '/api/v1/rules/check', json={'text': text})
    assert checked['valid'] and checked['errors'] == []
    assert checked['order'] == ['big', 'payments_db', 'big_payments']
    hosts = {host['host']: host for host in checked['hosts']}
    assert hosts['db-a']['tags'] == ['big', 'big_payments', 'payments_db']
    assert hosts['db-a']['added'] == ['big', 'big_payments', 'payments_db']
    assert hosts['db-a']['removed'] == ['large', 'primary']
    assert hosts['db-c']['tags'] == [] and hosts['db-c']['removed'] == ['small', 'standalone']
    assert ok(service, 'viewer', 'GET', '/api/v1/tags') == before
    assert ok(service, 'viewer', 'GET', '/api/v1/hosts/db-a')['tags'] == ['large', 'primary']


@pytest.mark.parametrize('text, words', [
    ('rules: [', ['invalid YAML']),
    ('', ['empty']),
    ('rules:\n  - {tag: a, dimension: x, when: "tags.b"}\n  - {tag: b, dimension: x, when: "tags.a"}\n', ['cycle']),
    ('rules:\n  - {tag: a, dimension: x, when: "facts.__class__.__mro__"}\n', ['a']),
    ('rules:\n  - {tag: a, dimension: x, when: "tags.nobody"}\n', ['unknown tag']),
    ('rules: ' + '[' * 5000 + ']' * 5000, []),
    ('!!python/object/apply:os.system ["touch /tmp/pwned"]', []),
    ('rules:\n  - {tag: a, dimension: x, when: "lookup(\'file\', \'/etc/passwd\')"}\n', ['lookup']),
])
def test_a_bad_rules_file_answers_its_errors(service, text, words):
    checked = ok(service, 'admin', 'POST', '/api/v1/rules/check', json={'text': text})
    assert not checked['valid'] and checked['hosts'] == []
    [error] = checked['errors']
    for word in words:
        assert word in error, error


@pytest.mark.parametrize('body', [{'text': 'x' * (MAX_RULES_TEXT + 1)}, {'text': '\U0001f600' * (MAX_RULES_TEXT + 1)}, {'path': '/etc/passwd'},
                                  {'text': 'rules: []', 'path': 'inventories/tag_rules.yml'}, {}, {'text': 7}])
def test_a_rules_check_takes_text_only(service, body):
    refused(service, 'admin', 'POST', '/api/v1/rules/check', 422, json=body)


# -- backups ----------------------------------------------------------------------------------

def test_the_backup_catalog_newest_first_with_filters(service):
    def listed(**params):
        return ok(service, 'viewer', 'GET', '/api/v1/backups', params=params)['backups']

    everything = [backup for backup in listed(limit=1000) if backup['host'] in HOSTS]
    assert len(everything) == 10
    starts = [backup['started_at'] for backup in everything]
    assert starts == sorted(starts, reverse=True)
    assert {backup['host'] for backup in listed(host='db-b')} == {'db-b'} and len(listed(host='db-b')) == 3
    assert {backup['host'] for backup in listed(method='physical')} == {'db-a'}
    [failed] = listed(status='failed')
    assert failed['host'] == 'db-c' and 'Access denied' in failed['error']
    day_two = listed(since=(T0 + dt.timedelta(days=1)).isoformat(), until=(T0 + dt.timedelta(days=2)).isoformat())
    assert len(day_two) == 3 and all(backup['started_at'].startswith('2026-03-02') for backup in day_two)
    assert listed(since='2026-03-02T00:00:00', until='2026-03-03T00:00:00') == day_two  # no zone: UTC


def test_the_backup_catalog_pages_without_repeats_or_gaps(service):
    seen, cursor = [], None
    while True:
        page = ok(service, 'viewer', 'GET', '/api/v1/backups',
                  params={'limit': 3, 'host': 'db-a', **({'cursor': cursor} if cursor else {})})
        seen += [backup['id'] for backup in page['backups']]
        cursor = page['next_cursor']
        if cursor is None:
            break
    assert seen == [backup['id'] for backup in ok(service, 'viewer', 'GET', '/api/v1/backups',
                                                  params={'host': 'db-a'})['backups']]


@pytest.mark.parametrize('params, status', [
    ({'method': 'tape'}, 422), ({'status': 'maybe'}, 422), ({'since': 'yesterday'}, 422),
    ({'since': '1700000000'}, 422), ({'until': '0001-01-01T00:00:00+14:00'}, 422), ({'limit': 0}, 422),
    ({'cursor': 'not-a-cursor'}, 400), ({'cursor': '99999999999999999999.1'}, 400), ({'cursor': '1.abc'}, 400),
    ({'host': 'h' * 256}, 422),
])
def test_backup_filters_out_of_bounds_are_refused(service, params, status):
    refused(service, 'viewer', 'GET', '/api/v1/backups', status, params=params)


def test_an_added_host_links_to_its_operations(service):
    document = httpx.get(service.url + '/openapi.json', timeout=60).json()
    links = document['paths']['/api/v1/hosts/{name}']['put']['responses']['200']['links']
    targets = {link['operationRef']: link['parameters'] for link in links.values()}
    for path, method in (('', 'get'), ('', 'delete'), ('~1profile', 'get')):
        assert targets['#/paths/~1api~1v1~1hosts~1{name}%s/%s' % (path, method)] == {'name': '$response.body#/name'}


def test_a_backup_lists_its_off_host_copies_for_every_role(service):
    with open_store(service.store_url) as store:
        backup = store.backups.record('db-copies', method='logical', started_at=T0, finished_at=T0,
                                      checksum='a' * 64, source_replica='db-copies-r:3306', source_gtid='0-1-9')
        store.copies.record('db-copies', 'vault', 'root@backup1:/srv/db-copies/dump.sql.gz', 'ok', backup_id=backup['id'],
                            sha256='a' * 64, verified_at=T0)
        store.copies.record('db-copies', 's3', 's3:bucket/db-copies/dump.sql.gz', 'failed', backup_id=backup['id'],
                            error='rclone copyto s3 exited with status 1: AccessDenied')
    for role in ('viewer', 'operator', 'admin'):
        (listed,) = ok(service, role, 'GET', '/api/v1/backups', params={'host': 'db-copies'})['backups']
        assert [(copy['repository'], copy['status']) for copy in listed['copies']] == [('vault', 'ok'), ('s3', 'failed')]
        assert listed['copies'][1]['error'].endswith('AccessDenied') and listed['copies'][0]['sha256'] == 'a' * 64
        assert listed['source_replica'] == 'db-copies-r:3306' and listed['source_gtid'] == '0-1-9'
    assert call(service, 'agent', 'GET', '/api/v1/backups').status_code == 403
