"""Restores as jobs through the real API, a worker and ansible-playbook against the local fleet's primary:
a backup, more writes, a table dropped by accident, the binlogs archived, and the server brought back to
one second before the drop in a scratch sandbox (`dbfleet backups restore HOST --to ...`)."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from dbfleet.store import open_store
from runner_service.fleet.restores import FROM_VARIABLES, TEMPLATE_DEFINITION
from tests.collection.restore_helpers import (
    accident,
    create_schema,
    drop_schema,
    fetch_binlogs,
    manifest_of,
    record_archive,
    scratch_schema_name,
)
from devtools.service_harness import Service

pytestmark = pytest.mark.fleet
FROM_NAMES = {variable['name'] for variable in FROM_VARIABLES}


@pytest.fixture(scope='module')
def service(tmp_path_factory, fleet):
    service = Service(tmp_path_factory.mktemp('service'), workers=1).start()
    yield service
    service.stop()


def ok(service, role, method, path, status=200, **kwargs):
    """The JSON answer of a request, whose status is `status` (or one of them)."""
    with service.client(role) as client:
        response = client.request(method, path, **kwargs)
    assert response.status_code in (status if isinstance(status, tuple) else (status,)), response.text
    return response.json()


def module_result(service, job_id, action='dbfleet.mysql.mysql_restore'):
    for event in service.events(job_id):
        data = event.get('data') or {}
        if data.get('task_action') == action and event['event'] in ('runner_on_ok', 'runner_on_failed'):
            return data.get('res') or {}
    raise AssertionError('no %s result in job %s' % (action, job_id))


@pytest.fixture(scope='module')
def history(service, fleet, tmp_path_factory):
    """A scratch schema on the primary, backed up through a job (recorded in the service's catalog), then
    written to, a table dropped by accident, more rows, and the binlogs archived under the backup's host dir."""
    dest = tmp_path_factory.mktemp('repository')
    schema = scratch_schema_name()
    create_schema(fleet, schema)
    try:
        # The store's hosts are the restore template's inventory (inventories/fleet.fleet.yml).
        ok(service, 'admin', 'PUT', '/api/v1/hosts/primary', json={'address': '127.0.0.1', 'port': 33061})
        job = ok(service, 'admin', 'POST', '/api/v1/jobs', 201, json={
            'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/local_fleet.yml', 'limit': 'primary',
            'extra_vars': {'dbfleet_backup_dest': str(dest), 'dbfleet_backup_databases': [schema],
                           'dbfleet_backup_retention_count': 100}})
        assert service.wait(job['id'], timeout=300)['status'] == 'successful'
        [backup] = ok(service, 'viewer', 'GET', '/api/v1/backups', params={'host': 'primary'})['backups']
        manifest = manifest_of(backup['path'])
        moments = accident(fleet, schema)
        binlogs = fetch_binlogs(fleet, dest / 'primary', manifest['binlog_file'], dest)
        yield dict(schema=schema, dest=dest, backup=backup, manifest=manifest, binlogs=binlogs,
                   **moments)
    finally:
        drop_schema(fleet, schema)


def test_a_dropped_table_comes_back_as_it_was_one_second_before_the_drop(service, history):
    target = history['target'].strftime('%Y-%m-%d %H:%M:%S')
    launched = service.dbfleet('backups', 'restore', 'primary', '--to', target, '--json',
                               token=service.tokens['operator'])
    assert launched.returncode == 0, launched.stderr
    answer = json.loads(launched.stdout)
    assert answer['backup']['id'] == history['backup']['id'] and answer['job']['template'] == 'restore'
    job = service.wait(answer['job']['id'], timeout=600)
    result = module_result(service, job['id'])
    assert job['status'] == 'successful', result.get('msg')
    schema = history['schema']
    restored = result['verification']['tables']
    # The dropped table is back, as it was; the rows and the table written before the drop are there
    # (orders as it was just before the drop: 5 rows, the same checksum), the row written after it is not.
    assert restored == history['before_drop']
    assert restored['%s.precious' % schema][0] == 2 and restored['%s.orders' % schema][0] == 5
    assert restored['%s.later' % schema][0] == 1
    assert result['backup']['path'] == history['backup']['path']
    assert result['replayed']['files'][0] == history['manifest']['binlog_file']
    assert result['replayed']['events'] > 0 and result['stop_point']['requested'] == target
    assert result['stop_point']['last_event_at'] <= history['target'].strftime('%Y-%m-%dT%H:%M:%SZ')
    verification = result['verification']
    assert verification['ok'] and verification['check_table'] == {'tables': 3, 'errors': []}
    assert verification['objects']['reference'] == 'source'
    assert verification['objects']['restored'][schema] == dict(tables=3, views=1, routines=1, triggers=1, events=0)
    assert set(result['seconds']) >= {'sandbox', 'load', 'replay', 'verify'}
    [entry] = ok(service, 'admin', 'GET', '/api/v1/audit', params={'action': 'backup.restore', 'limit': 1})['entries']
    assert entry['actor'] == 'operator' and entry['detail']['job'] == job['id']


def test_to_gtid_restores_up_to_and_including_that_transaction(service, history):
    # The first transaction after the backup: the two 'after' rows.
    domain, server, sequence = history['manifest']['gtid'].split('-')
    wanted = '%s-%s-%d' % (domain, server, int(sequence) + 1)
    waited = service.dbfleet('backups', 'restore', 'primary', '--to-gtid', wanted, '--wait',
                             token=service.tokens['operator'], timeout=600)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    job_id = waited.stdout.split()[0] if waited.stdout.split() else None
    [job] = ok(service, 'viewer', 'GET', '/api/v1/jobs', params={'playbook': 'playbooks/restore.yml',
                                                                 'limit': 1})['jobs']
    result = module_result(service, job['id'])
    assert job_id is None or job_id == job['id'] or job['id'] in waited.stdout
    assert result['stop_point']['gtid'].endswith(wanted) and result['replayed']['stop_gtid'] == wanted
    assert result['replayed']['events'] >= 3


def test_refusals_through_the_api(service, history):
    target = history['target'].strftime('%Y-%m-%d %H:%M:%S')
    body = {'host': 'primary', 'to': target}
    with service.client('viewer') as client:
        assert client.post('/api/v1/backups/restore', json=body).status_code == 403
    with service.client(None) as client:
        assert client.post('/api/v1/backups/restore', json=body).status_code == 401
    agent = json.loads(service.dbfleet('tokens', 'create', 'agent-restore', '--role', 'agent', '--host', 'primary',
                                       '--json', check=True).stdout)['token']
    with service.client(None) as client:
        client.headers['Authorization'] = 'Bearer %s' % agent
        assert client.post('/api/v1/backups/restore', json=body).status_code == 403
    refused = ok(service, 'operator', 'POST', '/api/v1/backups/restore', 403, json={**body, 'into': 'replica'})
    assert 'needs admin' in refused['detail']
    for hostile in ({'host': 'primary,replica', 'to': target}, {'host': '@/etc/passwd', 'to': target},
                    {'host': 'primary'}, {'host': 'primary', 'to': target, 'to_gtid': '0-1-2'},
                    {'host': 'primary', 'to_gtid': '0-1-2; DROP'}, {'host': 'primary', 'to': target,
                                                                       'schema': 'a`b'},
                    {'host': 'primary', 'to': target, 'into': 'x!y'}, {'host': 'primary', 'to': 12345},
                    {'host': 'primary', 'to': target, 'extra': 1}, {'host': 'primary', 'to': target, 'from': '../x'},
                    {'host': 'primary', 'to': target, 'from': 'a b'}, {'host': 'primary', 'to': target, 'from': ''}):
        assert ok(service, 'operator', 'POST', '/api/v1/backups/restore', 422, json=hostile)['detail']
    # From a repository: only a backup with a verified copy there (this one was never copied).
    uncopied = ok(service, 'operator', 'POST', '/api/v1/backups/restore', 404, json={**body, 'from': 'vault'})
    assert 'no successful backup with a verified copy in repository vault started before' in uncopied['detail']
    named = ok(service, 'operator', 'POST', '/api/v1/backups/restore', 422,
               json={**body, 'from': 'vault', 'backup': history['backup']['id']})
    assert named['detail'] == 'backup %d of primary has no verified copy in repository vault (its copies: none)' % \
        history['backup']['id']
    cli = service.dbfleet('backups', 'restore', 'primary', '--to', target, '--from', 'vault; rm',
                          token=service.tokens['operator'])
    assert cli.returncode == 2 and cli.stderr.count('\n') == 1 and cli.stderr.startswith('dbfleet: --from: ')
    early = ok(service, 'operator', 'POST', '/api/v1/backups/restore', 404,
               json={'host': 'primary', 'to': '2001-01-01T00:00:00Z'})
    assert 'no successful backup started before 2001-01-01 00:00:00 UTC' in early['detail']
    assert ok(service, 'operator', 'POST', '/api/v1/backups/restore', 404,
              json={'host': 'nohost', 'to': target})['detail']
    assert ok(service, 'operator', 'POST', '/api/v1/backups/restore', 404,
              json={'host': 'primary', 'to': target, 'backup': 999999})['detail']
    # The CLI: one line, exit 2.
    cli = service.dbfleet('backups', 'restore', 'primary', '--to', 'yesterday', token=service.tokens['operator'])
    assert cli.returncode == 2 and cli.stderr.count('\n') == 1 and 'not a time' in cli.stderr
    cli = service.dbfleet('backups', 'restore', 'primary', token=service.tokens['operator'])
    assert cli.returncode == 2 and '--to' in cli.stderr


def test_a_target_after_the_archive_fails_the_job_saying_why(service, history):
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)).strftime('%Y-%m-%d %H:%M:%S')
    launched = ok(service, 'operator', 'POST', '/api/v1/backups/restore', 201, json={'host': 'primary', 'to': later})
    job = service.wait(launched['job']['id'], timeout=300)
    assert job['status'] == 'failed'
    assert 'after the newest archived event' in module_result(service, job['id'])['msg']


def test_admins_restore_over_an_inventory_host_which_refuses_without_force(service, history):
    """A bare job of playbooks/restore.yml (not the operators' template); the replica writes a binlog, so the
    module refuses before changing anything and says what it would do."""
    ok(service, 'admin', 'PUT', '/api/v1/hosts/replica', json={'address': '127.0.0.1', 'port': 33062})
    launched = ok(service, 'admin', 'POST', '/api/v1/backups/restore', 201,
                  json={'host': 'primary', 'to': history['target'].strftime('%Y-%m-%dT%H:%M:%SZ'),
                        'into': 'replica', 'schema': history['schema']})
    assert launched['job']['template'] is None and launched['job']['playbook'] == 'playbooks/restore.yml'
    # Over a server: nothing runs until a second admin approves; the one who asked cannot.
    job_id = launched['job']['id']
    assert launched['job']['status'] == 'awaiting_approval'
    with service.client('admin') as admin:
        own = admin.post('/api/v1/jobs/%s/approve' % job_id, json={})
        assert own.status_code == 403, own.text
        made = admin.post('/api/v1/tokens', json={'name': 'restore-second-admin', 'role': 'admin'})
        assert made.status_code == 201, made.text
    with httpx.Client(base_url=service.url, timeout=60,
                      headers={'Authorization': 'Bearer %s' % made.json()['token']}) as second:
        approved = second.post('/api/v1/jobs/%s/approve' % job_id, json={'reason': 'restore drill'})
    assert approved.status_code == 200, approved.text
    job = service.wait(job_id, timeout=300)
    message = module_result(service, job['id'])['msg']
    assert job['status'] == 'failed'
    assert 'refusing to restore over dbfleet_monitor@127.0.0.1:33062 without force: it writes a binary log' in message
    assert 'With force: true this restore would drop the databases %s' % history['schema'] in message


def test_a_drill_restores_the_newest_backup_to_the_end_of_its_window_and_records_rto_and_rpo(service, history):
    """The binlogs archived (manifests, recorded): the window runs from the backup to the newest archived event;
    an operator's drill restores the backup, replays to that event, verifies, and records it."""
    manifests = record_archive(service.store_url, 'primary', history['binlogs'])
    [window] = ok(service, 'viewer', 'GET', '/api/v1/backups/windows', params={'host': 'primary'})['windows']
    assert window['chain'] and window['from_backup'] == history['backup']['id']
    newest_event = manifests[-1]['last_event_at']
    assert window['end'] == newest_event
    with service.client('viewer') as client:
        assert client.post('/api/v1/backups/drills', json={'limit': 'primary'}).status_code == 403
    for hostile in ({'tags': 'and or'}, {'lanes': 0}, {'limit': '@/etc/passwd'}, {'tags': 'primary', 'extra': 1},
                    {'window_end': '2001-01-01T00:00:00Z'}, {'lanes': '2'}, {'point': 'yesterday'},
                    {'point': '2026-02-30 00:00:00'}, {'point': 'end; rm -rf /'}, {'from': '../vault'},
                    {'from': ''}, {'from': 'x' * 65}, {'from': 7}):
        refused = ok(service, 'operator', 'POST', '/api/v1/backups/drills', (400, 422), json=hostile)
        assert refused['detail'], hostile
    waited = service.dbfleet('backups', 'drill', '--limit', 'primary', '--lanes', '1', '--wait',
                             token=service.tokens['operator'], timeout=900)
    [drill] = ok(service, 'viewer', 'GET', '/api/v1/backups/drills', params={'host': 'primary'})['drills']
    assert waited.returncode == 0, (waited.stdout + waited.stderr)[-3000:] + str(drill.get('error'))
    job = ok(service, 'viewer', 'GET', '/api/v1/jobs/%s' % drill['job_id'])
    assert job['template'] == 'drill' and job['status'] == 'successful' and job['plan']['lanes'] == 1
    result = module_result(service, job['id'], action='dbfleet.mysql.restore_drill')
    assert result['recorded'] and result['drill']['id'] == drill['id']
    assert drill['status'] == 'ok' and drill['backup_id'] == history['backup']['id']
    assert drill['restored_to'] == newest_event  # the end of the window, to the second
    assert drill['rto_seconds'] > 0 and drill['rpo_seconds'] > 0
    started = dt.datetime.fromisoformat(drill['started_at'].replace('Z', '+00:00'))
    restored_to = dt.datetime.fromisoformat(newest_event.replace('Z', '+00:00'))
    assert drill['rpo_seconds'] == pytest.approx((started - restored_to).total_seconds(), abs=1e-3)
    assert manifests[-1]['file'] in result['restore']['replayed']['files']
    assert result['restore']['verification']['ok'] and drill['detail']['seconds']['replay'] >= 0
    # The dropped table stayed dropped: the drill restored the end of the window, after the accident.
    assert '%s.precious' % history['schema'] not in result['restore']['verification']['tables']
    backup = ok(service, 'viewer', 'GET', '/api/v1/backups/%d' % history['backup']['id'])
    assert backup['restore_test_status'] == 'ok' and backup['restore_tested_at'] == drill['finished_at']
    profile = ok(service, 'viewer', 'GET', '/api/v1/hosts/primary/profile')
    assert profile['restore_drills']['last_ok_at'] == drill['finished_at']
    assert profile['restore_drills']['recent'][0]['id'] == drill['id']
    listed = service.dbfleet('backups', 'drills', '--host', 'primary', token=service.tokens['viewer'])
    assert listed.returncode == 0 and 'primary' in listed.stdout and ' ok ' in listed.stdout, listed.stdout
    [entry] = ok(service, 'admin', 'GET', '/api/v1/audit', params={'action': 'backup.drill', 'limit': 1})['entries']
    assert entry['actor'] == 'operator' and entry['detail']['job'] == job['id']


def test_a_drill_to_an_instant_inside_the_window_brings_the_dropped_table_back(service, history):
    """A `drill` template seeded before drills had a point (no survey) gets its point variable at the next drill;
    a drill to one second before the drop restores the table the accident dropped, and records no RPO.
    (Its repository variable comes with it: drills of a repository's copy are tests/netfleet/test_point_in_time.py's.)"""
    record_archive(service.store_url, 'primary', history['binlogs'])
    with service.client('admin') as admin:
        admin.delete('/api/v1/templates/drill')
        made = admin.post('/api/v1/templates', json={
            'name': 'drill', 'playbook': 'playbooks/drill.yml', 'inventory': 'inventories/fleet.fleet.yml',
            'allow_limit': True, 'plan': {'lanes': 1}})
        assert made.status_code == 201 and made.json()['survey'] == [], made.text
    target = history['target'].strftime('%Y-%m-%d %H:%M:%S')
    waited = service.dbfleet('backups', 'drill', '--limit', 'primary', '--point', target, '--wait',
                             token=service.tokens['operator'], timeout=900)
    drill = ok(service, 'viewer', 'GET', '/api/v1/backups/drills', params={'host': 'primary', 'limit': 1})['drills'][0]
    assert waited.returncode == 0, (waited.stdout + waited.stderr)[-3000:] + str(drill.get('error'))
    survey = ok(service, 'viewer', 'GET', '/api/v1/templates/drill')['survey']
    assert [variable['name'] for variable in survey] == ['dbfleet_drill_point', 'dbfleet_drill_from']
    result = module_result(service, drill['job_id'], action='dbfleet.mysql.restore_drill')
    assert drill['status'] == 'ok' and drill['backup_id'] == history['backup']['id']
    assert drill['detail']['point'] == target and drill['rpo_seconds'] is None
    assert drill['restored_to'] <= history['target'].strftime('%Y-%m-%dT%H:%M:%SZ')
    assert result['restore']['verification']['tables'] == history['before_drop']
    assert 'the instant asked for' in result['msg']
    cli = service.dbfleet('backups', 'drill', '--limit', 'primary', '--point', 'tomorrow',
                          token=service.tokens['operator'])
    assert cli.returncode == 2 and cli.stderr.count('\n') == 1 and 'point' in cli.stderr


def test_a_drill_schedule_runs_the_drill_template_every_day_in_its_window(service):
    made = ok(service, 'operator', 'POST', '/api/v1/backups/drills/schedule', 201,
              json={'name': 'nightly-drill', 'start': '02:00', 'end': '05:00', 'timezone': 'Europe/Paris',
                    'limit': 'primary'})
    assert made['job']['template'] == 'drill' and made['kind'] == 'cron' and made['expression'] == '0 2 * * *'
    assert made['timezone'] == 'Europe/Paris' and made['window_end_at'] == '05:00'
    assert made['job']['limit'] == 'primary'
    assert made['overlap'] == 'forbid'
    inside = ok(service, 'operator', 'POST', '/api/v1/backups/drills/schedule', 201,
                json={'name': 'inside-drill', 'start': '03:00', 'end': '05:00', 'point': 'inside'})
    assert inside['job']['extra_vars'] == {'dbfleet_drill_point': 'inside'}
    copies = service.dbfleet('backups', 'drill', '--schedule', 'vault-drill', '--window', '04:00-06:00', '--from',
                             'vault', '--json', token=service.tokens['operator'])
    assert copies.returncode == 0, copies.stderr
    assert json.loads(copies.stdout)['job']['extra_vars'] == {'dbfleet_drill_from': 'vault'}
    cli = service.dbfleet('backups', 'drill', '--limit', 'primary', '--from', 'a vault', token=service.tokens['operator'])
    assert cli.returncode == 2 and cli.stderr.count('\n') == 1 and 'from' in cli.stderr
    for hostile in ({'name': 'x', 'start': '02:00', 'end': '02:00'}, {'name': 'x', 'start': '2am', 'end': '05:00'},
                    {'name': 'x', 'start': '02:00', 'end': '05:00', 'timezone': 'Mars/Olympus'},
                    {'name': 'nightly-drill', 'start': '03:00', 'end': '05:00'}):
        refused = ok(service, 'operator', 'POST', '/api/v1/backups/drills/schedule', (400, 409, 422), json=hostile)
        assert refused['detail'], hostile
    with service.client('viewer') as client:
        assert client.post('/api/v1/backups/drills/schedule',
                           json={'name': 'y', 'start': '02:00', 'end': '05:00'}).status_code == 403
    cli = service.dbfleet('backups', 'drill', '--schedule', 'other', '--window', '02:00-05:00', '--tags', 'large',
                          token=service.tokens['operator'])
    assert cli.returncode == 2 and cli.stderr.count('\n') == 1 and '--limit' in cli.stderr
    cli = service.dbfleet('backups', 'drill', '--window', '25:00-05:00', token=service.tokens['operator'])
    assert cli.returncode == 2 and 'HH:MM-HH:MM' in cli.stderr


def test_a_restore_from_a_repository_on_a_template_seeded_before_it_learns_its_variables(service, history):
    """The `restore` template of a store seeded before restores from a repository lacks their survey
    variables: the first such restore adds them. The repository must be one of the inventory's
    (dbfleet_backup_repositories): here it is not, and the job fails saying which there are."""
    # An admin's edit seeds the template if no restore did yet; this one leaves it as it was seeded before.
    older = [variable for variable in TEMPLATE_DEFINITION['survey'] if variable['name'] not in FROM_NAMES]
    edited = ok(service, 'admin', 'PATCH', '/api/v1/templates/restore', json={'survey': older})['survey']
    assert FROM_NAMES.isdisjoint(variable['name'] for variable in edited)
    with open_store(service.store_url) as store:
        store.copies.record('primary', 'vault', 'backup1:/srv/dbfleet/x', 'ok', backup_id=history['backup']['id'],
                            sha256=history['backup']['checksum'], verified_at=dt.datetime.now(dt.timezone.utc))
    answer = ok(service, 'operator', 'POST', '/api/v1/backups/restore', 201,
                json={'host': 'primary', 'to': history['target'].strftime('%Y-%m-%d %H:%M:%S'), 'from': 'vault'})
    assert answer['job']['extra_vars']['dbfleet_restore_from'] == 'vault'
    assert answer['job']['extra_vars']['dbfleet_restore_sha256'] == history['backup']['checksum']
    assert FROM_NAMES <= {variable['name'] for variable in ok(service, 'viewer', 'GET',
                                                              '/api/v1/templates/restore')['survey']}
    job = service.wait(answer['job']['id'], timeout=600)
    fetched = module_result(service, job['id'], 'dbfleet.mysql.backup_fetch')
    assert job['status'] == 'failed' and "no repository named 'vault'" in fetched['msg']
    [entry] = ok(service, 'admin', 'GET', '/api/v1/audit', params={'action': 'backup.restore', 'limit': 1})['entries']
    assert entry['detail']['from'] == 'vault'
