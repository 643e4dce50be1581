"""`dbfleet hosts|tags|backups` through the real API (DBFLEET_API_URL and a token) print what they
print from the store (--store), and their changes carry the token's name in the tag history and the
audit log."""

from __future__ import annotations

import json
import uuid

import pytest

from dbfleet.store import open_store
from tests.service.fleet_helpers import seed_fleet
from devtools.service_harness import Service

pytestmark = pytest.mark.service

READS = [
    ('hosts', 'list'), ('hosts', 'list', '--json'), ('hosts', 'list', '--tags', 'large and not replica', '--json'),
    ('hosts', 'list', '-q', 'payments'), ('hosts', 'profile', 'db-a'), ('hosts', 'profile', 'db-a', '--json'),
    ('hosts', 'profile', 'db-c'), ('tags', 'list'), ('tags', 'list', '--json'),
    ('backups', 'list'), ('backups', 'list', '--json', '--host', 'db-c'),
    ('backups', 'list', '--method', 'physical', '--limit', '2'), ('backups', 'list', '--since', '2026-03-02',
                                                                  '--until', '2026-03-03', '--json'),
]


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('cli-fleet'), workers=0).start()
    seed_fleet(service.store_url)
    yield service
    service.stop()


def through_api(service, *args, role='viewer'):
    return service.dbfleet(*args, token=service.tokens[role])


def from_store(service, *args):
    return service.dbfleet(*args, '--store', service.store_url)


def succeeded(completed):
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.mark.parametrize('args', READS, ids=' '.join)
def test_reads_print_the_same_through_the_api_and_from_the_store(service, args):
    api = succeeded(through_api(service, *args))
    assert api == succeeded(from_store(service, *args))
    assert ('large' if args[0] == 'tags' else 'db-') in api


def test_the_profile_shows_jobs_runs_backups_and_crontab_entries(service):
    with service.client('admin') as admin:
        imported = admin.post('/api/v1/cron/import', json={
            'host': 'db-b', 'file': {'kind': 'user', 'name': 'root', 'system': False},
            'text': '30 2 * * * /usr/local/bin/rotate.sh\n'})
        assert imported.status_code == 201, imported.text
    shown = succeeded(through_api(service, 'hosts', 'profile', 'db-b'))
    assert shown == succeeded(from_store(service, 'hosts', 'profile', 'db-b'))
    for section in ('recent jobs', 'host runs', 'backups', 'crontab entries', 'playbooks/backup.yml', '30 2 * * *',
                    'worker1/100', 'observe'):
        assert section in shown, shown


def test_changes_through_the_api_carry_the_token_name(service):
    name = 'db-%s' % uuid.uuid4().hex[:8]
    assert succeeded(through_api(service, 'hosts', 'set', name, 'owner=dba', 'rack=r2', '--port', '3307',
                                 role='admin')).strip() == '%s: owner=dba, rack=r2' % name
    assert succeeded(through_api(service, 'tags', 'add', name, 'maintenance', '--expires', '7d',
                                 role='operator')).strip() == '%s: added maintenance' % name
    assert succeeded(through_api(service, 'tags', 'remove', name, 'maintenance',
                                 role='operator')).strip() == '%s: removed maintenance' % name
    assert succeeded(from_store(service, 'tags', 'add', name, 'payments')).strip() == '%s: added payments' % name
    [host] = json.loads(succeeded(through_api(service, 'hosts', 'list', '-q', name, '--json')))
    assert host['attributes'] == {'owner': 'dba', 'rack': 'r2'} and host['port'] == 3307
    assert host['tags'] == ['payments']
    with open_store(service.store_url) as store:
        who = [(event['tag'], event['action'], event['who']) for event in store.tags.events(host=name)]
        audit = [(entry['actor'], entry['action']) for entry in store.audit.list(target=name)]
    assert who[1:] == [('maintenance', 'removed', 'operator'), ('maintenance', 'added', 'operator')]
    assert who[0][:2] == ('payments', 'added') and who[0][2].startswith('cli:')
    assert audit[1:] == [('operator', 'tag.remove'), ('operator', 'tag.add'), ('admin', 'host.update')]
    assert audit[0][0].startswith('cli:') and audit[0][1] == 'tag.add'
    assert succeeded(through_api(service, 'hosts', 'delete', name, role='admin')).strip() == \
        '%s: deleted (tags: payments)' % name


@pytest.mark.parametrize('args, role, words', [
    (('hosts', 'set', 'db-a', 'owner=x'), 'operator', ['needs admin']),
    (('hosts', 'delete', 'db-a'), 'viewer', ['needs admin']),
    (('tags', 'add', 'db-a', 'x'), 'viewer', ['needs operator']),
    (('hosts', 'list', '--tags', 'large and'), 'viewer', ['bad tag expression']),
    (('hosts', 'profile', 'db-nope'), 'viewer', ["unknown host 'db-nope'"]),
    (('hosts', 'set', 'db-a', 'bad key=x'), 'admin', ['attributes']),
    (('tags', 'add', 'db-a', 'and'), 'operator', ['invalid tag name']),
    (('tags', 'add', 'db-a', 'x', '--expires', 'soonish'), 'operator', ['soonish']),
    (('backups', 'list', '--cursor', 'nope'), 'viewer', ['cursor']),
    (('backups', 'list', '--since', 'whenever'), 'viewer', ['--since']),
])
def test_refusals_are_one_line_with_exit_2_on_both_paths(service, args, role, words):
    for completed in (through_api(service, *args, role=role),) + (() if 'needs' in words[0] else
                                                                  (from_store(service, *args),)):
        assert completed.returncode == 2, (completed.stdout, completed.stderr)
        lines = completed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('dbfleet: '), completed.stderr
        for word in words:
            assert word in lines[0], lines[0]


def test_without_a_token_the_cli_says_how_to_get_one(service):
    completed = service.dbfleet('hosts', 'list')
    assert completed.returncode == 2 and 'DBFLEET_TOKEN' in completed.stderr
