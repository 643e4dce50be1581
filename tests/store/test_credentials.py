"""store.credentials on SQLite and MariaDB: names are unique, what goes in comes out, delete."""

from __future__ import annotations

import pytest

from dbfleet.store import UnknownCredential


def test_create_get_list_delete(store):
    made = store.credentials.create('deploy', 'ssh', {'username': 'root'}, 'SHA256:abc', 'sealed-text',
                                    created_by='admin')
    assert {key: made[key] for key in ('name', 'kind', 'public', 'fingerprint', 'sealed', 'created_by')} == {
        'name': 'deploy', 'kind': 'ssh', 'public': {'username': 'root'}, 'fingerprint': 'SHA256:abc',
        'sealed': 'sealed-text', 'created_by': 'admin'}
    store.credentials.create('vault', 'vault', {}, 'HMAC-SHA256:0', 'sealed')
    assert [item['name'] for item in store.credentials.list()] == ['deploy', 'vault']
    assert store.credentials.get('deploy')['created_at'].tzinfo is not None
    with pytest.raises(ValueError, match='already exists'):
        store.credentials.create('deploy', 'vault', {}, 'x', 'y')
    assert store.credentials.delete('deploy')['name'] == 'deploy'
    with pytest.raises(UnknownCredential):
        store.credentials.get('deploy')
    with pytest.raises(UnknownCredential):
        store.credentials.delete('deploy')


@pytest.mark.parametrize('kind,public,fingerprint,sealed', [
    ('token', {}, 'f', 's'), ('ssh', [], 'f', 's'), ('ssh', {}, '', 's'), ('ssh', {}, 'f', '')])
def test_bad_input_is_refused(store, kind, public, fingerprint, sealed):
    with pytest.raises(ValueError):
        store.credentials.create('x', kind, public, fingerprint, sealed)


def test_jobs_record_their_credentials(store):
    job, _ = store.jobs.create({'playbook': 'p.yml', 'inventory': 'i.yml', 'credentials': ['deploy', 'vault']})
    assert store.jobs.get(job['id'])['credentials'] == ['deploy', 'vault']
    with pytest.raises(ValueError, match='credentials'):
        store.jobs.create({'playbook': 'p.yml', 'inventory': 'i.yml', 'credentials': 'deploy'})
