"""The store account docs/deploy.md gives the service, SELECT, INSERT, UPDATE and DELETE on its
database, is enough to run on a store another account migrated; and with it a dbfleet cannot
migrate an older store by itself, but says so."""

from __future__ import annotations

import hashlib

import pytest

from dbfleet.store import StoreError, migrate, open_store
from tests.store.conftest import MARIADB, mariadb_admin

SERVICE_GRANTS = 'SELECT, INSERT, UPDATE, DELETE'


@pytest.fixture
def service_account(mariadb_database):
    """(URL of the fresh database as the service account, the database's name)."""
    database = mariadb_database.rsplit('/', 1)[1]
    user = 'svc_%s' % database[-12:]
    admin = mariadb_admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute("CREATE USER '%s'@'%s' IDENTIFIED BY 'service-pw'" % (user, MARIADB['host']))
            cursor.execute("GRANT %s ON `%s`.* TO '%s'@'%s'" % (SERVICE_GRANTS, database, user, MARIADB['host']))
        yield 'mysql+pymysql://%s:service-pw@%s:%s/%s' % (user, MARIADB['host'], MARIADB['port'], database)
    finally:
        with admin.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS '%s'@'%s'" % (user, MARIADB['host']))
        admin.close()


def test_the_service_account_runs_a_migrated_store(mariadb_database, service_account):
    migrate.upgrade(mariadb_database)  # the migration account (root here)
    store = open_store(service_account)
    try:
        store.hosts.upsert('db1', address='10.0.0.1', port=3306, attributes={'owner': 'alice'})
        job, created = store.jobs.create({'playbook': 'playbooks/inspect.yml', 'inventory': 'inventories/x.yml'})
        assert created
        assert store.jobs.transition(job['id'], 'running', expect={'queued'}, worker='w/1')['status'] == 'running'
        assert store.jobs.heartbeat(job['id'], runner_host='w', runner_pid=1)
        events = [dict(seq=seq, uuid='uuid-%d' % seq, event='runner_on_ok', host='db1', task='t', play='p',
                       changed=False, failed=False, stdout='ok: [db1]', data={}) for seq in (1, 2)]
        assert store.events.add(job['id'], events) == 2
        assert store.jobs.transition(job['id'], 'successful')['status'] == 'successful'
        store.tokens.create('ops', 'admin', hashlib.sha256(b'ops').hexdigest(), created_by='cli:test')
        store.tokens.revoke('ops')
        assert store.hosts.delete('db1')
    finally:
        store.close()


def test_the_service_account_cannot_migrate_and_says_so(service_account):
    with pytest.raises(StoreError, match='could not be upgraded.*denied'):
        open_store(service_account)
