"""The jobs API end to end: real HTTP, real Redis, real RQ workers, real ansible-runner plays."""

from __future__ import annotations

import datetime as dt
import json
import time

import httpx
import pytest

from dbfleet.store import open_store
from devtools.service_harness import INVENTORY, PLAYBOOKS, REPO, job_processes, live_event_names

pytestmark = pytest.mark.service


def test_launch_answers_at_once_and_the_job_succeeds_with_per_host_results(service):
    job = service.launch('hello.yml')
    assert job['status'] == 'queued' and job['attempt'] == 0
    assert job['links']['events'] == '/api/v1/jobs/%s/events' % job['id']
    done = service.wait(job['id'])
    assert done['status'] == 'successful', done['status_reason']
    assert done['return_code'] == 0 and done['attempt'] == 1
    assert set(done['hosts']) == {'node1', 'node2', 'node3'}
    assert all(counts['ok'] == 1 and counts['failed'] == 0 for counts in done['hosts'].values())
    assert done['timings']['run_seconds'] > 0 and done['started_at'] and done['finished_at']
    events = service.events(job['id'])
    assert events[0]['event'] == 'playbook_on_start' and events[-1]['event'] == 'playbook_on_stats'
    assert [event['seq'] for event in events] == sorted(event['seq'] for event in events)
    oks = service.events(job['id'], event='runner_on_ok')
    assert sorted(event['host'] for event in oks) == ['node1', 'node2', 'node3']
    assert [event['host'] for event in service.events(job['id'], host='node2')] == ['node2'] * 2


def test_a_failing_host_fails_alone_and_relaunch_reruns_only_it(service):
    job = service.launch('fail_on.yml', extra_vars={'fail_hosts': ['node2']})
    done = service.wait(job['id'])
    assert done['status'] == 'failed'
    assert 'node2' in done['status_reason'] and 'node1' not in done['status_reason']
    assert done['hosts']['node2']['failed'] == 1
    assert done['hosts']['node1'] == done['hosts']['node3'] == dict(done['hosts']['node1'], ok=1, skipped=1, failed=0)
    failed = service.events(job['id'], event='runner_on_failed')
    assert [event['host'] for event in failed] == ['node2'] and failed[0]['failed'] is True
    with service.client() as client:
        response = client.post('/api/v1/jobs/%s/relaunch' % job['id'], json={'hosts': 'failed'})
    assert response.status_code == 201, response.text
    again = response.json()
    assert again['relaunch_of'] == job['id'] and again['limit'] == 'node2'
    assert set(service.wait(again['id'])['hosts']) == {'node2'}


def test_a_real_playbook_against_the_local_fleet(service, fleet):
    with service.client() as client:
        response = client.post('/api/v1/jobs', json={'playbook': 'playbooks/collect_facts.yml',
                                                     'inventory': 'inventories/local_fleet.yml'})
    assert response.status_code == 201, response.text
    done = service.wait(response.json()['id'], timeout=300)
    assert done['status'] == 'successful', done['status_reason']
    assert set(done['hosts']) == {'primary', 'replica', 'analytics'}
    assert all(counts['failed'] == counts['unreachable'] == 0 for counts in done['hosts'].values())


def test_stdout_as_text_and_json(service):
    job = service.wait(service.launch('hello.yml', limit='node1')['id'])
    with service.client('viewer') as client:
        text = client.get('/api/v1/jobs/%s/stdout' % job['id'])
        as_json = client.get('/api/v1/jobs/%s/stdout' % job['id'], params={'format': 'json'}).json()
    assert text.headers['content-type'].startswith('text/plain')
    assert 'hello from node1' in text.text and 'PLAY RECAP' in text.text
    assert as_json['stdout'] == text.text and as_json['complete'] is True and as_json['status'] == 'successful'


def test_events_page_with_a_cursor(service):
    job = service.wait(service.launch('hello.yml')['id'])
    everything = service.events(job['id'])
    with service.client('viewer') as client:
        first = client.get('/api/v1/jobs/%s/events' % job['id'], params={'limit': 3}).json()
        rest = client.get('/api/v1/jobs/%s/events' % job['id'],
                          params={'limit': 1000, 'after': first['next_cursor']}).json()
    assert len(first['events']) == 3 and first['next_cursor'] == first['events'][-1]['seq']
    assert first['events'] + rest['events'] == everything and rest['next_cursor'] is None


def test_live_events_stream_with_server_sent_events(service):
    job = service.launch('sleep.yml', limit='node1', extra_vars={'sleep_seconds': 2})
    headers = {'Accept': 'text/event-stream', **service.client('viewer').headers}
    with httpx.stream('GET', service.url + '/api/v1/jobs/%s/events' % job['id'], headers=headers,
                      timeout=60) as response:
        assert response.headers['content-type'].startswith('text/event-stream')
        names, ended = live_event_names(response)
    assert ended == {'status': 'successful', 'status_reason': None}
    assert names[0] == 'playbook_on_start' and names[-1] == 'playbook_on_stats'
    assert names == [event['event'] for event in service.events(job['id'])]


def test_cancel_a_running_play_leaves_no_process(service):
    job = service.launch('sleep.yml')
    service.wait(job['id'], statuses={'running'})
    deadline = time.monotonic() + 30
    while not any(event['event'] == 'runner_on_start' for event in service.events(job['id'])):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert job_processes(job['id']), 'the play runs'
    with service.client() as client:
        response = client.post('/api/v1/jobs/%s/cancel' % job['id'])
    assert response.status_code == 202 and response.json()['cancel_requested'] is True
    # Typically about a second (see README); generous here, since tests never time the machine.
    done = service.wait(job['id'], timeout=30)
    assert done['status'] == 'canceled'
    assert job_processes(job['id']) == []
    with service.client() as client:
        again = client.post('/api/v1/jobs/%s/cancel' % job['id'])
    assert again.status_code == 409 and 'already ended (canceled)' in again.json()['detail']


def test_cancel_a_waiting_job_removes_it(service):
    first = service.launch('sleep.yml', limit='node1', extra_vars={'sleep_seconds': 5})
    second = service.launch('hello.yml', depends_on=[{'job_id': first['id'], 'on': 'success'}])
    assert second['status'] == 'waiting'
    with service.client() as client:
        response = client.post('/api/v1/jobs/%s/cancel' % second['id'])
    assert response.status_code == 202 and response.json()['status'] == 'canceled'
    assert service.wait(first['id'])['status'] == 'successful'
    assert service.job(second['id'])['status'] == 'canceled'


def test_deadlines_kill_the_run_and_mark_it_timed_out(service):
    job = service.launch('sleep.yml', limit='node1', timeout=3)
    done = service.wait(job['id'])
    assert done['status'] == 'timed_out' and 'deadline' in done['status_reason']
    started = dt.datetime.fromisoformat(done['started_at'])
    assert dt.datetime.fromisoformat(done['finished_at']) >= started + dt.timedelta(seconds=3)
    assert job_processes(job['id']) == []
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3)
    absolute = service.wait(service.launch('sleep.yml', limit='node2', deadline=at.isoformat())['id'])
    assert absolute['status'] == 'timed_out'
    assert dt.datetime.fromisoformat(absolute['finished_at']) >= at


@pytest.mark.parametrize('first_fails', [False, True])
def test_dependencies_in_all_three_modes(service, first_fails):
    first = service.launch('fail_on.yml', limit='node1',
                           extra_vars={'fail_hosts': ['node1'] if first_fails else []})
    after = {on: service.launch('hello.yml', limit='node1', depends_on=[{'job_id': first['id'], 'on': on}])
             for on in ('success', 'failure', 'always')}
    assert all(job['status'] == 'waiting' for job in after.values())
    assert service.wait(first['id'])['status'] == ('failed' if first_fails else 'successful')
    ended = {on: service.wait(job['id'])['status'] for on, job in after.items()}
    if first_fails:
        assert ended == {'success': 'dependency_failed', 'failure': 'successful', 'always': 'successful'}
        reason = service.job(after['success']['id'])['status_reason']
        assert first['id'] in reason and 'failed' in reason
    else:
        assert ended == {'success': 'successful', 'failure': 'dependency_failed', 'always': 'successful'}


def test_idempotency_key_gives_back_the_same_job(service):
    with service.client() as client:
        body = {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY, 'limit': 'node3'}
        first = client.post('/api/v1/jobs', json=body, headers={'Idempotency-Key': 'ticket-4711'})
        again = client.post('/api/v1/jobs', json=body, headers={'Idempotency-Key': 'ticket-4711'})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()['id'] == again.json()['id']


def test_list_filters_and_pages(service):
    job = service.wait(service.launch('fail_on.yml', limit='node3')['id'])
    with service.client('viewer') as client:
        by_playbook = client.get('/api/v1/jobs', params={'playbook': PLAYBOOKS + '/fail_on.yml',
                                                         'status': ['successful']}).json()
        page = client.get('/api/v1/jobs', params={'limit': 2}).json()
        following = client.get('/api/v1/jobs', params={'limit': 2, 'cursor': page['next_cursor']}).json()
        since = client.get('/api/v1/jobs', params={'created_after': job['created_at']}).json()
        by_who = client.get('/api/v1/jobs', params={'created_by': job['created_by']}).json()
        by_nobody = client.get('/api/v1/jobs', params={'created_by': 'nobody', 'playbook': job['playbook']}).json()
        by_template = client.get('/api/v1/jobs', params={'template': 'no-such-template'}).json()
        too_long = client.get('/api/v1/jobs', params={'template': 't' * 256})
    assert job['id'] in [item['id'] for item in by_playbook['jobs']]
    assert all(item['status'] == 'successful' for item in by_playbook['jobs'])
    assert len(page['jobs']) == 2 and page['next_cursor']
    assert not {item['id'] for item in page['jobs']} & {item['id'] for item in following['jobs']}
    assert since['jobs'][-1]['id'] == job['id']
    assert job['created_by'] and job['id'] in [item['id'] for item in by_who['jobs']]
    assert all(item['created_by'] == job['created_by'] for item in by_who['jobs'])
    assert by_nobody['jobs'] == [] and by_template['jobs'] == []
    assert too_long.status_code == 422


def test_a_tag_expression_inventory_and_the_tag_filter(service):
    with open_store(service.store_url) as store:
        for host in ('node1', 'node2', 'node3'):
            store.facts.record(host, {})
        store.tags.add('node1', 'team:blue', who='test')
        store.tags.add('node3', 'team:blue', who='test')
    job = service.launch('hello.yml', inventory=None, tags='team:blue')
    assert job['tags'] == 'team:blue' and job['inventory'] is None
    done = service.wait(job['id'])
    assert done['status'] == 'successful', done['status_reason']
    assert set(done['hosts']) == {'node1', 'node3'}
    with service.client('viewer') as client:
        listed = client.get('/api/v1/jobs', params={'tag': 'team:blue'}).json()['jobs']
    assert [item['id'] for item in listed] == [job['id']]
    with service.client() as client:
        bad = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml', 'tags': 'team:blue and ('})
        none = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml', 'tags': 'team:nobody'})
    assert bad.status_code == 400 and bad.json()['detail'].startswith('tags:')
    assert none.status_code == 400 and 'matches no host' in none.json()['detail']


@pytest.mark.parametrize('playbook, reason', [
    ('../../etc/passwd', "'..' is refused"),
    ('/etc/passwd', 'absolute paths are refused'),
    ('playbooks/../../../etc/hosts.yml', "'..' is refused"),
    ('playbooks/nonexistent.yml', 'no such file'),
    ('README.md', 'not a .yml or .yaml file'),
])
def test_playbooks_outside_the_project_are_refused(service, playbook, reason):
    with service.client() as client:
        response = client.post('/api/v1/jobs', json={'playbook': playbook, 'inventory': INVENTORY})
    assert response.status_code == 400 and reason in response.json()['detail']


def test_a_link_out_of_the_project_is_refused(service):
    link = REPO / PLAYBOOKS / '.link-out.yml'
    link.symlink_to('/etc/hostname')
    try:
        with service.client() as client:
            response = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/.link-out.yml',
                                                         'inventory': INVENTORY})
            inventory = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml',
                                                          'inventory': '../../etc'})
    finally:
        link.unlink()
    assert response.status_code == 400 and 'out of the project directory through a link' in response.json()['detail']
    assert inventory.status_code == 422 and inventory.json()['detail'].startswith('inventory')


def test_bad_bodies_are_refused_with_reasons(service):
    with service.client() as client:
        huge = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY,
                                                 'extra_vars': {'blob': 'x' * 70000}})
        both = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY,
                                                 'tags': 'x'})
        not_object = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml',
                                                       'inventory': INVENTORY, 'extra_vars': [1, 2]})
        past = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY,
                                                 'deadline': '2020-01-01T00:00:00Z'})
        unknown_dependency = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml',
                                                               'inventory': INVENTORY,
                                                               'depends_on': [{'job_id': 'f' * 32}]})
        missing = client.get('/api/v1/jobs/%s' % ('0' * 32))
    assert huge.status_code == 413 and 'extra_vars is' in huge.json()['detail']
    assert both.status_code == 422 and 'exactly one' in both.json()['detail']
    assert not_object.status_code == 422 and not_object.json()['errors'][0]['field'] == 'extra_vars'
    assert past.status_code == 400 and 'already past' in past.json()['detail']
    assert unknown_dependency.status_code == 400 and 'no job' in unknown_dependency.json()['detail']
    assert missing.status_code == 404 and 'no job' in missing.json()['detail']


def test_roles_are_enforced(service):
    body = {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY, 'limit': 'node1'}
    anonymous = httpx.post(service.url + '/api/v1/jobs', json=body, timeout=60)
    assert anonymous.status_code == 401 and 'no bearer token' in anonymous.json()['detail']
    assert anonymous.headers['www-authenticate'] == 'Bearer'
    wrong = httpx.get(service.url + '/api/v1/jobs', headers={'Authorization': 'Bearer dbf_nonsense'}, timeout=60)
    assert wrong.status_code == 401 and 'unknown or revoked' in wrong.json()['detail']
    with service.client('viewer') as viewer:
        assert viewer.get('/api/v1/jobs').status_code == 200
        refused = viewer.post('/api/v1/jobs', json=body)
        assert refused.status_code == 403 and 'has role viewer; a bare playbook' in refused.json()['detail']
    with service.client('operator') as operator:
        refused = operator.post('/api/v1/jobs', json=body)
        assert refused.status_code == 403 and 'has role operator; a bare playbook' in refused.json()['detail']
        assert 'needs admin' in refused.json()['detail']
        assert operator.get('/api/v1/tokens').status_code == 403
    with service.client('admin') as admin:
        launched = admin.post('/api/v1/jobs', json=body)
        assert launched.status_code == 201
        created = admin.post('/api/v1/tokens', json={'name': 'chatbot', 'role': 'operator'})
        assert created.status_code == 201
        token = created.json()['token']
        assert 'token' not in admin.get('/api/v1/tokens').json()[0]
        assert httpx.get(service.url + '/api/v1/jobs', headers={'Authorization': 'Bearer ' + token}, timeout=60).status_code == 200
        assert admin.delete('/api/v1/tokens/chatbot').status_code == 200
        assert admin.delete('/api/v1/tokens/nobody').status_code == 404
    assert httpx.get(service.url + '/api/v1/jobs', headers={'Authorization': 'Bearer ' + token}, timeout=60).status_code == 401
    job_id = launched.json()['id']
    service.wait(job_id)
    with open_store(service.store_url) as store:
        entries = store.audit.list(limit=1000)
    assert {'actor': 'admin', 'action': 'launch', 'target': job_id} in [
        {key: entry[key] for key in ('actor', 'action', 'target')} for entry in entries]
    assert {'actor': 'admin', 'action': 'token.revoke', 'target': 'chatbot'} in [
        {key: entry[key] for key in ('actor', 'action', 'target')} for entry in entries]


def test_a_password_in_extra_vars_appears_nowhere(service):
    secret = 'Pw-4711-very-secret'
    job = service.launch('echo_vars.yml', limit='node1', extra_vars={'db_password': secret, 'region': 'eu'})
    assert job['extra_vars'] == {'db_password': '********', 'region': 'eu'}
    done = service.wait(job['id'])
    assert done['status'] == 'successful', done['status_reason']
    events = service.events(job['id'])
    assert 'password is ********' in ''.join(event['stdout'] for event in events)
    with service.client('viewer') as client:
        texts = [client.get('/api/v1/jobs/%s%s' % (job['id'], path)).text
                 for path in ('', '/events?limit=1000', '/stdout', '/stdout?format=json')]
    relaunched = service.wait(service.client().post('/api/v1/jobs/%s/relaunch' % job['id']).json()['id'])
    assert relaunched['status'] == 'successful', 'the secret is still there for a relaunch'
    assert not [text for text in texts if secret in text]
    leaks = [str(path) for path in service.directory.rglob('*')
             if path.is_file() and secret.encode() in path.read_bytes()]
    assert leaks == [], 'store, logs and run directories hold no secret'


def test_extra_vars_are_used_as_written_never_templated(service, tmp_path):
    marker = tmp_path / 'templated'
    value = "{{ 7 * 7 }} {{ lookup('ansible.builtin.pipe', 'touch %s') }}" % marker
    job = service.launch('echo_value.yml', limit='node1', extra_vars={'value': value})
    done = service.wait(job['id'])
    assert done['status'] == 'successful', done['status_reason']
    printed = [event['data'].get('res', {}).get('msg') for event in service.events(job['id'], event='runner_on_ok')]
    assert printed == ['value is %s' % value]
    assert not marker.exists(), 'a lookup in a value ran on the controller'
