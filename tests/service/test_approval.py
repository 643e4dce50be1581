"""The approval step: a template that requires approval makes jobs that wait awaiting_approval,
outside any queue, until a second admin approves (they run) or rejects them, or the timeout
passes; every role tried at the real API, the CLI too, and the audit log."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import sqlalchemy as sa

from dbfleet.store import open_store
from dbfleet.store.engine import create_store_engine
from devtools.service_harness import INVENTORY, PLAYBOOKS

pytestmark = pytest.mark.service
TEMPLATE = {'name': 'guarded-hello', 'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY,
            'limit': 'node1', 'approval': {'required': True, 'timeout': '4h'}}


def _token(service, name: str, role: str, **extra) -> str:
    with service.client('admin') as admin:
        made = admin.post('/api/v1/tokens', json={'name': name, 'role': role, **extra})
    assert made.status_code == 201, made.text
    return made.json()['token']


def _as(service, token: str) -> httpx.Client:
    return httpx.Client(base_url=service.url, headers={'Authorization': 'Bearer %s' % token}, timeout=60)


@pytest.fixture(scope='module')
def people(service):
    """The harness's viewer, operator and admin (who launches), a second admin, an agent."""
    with service.client('admin') as admin:
        assert admin.post('/api/v1/templates', json=TEMPLATE).status_code == 201
    return {'viewer': service.tokens['viewer'], 'operator': service.tokens['operator'],
            'admin': service.tokens['admin'], 'second': _token(service, 'second-admin', 'admin'),
            'agent': _token(service, 'agent-db1', 'agent', host='db1')}


def _launch(service, role='operator') -> dict:
    with service.client(role) as client:
        made = client.post('/api/v1/templates/guarded-hello/launch', json={})
    assert made.status_code == 201, made.text
    return made.json()


def test_a_job_waits_unqueued_until_a_second_admin_approves_it(service, people):
    job = _launch(service, 'admin')
    assert job['status'] == 'awaiting_approval' and job['enqueued_at'] is None
    assert job['approval']['timeout_seconds'] == 4 * 3600 and job['links']['approve'].endswith('/approve')
    expires = dt.datetime.fromisoformat(job['approval']['expires_at'])
    assert expires - dt.datetime.fromisoformat(job['created_at']) == dt.timedelta(hours=4)
    with service.client('viewer') as viewer:
        listed = viewer.get('/api/v1/jobs', params={'status': 'awaiting_approval'}).json()['jobs']
    assert job['id'] in [item['id'] for item in listed]
    # Nobody but a second admin: each role refused, the launcher with the reason.
    for role in ('viewer', 'operator', 'agent'):
        with _as(service, people[role]) as client:
            refused = client.post('/api/v1/jobs/%s/approve' % job['id'], json={})
            assert refused.status_code == 403, (role, refused.text)
            assert client.post('/api/v1/jobs/%s/reject' % job['id'], json={'reason': 'no'}).status_code == 403
    with _as(service, people['admin']) as launcher:
        own = launcher.post('/api/v1/jobs/%s/approve' % job['id'], json={})
    assert own.status_code == 403 and 'a second admin must approve it' in own.json()['detail']
    assert service.job(job['id'])['status'] == 'awaiting_approval'
    with _as(service, people['second']) as second:
        approved = second.post('/api/v1/jobs/%s/approve' % job['id'], json={'reason': 'change 4711'})
        assert approved.status_code == 200, approved.text
        again = second.post('/api/v1/jobs/%s/approve' % job['id'], json={})
    assert approved.json()['approval']['decided_by'] == 'second-admin'
    assert again.status_code == 409 and 'not awaiting approval' in again.json()['detail']
    done = service.wait(job['id'], timeout=300)
    assert done['status'] == 'successful' and set(done['hosts']) == {'node1'}
    with service.client('admin') as admin:
        entries = admin.get('/api/v1/audit', params={'action': 'job.', 'target': job['id']}).json()['entries']
    assert [(entry['actor'], entry['action']) for entry in entries] == [('second-admin', 'job.approve')]
    assert entries[0]['detail']['reason'] == 'change 4711' and entries[0]['detail']['launched_by'] == 'admin'


def test_a_rejected_job_never_runs_and_says_why(service, people):
    job = _launch(service)  # an operator launches; any admin may decide
    with _as(service, people['second']) as second:
        no_reason = second.post('/api/v1/jobs/%s/reject' % job['id'], json={})
        rejected = second.post('/api/v1/jobs/%s/reject' % job['id'], json={'reason': 'not during the sale'})
    assert no_reason.status_code == 422
    assert rejected.status_code == 200, rejected.text
    ended = service.job(job['id'])
    assert ended['status'] == 'rejected' and ended['started_at'] is None
    assert ended['status_reason'] == 'rejected by second-admin: not during the sale'


def test_the_cli_approves_and_rejects(service, people):
    first, second = _launch(service), _launch(service)
    own = service.dbfleet('jobs', 'approve', first['id'], token=people['operator'])
    assert own.returncode != 0 and 'admin' in own.stderr
    approved = service.dbfleet('jobs', 'approve', first['id'], token=people['second'])
    assert approved.returncode == 0, approved.stderr
    assert 'job %s approved: queued' % first['id'] in approved.stdout
    rejected = service.dbfleet('jobs', 'reject', second['id'], '--reason', 'wrong host', token=people['second'])
    assert rejected.returncode == 0 and 'rejected: rejected' in rejected.stdout
    listed = service.dbfleet('jobs', 'list', '--status', 'rejected', '--json', token=people['second'])
    assert second['id'] in listed.stdout
    assert service.wait(first['id'], timeout=300)['status'] == 'successful'


def test_an_approval_that_does_not_come_in_time_expires(service, people):
    """The API's reconciler ends it: its expiry is moved into the past in the store (the timeout is
    at least a minute), as if the time had passed."""
    job = _launch(service)
    with open_store(service.store_url) as store:
        assert store.jobs.expire_approvals(dt.datetime.fromisoformat(job['created_at'])) == []
    engine = create_store_engine(service.store_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE jobs SET approval_expires_at = '2026-01-01 00:00:00' WHERE id = :id"),
                           {'id': job['id']})
    engine.dispose()
    ended = service.wait(job['id'], statuses=('expired',), timeout=60)
    assert 'no admin approved it within 14400 s (by 2026-01-01T00:00:00Z)' in ended['status_reason']
    with _as(service, people['second']) as second:
        late = second.post('/api/v1/jobs/%s/approve' % job['id'], json={})
        entries = second.get('/api/v1/audit', params={'action': 'job.expire', 'target': job['id']}).json()['entries']
    assert late.status_code == 409 and 'expired' in late.json()['detail']
    assert [entry['actor'] for entry in entries] == ['dbfleet']
