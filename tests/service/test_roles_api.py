"""What each role may do, through the real API (HTTP, Redis, RQ workers, ansible-runner): viewer,
operator, admin, agent (one bridged host), expired and revoked tokens; the audit log admins read;
live event streams that end when their token is revoked or expires."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa

from dbfleet.store import open_store
from dbfleet.store.engine import create_store_engine
from runner_service import tokens
from devtools.service_harness import INVENTORY, PLAYBOOKS

pytestmark = pytest.mark.service

HELLO = {'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY, 'limit': 'node1'}
CRONTAB = '# the DBA team\n15 3 * * * /usr/local/bin/backup.sh --all\n'


def bearer(token: str) -> dict:
    return {'Authorization': 'Bearer %s' % token}


def admin_call(service, method: str, path: str, **kwargs) -> httpx.Response:
    with service.client('admin') as admin:
        return admin.request(method, path, **kwargs)


def new_token(service, role: str, **body) -> tuple[str, str]:
    """(name, token) of a new token made by an admin."""
    name = '%s-%s' % (role, uuid.uuid4().hex[:8])
    made = admin_call(service, 'POST', '/api/v1/tokens', json={'name': name, 'role': role, **body})
    assert made.status_code == 201, made.text
    return name, made.json()['token']


def imported_entry(service, host: str) -> dict:
    """A crontab entry of `host`, imported by an admin."""
    made = admin_call(service, 'POST', '/api/v1/cron/import', json={
        'host': host, 'file': {'kind': 'user', 'name': 'root', 'system': False}, 'text': CRONTAB})
    assert made.status_code == 201, made.text
    return made.json()['entries'][0]['entry']


def report(entry: dict, host: str) -> dict:
    return {'id': uuid.uuid4().hex, 'schedule_id': entry['schedule_id'], 'host': host, 'phase': 'start',
            'started_at': dt.datetime.now(dt.timezone.utc).isoformat()}


@pytest.fixture(scope='module')
def people(service):
    """A token of each kind: the harness's viewer, operator and admin; an agent of host db-a; a
    viewer past its expiry (written to the store: the API refuses a past expiry); a revoked one."""
    made = {role: service.tokens[role] for role in ('viewer', 'operator', 'admin')}
    made['agent'] = new_token(service, 'agent', host='db-a')[1]
    made['expired'] = tokens.new_token()
    with open_store(service.store_url) as store:
        store.tokens.create('expired-viewer', 'viewer', tokens.hash_token(made['expired']),
                            expires_at=dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc))
    name, made['revoked'] = new_token(service, 'viewer')
    assert admin_call(service, 'DELETE', '/api/v1/tokens/%s' % name).status_code == 200
    return made


ANSWERS = {  # (method, path, body): status for viewer, operator, admin, agent, expired, revoked
    ('GET', '/api/v1/jobs', None): (200, 200, 200, 403, 401, 401),
    ('POST', '/api/v1/jobs', 'hello'): (403, 403, 201, 403, 401, 401),
    ('GET', '/api/v1/schedules', None): (200, 200, 200, 403, 401, 401),
    ('GET', '/api/v1/windows', None): (200, 200, 200, 403, 401, 401),
    ('GET', '/api/v1/pools', None): (200, 200, 200, 403, 401, 401),
    ('GET', '/api/v1/cron/runs', None): (200, 200, 200, 403, 401, 401),
    ('GET', '/api/v1/tokens', None): (403, 403, 200, 403, 401, 401),
    ('GET', '/api/v1/audit', None): (403, 403, 200, 403, 401, 401),
}
KINDS = ('viewer', 'operator', 'admin', 'agent', 'expired', 'revoked')


@pytest.mark.parametrize('call', list(ANSWERS), ids=lambda call: '%s %s' % call[:2])
def test_each_role_gets_what_it_may(service, people, call):
    method, path, body = call
    got = {}
    for kind in KINDS:
        answer = httpx.request(method, service.url + path, headers=bearer(people[kind]), timeout=30,
                               json=HELLO if body == 'hello' else None)
        got[kind] = answer.status_code
        if answer.status_code == 401:
            assert answer.json()['detail'] == ('the bearer token expired-viewer expired at 2001-01-01T00:00:00+00:00: '
                                               'ask an admin for a new one' if kind == 'expired'
                                               else 'the bearer token is unknown or revoked')
        if kind == 'agent' and answer.status_code == 403:
            assert 'agent token of host db-a' in answer.json()['detail']
    assert tuple(got[kind] for kind in KINDS) == ANSWERS[call]


def test_tokens_carry_a_host_and_an_expiry_and_bad_ones_are_refused(service):
    with service.client('admin') as admin:
        made = admin.post('/api/v1/tokens', json={'name': 'q-%s' % uuid.uuid4().hex[:6], 'role': 'viewer',
                                                  'expires_in': '90d'})
        assert made.status_code == 201, made.text
        expires = dt.datetime.fromisoformat(made.json()['expires_at'])
        assert dt.timedelta(days=89) < expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(days=90)
        listed = {token['name']: token for token in admin.get('/api/v1/tokens').json()}
        assert listed[made.json()['name']]['expires_at'] == made.json()['expires_at']
        assert listed[made.json()['name']]['expired'] is False and 'token' not in listed[made.json()['name']]
        for body, status, reason in (
                ({'role': 'agent'}, 422, 'an agent token needs host'),
                ({'role': 'operator', 'host': 'db-a'}, 422, 'only an agent token names a host'),
                ({'role': 'viewer', 'expires_at': '2001-01-01T00:00:00Z'}, 400, 'already past'),
                ({'role': 'viewer', 'expires_at': '2031-01-01T00:00:00'}, 422, 'timezone'),
                ({'role': 'viewer', 'expires_in': 'soon'}, 422, 'pattern'),
                ({'role': 'viewer', 'expires_in': '999999999w'}, 400, 'too far'),
                ({'role': 'viewer', 'expires_in': '1d', 'expires_at': '2031-01-01T00:00:00Z'}, 422, 'not both'),
                ({'role': 'root'}, 422, 'role')):
            refused = admin.post('/api/v1/tokens', json={'name': 'bad-%s' % uuid.uuid4().hex[:6], **body})
            assert refused.status_code == status and reason in refused.text, (body, refused.text)


def test_an_agent_reports_and_reads_only_its_own_host(service, people):
    mine, other = imported_entry(service, 'db-a'), imported_entry(service, 'db-b')
    agent = httpx.Client(base_url=service.url, headers=bearer(people['agent']), timeout=30)
    with agent:
        assert [entry['schedule_id'] for entry in agent.get('/api/v1/cron/entries', params={'host': 'db-a'}).json()] \
            == [mine['schedule_id']]
        assert agent.get('/api/v1/cron/entries/%s' % mine['schedule_id']).json()['host'] == 'db-a'
        assert agent.post('/api/v1/cron/runs', json=report(mine, 'db-a')).json()['action'] == 'run'
        for refused in (agent.get('/api/v1/cron/entries', params={'host': 'db-b'}),
                        agent.get('/api/v1/cron/entries'),
                        agent.get('/api/v1/cron/entries/%s' % other['schedule_id']),
                        agent.post('/api/v1/cron/runs', json=report(other, 'db-b')),
                        agent.post('/api/v1/cron/runs', json=report(other, 'db-a')),
                        agent.post('/api/v1/cron/runs', json=report(mine, 'db-b')),
                        agent.get('/api/v1/cron/entries/%s/history' % mine['schedule_id']),
                        agent.post('/api/v1/cron/entries/%s/mode' % mine['schedule_id'], json={'mode': 'takeover'}),
                        agent.get('/api/v1/jobs/%s' % ('f' * 32))):
            assert refused.status_code == 403, refused.text
    with service.client('operator') as operator:
        refused = operator.post('/api/v1/cron/runs', json=report(mine, 'db-a'))
        assert refused.status_code == 403 and 'needs admin' in refused.json()['detail']
    assert admin_call(service, 'POST', '/api/v1/cron/runs', json=report(other, 'db-b')).status_code == 200
    runs = admin_call(service, 'GET', '/api/v1/cron/runs', params={'host': 'db-a'}).json()
    assert [run['schedule_id'] for run in runs] == [mine['schedule_id']]


def test_an_operator_changes_timing_and_mode_but_not_what_runs(service):
    entry = imported_entry(service, 'db-op')
    ref = '/api/v1/schedules/%s' % entry['schedule_id']
    command = admin_call(service, 'GET', ref).json()['job']
    with service.client('operator') as operator:
        assert operator.post('/api/v1/cron/entries/%s/mode' % entry['schedule_id'],
                             json={'mode': 'takeover'}).json()['mode'] == 'takeover'
        timing = operator.patch(ref, json={'expression': '45 4 * * *', 'jitter_seconds': 5, 'catch_up': 'once'})
        assert timing.status_code == 200 and timing.json()['expression'] == '45 4 * * *', timing.text
        assert operator.post(ref + '/pause').status_code == 200
        assert operator.post(ref + '/resume').status_code == 200
        changed = dict(command, extra_vars={'dbfleet_command': dict(command['extra_vars']['dbfleet_command'],
                                                                    command='rm -rf /srv')})
        for body in ({'job': changed}, {'name': 'renamed'}, {'deadline_after': 60}, {'after': []},
                     {'expression': '0 5 * * *', 'job': changed}):
            refused = operator.patch(ref, json=body)
            assert refused.status_code == 403 and 'needs admin' in refused.json()['detail'], refused.text
        assert operator.post('/api/v1/cron/entries/%s/mode' % entry['schedule_id'],
                             json={'mode': 'reverted'}).json()['mode'] == 'reverted'
        assert operator.post('/api/v1/schedules', json={
            'name': 'x', 'kind': 'cron', 'expression': '* * * * *', 'job': HELLO}).status_code == 403
        assert operator.delete(ref).status_code == 403
    assert admin_call(service, 'GET', ref).json()['job']['extra_vars'] == command['extra_vars']
    observed = admin_call(service, 'POST', '/api/v1/cron/entries/%s/mode' % entry['schedule_id'],
                          json={'mode': 'observe'})
    assert observed.status_code == 200, observed.text
    edited = admin_call(service, 'PATCH', ref, json={'job': dict(command, extra_vars={
        'dbfleet_command': dict(command['extra_vars']['dbfleet_command'], command='/usr/local/bin/backup.sh')})})
    assert edited.status_code == 200, edited.text
    assert edited.json()['source']['command'] == '/usr/local/bin/backup.sh'


def test_relaunching_a_bare_playbook_needs_an_admin_and_operators_cancel(service):
    job = service.launch('hello.yml', limit='node1')
    service.wait(job['id'])
    with service.client('operator') as operator:
        refused = operator.post('/api/v1/jobs/%s/relaunch' % job['id'])
        assert refused.status_code == 403 and 'bare playbook' in refused.json()['detail']
    again = admin_call(service, 'POST', '/api/v1/jobs/%s/relaunch' % job['id'])
    assert again.status_code == 201 and again.json()['relaunch_of'] == job['id']
    waiting = service.launch('hello.yml', limit='node1', depends_on=[{'job_id': again.json()['id']}])
    with service.client('operator') as operator:
        canceled = operator.post('/api/v1/jobs/%s/cancel' % waiting['id'])
    assert canceled.status_code in (202, 409), canceled.text  # 409: it had already run


def test_every_change_is_in_the_audit_log_and_admins_read_it(service):
    pool = 'audit-pool-%s' % uuid.uuid4().hex[:6]
    name = 'audit-%s' % uuid.uuid4().hex[:6]
    secret = 'S3cret-audit-%s' % uuid.uuid4().hex[:6]
    with service.client('admin') as admin:
        token = admin.post('/api/v1/tokens', json={'name': name, 'role': 'viewer', 'expires_in': '1d'}).json()
        assert admin.delete('/api/v1/tokens/%s' % name).status_code == 200
        assert admin.put('/api/v1/pools/%s' % pool, json={'slots': 2}).status_code == 200
        assert admin.delete('/api/v1/pools/%s' % pool).status_code == 200
        schedule = admin.post('/api/v1/schedules', json={'name': name, 'kind': 'cron', 'expression': '0 3 * * *',
                                                         'job': dict(HELLO, extra_vars={'db_password': secret})})
        assert schedule.status_code == 201, schedule.text
        window = admin.post('/api/v1/windows', json={'name': name, 'kind': 'absolute', 'duration_seconds': 60,
                                                     'start': '2040-01-01T00:00:00'})
        assert window.status_code == 201, window.text
        assert admin.delete('/api/v1/windows/%s' % name).status_code == 200
        job = admin.post('/api/v1/jobs', json=dict(HELLO, extra_vars={'db_password': secret})).json()
    with service.client('operator') as operator:
        assert operator.patch('/api/v1/schedules/%s' % name, json={'expression': '0 4 * * *'}).status_code == 200
        assert operator.post('/api/v1/schedules/%s/pause' % name).status_code == 200
        operator.post('/api/v1/jobs/%s/cancel' % job['id'])
    assert admin_call(service, 'DELETE', '/api/v1/schedules/%s' % name).status_code == 200
    service.wait(job['id'])

    page = admin_call(service, 'GET', '/api/v1/audit', params={'limit': 1000}).json()
    seen = [(entry['actor'], entry['action'], entry['target']) for entry in page['entries']]
    for expected in (('admin', 'token.create', name), ('admin', 'token.revoke', name), ('admin', 'pool.set', pool),
                     ('admin', 'pool.delete', pool), ('admin', 'schedule.create', name),
                     ('admin', 'window.create', name), ('admin', 'window.delete', name),
                     ('admin', 'launch', job['id']), ('operator', 'schedule.update', name),
                     ('operator', 'schedule.pause', name), ('admin', 'schedule.delete', name)):
        assert expected in seen
    text = json.dumps(page)
    assert secret not in text and token['token'] not in text and tokens.hash_token(token['token']) not in text
    ids = [entry['id'] for entry in page['entries']]
    assert ids == sorted(ids, reverse=True), 'newest first'

    mine = admin_call(service, 'GET', '/api/v1/audit', params={'target': name}).json()['entries']
    assert [entry['action'] for entry in mine] == ['schedule.delete', 'schedule.pause', 'schedule.update',
                                                   'window.delete', 'window.create', 'schedule.create',
                                                   'token.revoke', 'token.create']
    assert {entry['action'] for entry in admin_call(service, 'GET', '/api/v1/audit', params={
        'target': name, 'actor': 'operator'}).json()['entries']} == {'schedule.update', 'schedule.pause'}
    assert [entry['action'] for entry in admin_call(service, 'GET', '/api/v1/audit', params={
        'target': name, 'action': 'token.'}).json()['entries']] == ['token.revoke', 'token.create']
    first = admin_call(service, 'GET', '/api/v1/audit', params={'target': name, 'limit': 3}).json()
    rest = admin_call(service, 'GET', '/api/v1/audit', params={'target': name, 'limit': 10,
                                                               'cursor': first['next_cursor']}).json()
    assert [entry['id'] for entry in first['entries'] + rest['entries']] == [entry['id'] for entry in mine]
    assert rest['next_cursor'] is None
    created_at = mine[-1]['at']
    assert admin_call(service, 'GET', '/api/v1/audit', params={'target': name, 'until': created_at}).json()[
        'entries'] == []
    assert admin_call(service, 'GET', '/api/v1/audit', params={'target': name, 'since': created_at}).json()[
        'entries'] == mine
    for bad in ({'cursor': 0}, {'limit': 0}, {'since': 'yesterday'}, {'since': '0001-01-01T00:00:00+14:00'}):
        answer = admin_call(service, 'GET', '/api/v1/audit', params=bad)
        assert 400 <= answer.status_code < 500, (bad, answer.text)

    listed = service.dbfleet('audit', '--target', name, '--json', token=service.tokens['admin'], check=True)
    assert [entry['id'] for entry in json.loads(listed.stdout)['entries']] == [entry['id'] for entry in mine]
    shown = service.dbfleet('audit', '--target', name, '--action', 'token.', token=service.tokens['admin'],
                            check=True).stdout
    assert 'token.revoke' in shown and 'token.create' in shown and 'schedule' not in shown
    refused = service.dbfleet('audit', token=service.tokens['operator'])
    assert refused.returncode == 2 and 'needs admin' in refused.stderr and len(refused.stderr.splitlines()) == 1


def follow_until_it_ends(service, job_id: str, token: str, when_live) -> tuple[str, dict, float]:
    """Open the job's live event stream with `token`; once an event came, call when_live(); read
    to the stream's last event: (its name, its data, seconds from when_live to the end)."""
    headers = {'Accept': 'text/event-stream', **bearer(token)}
    kind, started, last = None, None, (None, None)
    with httpx.stream('GET', service.url + '/api/v1/jobs/%s/events' % job_id, headers=headers,
                      timeout=httpx.Timeout(30, read=60)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith('event: '):
                kind = line[7:]
            elif line.startswith('data: '):
                last = (kind, json.loads(line[6:]))
                if started is None:
                    when_live()
                    started = time.monotonic()
    return last[0], last[1], time.monotonic() - started


@pytest.mark.parametrize('how', ['revoked', 'expired'])
def test_a_revoked_or_expired_token_ends_its_open_event_stream(service, how):
    job = service.launch('sleep.yml', limit='node1', extra_vars={'sleep_seconds': 300})
    name, token = new_token(service, 'viewer', expires_in='1h')
    service.wait(job['id'], statuses=('running',))

    def take_it_away():
        if how == 'revoked':
            assert admin_call(service, 'DELETE', '/api/v1/tokens/%s' % name).status_code == 200
        else:  # its expiry comes (the clock of the service is the machine's: move the expiry instead)
            engine = create_store_engine(service.store_url)
            try:
                with engine.begin() as connection:
                    connection.execute(sa.text('UPDATE api_tokens SET expires_at = :at WHERE name = :name'),
                                       {'at': dt.datetime(2001, 1, 1), 'name': name})
            finally:
                engine.dispose()

    try:
        kind, data, took = follow_until_it_ends(service, job['id'], token, take_it_away)
        assert service.job(job['id'])['status'] == 'running', 'the token ended the stream, not the job'
    finally:
        admin_call(service, 'POST', '/api/v1/jobs/%s/cancel' % job['id'])
    assert kind == 'unauthorized' and data['reason'] == how, (kind, data)
    assert token not in json.dumps(data)
    assert took < 30, 'ended %.1f s after the token went (the stream re-checks every 2 s)' % took
    again = httpx.get(service.url + '/api/v1/jobs/%s/events' % job['id'], headers=bearer(token), timeout=60)
    assert again.status_code == 401 and ('expired' if how == 'expired' else 'revoked') in again.json()['detail']
    service.wait(job['id'])
