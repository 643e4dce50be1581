"""The backup catalog's pins and fields over the real API process and the `dbfleet backups` CLI:
GET /api/v1/backups/{id}, POST/DELETE /api/v1/backups/{id}/keep for every role, the pinned and
include_removed filters, the audit log, and the refusals of hostile input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from dbfleet.store import open_store
from devtools.service_harness import Service

pytestmark = pytest.mark.service

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
SHA = 'cd' * 32


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('backup-catalog'), workers=0).start()
    with service.client('admin') as admin:
        made = admin.post('/api/v1/tokens', json={'name': 'agent-cat-a', 'role': 'agent', 'host': 'cat-a'})
        assert made.status_code == 201, made.text
        service.tokens['agent'] = made.json()['token']
    with open_store(service.store_url) as store:
        def backup(host, day, **extra):
            started = T0 + dt.timedelta(days=day)
            fields = dict(method='logical', started_at=started, finished_at=started + dt.timedelta(seconds=30),
                          path='/b/%s/%d' % (host, day), checksum=SHA, bytes=1000)
            fields.update(extra)
            return store.backups.record(host, **fields)['id']
        service.ids = dict(
            old=backup('cat-a', 0), new=backup('cat-a', 1), removed=backup('cat-a', 2), other=backup('cat-b', 1),
            failed=backup('cat-a', 3, status='failed', path=None, checksum=None, bytes=None,
                          error='killed or interrupted (partial directory removed)',
                          partial_path='/b/cat-a/2026-03-04/.20260304T010000Z-logical.partial-9'))
        store.backups.mark_removed('cat-a', ['/b/cat-a/2'], at=T0 + dt.timedelta(days=5))
    yield service
    service.stop()


def call(service, role, method, path, **kwargs):
    with service.client(role) as client:
        return client.request(method, path, **kwargs)


def answer(service, role, method, path, status=200, **kwargs):
    response = call(service, role, method, path, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


def listed(service, **params):
    return [backup['id'] for backup in answer(service, 'viewer', 'GET', '/api/v1/backups', params=params)['backups']]


@pytest.mark.parametrize('role', ['viewer', 'operator', 'admin', 'agent', None])
def test_who_may_read_pin_and_unpin(service, role):
    backup_id = service.ids['old']
    path = '/api/v1/backups/%d' % backup_id
    rank = {'viewer': 0, 'operator': 1, 'admin': 2}.get(role, -1)
    for method, url, needed in (('GET', path, 0), ('POST', path + '/keep', 1), ('DELETE', path + '/keep', 2)):
        response = call(service, role, method, url)
        if rank >= needed:
            assert response.status_code == 200, (method, response.text)
            assert response.json()['id'] == backup_id
        elif role is None:
            assert response.status_code == 401, (method, response.text)
        else:
            assert response.status_code == 403, (method, response.text)
            detail = response.json()['detail']
            assert ('agent token' in detail) if role == 'agent' else ('needs %s' % ['viewer', 'operator', 'admin'][
                needed] in detail), detail
    # Leave it unpinned for the other tests.
    answer(service, 'admin', 'DELETE', path + '/keep')


def test_pinning_shows_in_the_catalog_and_the_audit_log(service):
    ids = service.ids
    pinned = answer(service, 'operator', 'POST', '/api/v1/backups/%d/keep' % ids['new'])
    assert pinned['pinned'] is True and pinned['removed_at'] is None and pinned['restore_tested_at'] is None
    again = answer(service, 'operator', 'POST', '/api/v1/backups/%d/keep' % ids['new'])
    assert again['pinned'] is True
    assert listed(service, pinned='true') == [ids['new']]
    assert ids['new'] not in listed(service, pinned='false') and ids['old'] in listed(service, pinned='false')
    with open_store(service.store_url) as store:
        assert store.backups.pinned_paths('cat-a') == ['/b/cat-a/1']
    unpinned = answer(service, 'admin', 'DELETE', '/api/v1/backups/%d/keep' % ids['new'])
    assert unpinned['pinned'] is False
    audit = answer(service, 'admin', 'GET', '/api/v1/audit', params={'target': 'cat-a'})
    entries = audit['entries'] if isinstance(audit, dict) else audit
    actions = [(entry['action'], entry['actor'], entry['detail']['backup']) for entry in entries
               if entry['action'].startswith('backup.') and entry['detail']['backup'] == ids['new']]
    assert sorted(actions) == [('backup.keep', 'operator', ids['new']), ('backup.unkeep', 'admin', ids['new'])], \
        'one entry per change: pinning twice is one'


def test_removed_backups_and_failed_attempts_in_the_catalog(service):
    ids = service.ids
    assert ids['removed'] not in listed(service, host='cat-a')
    assert ids['removed'] in listed(service, host='cat-a', include_removed='true')
    removed = answer(service, 'viewer', 'GET', '/api/v1/backups/%d' % ids['removed'])
    assert removed['removed_at'].startswith('2026-03-06')
    failed = answer(service, 'viewer', 'GET', '/api/v1/backups/%d' % ids['failed'])
    assert failed['status'] == 'failed' and failed['partial_path'].endswith('.partial-9')
    assert failed['kept_partial'] is False and 'killed or interrupted' in failed['error']


@pytest.mark.parametrize('which, words', [
    ('failed', ['failed attempt']), ('removed', ['removed by retention']),
])
def test_what_cannot_be_pinned_is_a_422_with_the_reason(service, which, words):
    detail = answer(service, 'operator', 'POST', '/api/v1/backups/%d/keep' % service.ids[which], 422)['detail']
    for word in words:
        assert word in detail, detail


@pytest.mark.parametrize('method', ['GET', 'POST', 'DELETE'])
# An id is digits in the path itself (so /restore and /windows never match it): anything else is a 404.
@pytest.mark.parametrize('ref, status', [('424242', 404), ('0', 422), ('-1', 404), ('abc', 404),
                                         ('9' * 30, 422), ('1.5', 404), ('%2e%2e', 404)])
def test_unknown_and_hostile_ids(service, method, ref, status):
    path = '/api/v1/backups/%s%s' % (ref, '' if method == 'GET' else '/keep')
    response = call(service, 'admin', method, path)
    assert response.status_code == status, response.text
    if ref == '424242':
        assert 'no backup 424242' in response.json()['detail']
    elif status == 404:
        assert response.json()['detail'] == 'Not Found'


@pytest.mark.parametrize('params', [{'pinned': 'maybe'}, {'include_removed': 'sometimes'}])
def test_bad_filters_are_422(service, params):
    answer(service, 'viewer', 'GET', '/api/v1/backups', 422, params=params)


# -- the CLI ---------------------------------------------------------------------------------

def cli(service, *args, role='viewer', store=False):
    if store:
        return service.dbfleet(*args, '--store', service.store_url)
    return service.dbfleet(*args, token=service.tokens[role])


def test_cli_keep_unkeep_show_and_list_through_the_api_and_the_store(service):
    backup_id = service.ids['other']
    kept = cli(service, 'backups', 'keep', str(backup_id), '--json', role='operator')
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)['pinned'] is True
    refused = cli(service, 'backups', 'unkeep', str(backup_id), role='operator')
    assert refused.returncode == 2 and 'needs admin' in refused.stderr and len(refused.stderr.splitlines()) == 1
    for store in (False, True):
        shown = cli(service, 'backups', 'show-id', str(backup_id), store=store)
        assert shown.returncode == 0 and 'pinned' in shown.stdout and 'True' in shown.stdout, shown.stderr
        table = cli(service, 'backups', 'list', '--pinned', store=store)
        assert table.returncode == 0 and 'cat-b' in table.stdout and 'pinned' in table.stdout, table.stderr
    api = cli(service, 'backups', 'list', '--host', 'cat-a', '--include-removed')
    assert api.stdout == cli(service, 'backups', 'list', '--host', 'cat-a', '--include-removed', store=True).stdout
    assert 'removed 2026-03-06' in api.stdout and 'killed or interrupted' in api.stdout
    unkept = cli(service, 'backups', 'unkeep', str(backup_id), '--json', store=True)
    assert unkept.returncode == 0 and json.loads(unkept.stdout)['pinned'] is False, unkept.stderr
    with open_store(service.store_url) as store:
        entries = store.audit.list(target='cat-b')
    assert [entry['action'] for entry in entries][:2] == ['backup.unkeep', 'backup.keep']
    assert entries[0]['actor'].startswith('cli:') and entries[1]['actor'] == 'operator'


@pytest.mark.parametrize('args, words', [
    (('backups', 'show-id', '424242'), ['no backup 424242']),
    (('backups', 'keep', str(2 ** 64)), ['9223372036854775807']),
])
def test_cli_refusals_are_one_line(service, args, words):
    for store in (False, True):
        completed = cli(service, *args, role='admin', store=store)
        assert completed.returncode == 2, completed.stdout
        assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
        for word in words:
            assert word in completed.stderr, completed.stderr
