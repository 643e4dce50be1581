"""Schema revisions and opening a store: first use, refusals with instructions, unreachable stores."""

from __future__ import annotations

import contextlib
import multiprocessing

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from dbfleet.store import StoreError, StoreNotMigrated, StoreUnavailable, migrate, open_store
from dbfleet.store.engine import create_store_engine
from dbfleet.store.models import Base
from tests.store.conftest import MARIADB, mariadb_url

TABLES = {'alembic_version', 'hosts', 'fact_snapshots', 'tags', 'host_tags', 'tag_events', 'jobs', 'job_dependencies',
          'job_events', 'job_host_results', 'audit_log', 'job_tags', 'api_tokens', 'schedules', 'schedule_slots',
          'job_host_runs', 'pools', 'pool_leases', 'maintenance_windows', 'backups', 'backup_copies', 'cron_runs',
          'job_templates', 'credentials', 'notifiers', 'notifications', 'notification_deliveries', 'notify_cursors',
          'binlogs', 'binlog_archive_state', 'drills'}


def table_names(url):
    engine = create_store_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@contextlib.contextmanager
def transaction(url):
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def execute(url, statement):
    with transaction(url) as connection:
        connection.execute(sa.text(statement))


def downgrade(url, revision):
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection, migrate.sqlite_foreign_keys_off(connection), connection.begin():
            command.downgrade(migrate.alembic_config(connection), revision)
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema_at_head(store_url):
    assert migrate.head() == '0021'
    assert migrate.current(store_url) is None
    migrate.upgrade(store_url)
    assert migrate.current(store_url) == migrate.head()
    assert table_names(store_url) == TABLES
    migrate.upgrade(store_url)  # again: nothing to do
    assert migrate.current(store_url) == migrate.head()


def test_migrations_create_exactly_the_models(store_url):
    migrate.upgrade(store_url)
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={'compare_type': True,
                                                                   'compare_server_default': True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_and_first_use_upgrade_again(store_url):
    open_store(store_url).close()
    downgrade(store_url, 'base')
    assert table_names(store_url) == {'alembic_version'}
    assert migrate.current(store_url) is None
    with open_store(store_url) as store:
        assert store.hosts.list() == []
    assert migrate.current(store_url) == migrate.head()


def test_upgrade_to_0008_fills_in_each_schedules_source_host(store_url):
    """Schedules stored before 0008 get the host their source names, so lookups by host find them."""
    job = {'playbook': 'playbooks/run_command.yml', 'inventory': 'inventories/localhost.yml'}
    with open_store(store_url) as store:
        for name, source in (('db1-entry', {'origin': 'crontab', 'host': 'db1', 'line': 3}),
                             ('db2-entry', {'origin': 'crontab', 'host': 'db2'}),
                             ('plain', None)):
            store.schedules.create(name=name, kind='cron', expression='0 3 * * *', timezone='UTC', job=job,
                                   overlap='allow', misfire_grace_seconds=60, catch_up='skip', jitter_seconds=0,
                                   paused=False, next_fire_at=None, source=source)
    downgrade(store_url, '0007')
    migrate.upgrade(store_url)
    with open_store(store_url) as store:
        assert [schedule['name'] for schedule in store.schedules.list(source_host='db1')] == ['db1-entry']
        assert [schedule['source'] for schedule in store.schedules.list(source_host='db2')] == [
            {'origin': 'crontab', 'host': 'db2'}]
        assert len(store.schedules.list()) == 3
        assert 'source_host' not in store.schedules.list()[0]


def test_upgrade_to_0011_moves_slot_ownership_from_reason_words_to_a_column(store_url):
    """Who took a slot was told by words in its reason; 0011 makes it `claimed_by`, from those words.
    An interval schedule left without a start (a kind changed to interval before 0011) gets the
    one its next fire implies, so the scheduler no longer reads it as anchored at 'now'."""
    import datetime as dt
    job = {'playbook': 'playbooks/run_command.yml', 'inventory': 'inventories/localhost.yml'}
    at = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.timezone.utc)
    with open_store(store_url) as store:
        schedule = store.schedules.create(name='entry', kind='cron', expression='0 3 * * *', timezone='UTC', job=job,
                                          overlap='allow', misfire_grace_seconds=60, catch_up='skip', jitter_seconds=0,
                                          paused=False, next_fire_at=None, source=None)
        store.schedules.create(name='was-cron', kind='interval', expression='15s', timezone='UTC',
                               job=dict(job, start_at=None), overlap='allow', misfire_grace_seconds=60,
                               catch_up='skip', jitter_seconds=0, paused=False, next_fire_at=at, source=None)
    downgrade(store_url, '0008')
    rows = [(0, 'fired', None, 'run by crontab: run r1, exit 0'), (1, 'fired', None, 'run by crontab (run r2, fallback)'),
            (2, 'fired', None, 'claimed by the scheduler'), (3, 'fired', 'job3', None), (4, 'skipped', None, 'forbid'),
            (5, 'missed', None, 'no report from crontab')]
    with transaction(store_url) as connection:
        for hours, outcome, job_id, reason in rows:
            connection.execute(sa.text('INSERT INTO schedule_slots (schedule_id, slot_at, outcome, job_id, reason, '
                                       'recorded_at) VALUES (:id, :at, :outcome, :job, :reason, :at)'),
                               dict(id=schedule['id'], at=(at + dt.timedelta(hours=hours)).replace(tzinfo=None),
                                    outcome=outcome, job=job_id, reason=reason))
    migrate.upgrade(store_url)
    with open_store(store_url) as store:
        slots = sorted(store.schedules.slots(schedule['id']), key=lambda slot: slot['slot_at'])
        assert [slot['claimed_by'] for slot in slots] == ['crontab', 'crontab', 'platform', 'platform', 'platform',
                                                          None]
        assert slots[2]['reason'] is None and slots[0]['reason'] == 'run by crontab: run r1, exit 0'
        assert store.schedules.get('was-cron')['job']['start_at'] == at.isoformat()
    downgrade(store_url, '0008')
    with transaction(store_url) as connection:
        reasons = connection.execute(sa.text('SELECT reason FROM schedule_slots ORDER BY slot_at')).scalars().all()
    assert reasons[:3] == ['run by crontab: run r1, exit 0', 'run by crontab (run r2, fallback)',
                           'claimed by the scheduler']


def test_open_store_without_migrating_an_empty_store_says_what_to_run(store_url):
    with pytest.raises(StoreNotMigrated) as raised:
        open_store(store_url, migrate=False)
    message = str(raised.value)
    assert message == "store %s is at revision None (empty), dbfleet needs %s: run 'dbfleet store upgrade'" \
        % (sa.make_url(store_url).render_as_string(hide_password=True), migrate.head())
    assert migrate.current(store_url) is None, 'nothing was created'

    migrate.upgrade(store_url)
    with open_store(store_url, migrate=False) as store:
        assert store.tags.list() == []


@pytest.mark.parametrize('migrate_if_needed', [True, False])
def test_a_store_from_a_newer_dbfleet_is_refused(store_url, migrate_if_needed):
    migrate.upgrade(store_url)
    execute(store_url, "UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(StoreNotMigrated, match=r'is at revision 9999_future, which is newer than this dbfleet '
                                               r'\(it knows up to %s\): upgrade dbfleet' % migrate.head()):
        open_store(store_url, migrate=migrate_if_needed)
    assert migrate.current(store_url) == '9999_future', 'left alone'


def _open_concurrently(url, barrier):
    barrier.wait(timeout=60)
    with open_store(url) as store:
        store.hosts.upsert('db1')


def test_concurrent_first_use_migrates_once(store_url):
    context = multiprocessing.get_context('fork')
    barrier = context.Barrier(4)
    processes = [context.Process(target=_open_concurrently, args=(store_url, barrier)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [process.exitcode for process in processes] == [0] * 4
    assert migrate.current(store_url) == migrate.head()
    with open_store(store_url, migrate=False) as store:
        assert [host['name'] for host in store.hosts.list()] == ['db1']


# -- unreachable stores ------------------------------------------------------------------

SECRET = 'Pa55-secret-word'


@pytest.mark.parametrize('url, cause', [
    ('mysql+pymysql://dbfleet:%s@127.0.0.1:1/dbfleet' % SECRET, "Can't connect"),
    ('mysql+pymysql://dbfleet_nosuchuser:%s@%s:%s/dbfleet' % (SECRET, MARIADB['host'], MARIADB['port']),
     'Access denied'),
    (mariadb_url('dbfleet_no_such_database'), 'Unknown database'),
], ids=['closed-port', 'bad-credentials', 'unknown-database'])
def test_an_unreachable_mariadb_is_reported_without_the_password(url, cause):
    with pytest.raises(StoreUnavailable) as raised:
        open_store(url)
    message = str(raised.value)
    masked = sa.make_url(url).render_as_string(hide_password=True)
    assert message.startswith('store %s is unavailable: ' % masked)
    assert cause in message
    assert SECRET not in message and '\n' not in message
    with pytest.raises(StoreUnavailable):
        migrate.current(url)


def test_an_unwritable_sqlite_path_is_reported(tmp_path):
    blocker = tmp_path / 'not-a-directory'
    blocker.write_text('')
    url = 'sqlite:///%s' % (blocker / 'var' / 'dbfleet.db')
    with pytest.raises(StoreUnavailable, match='store %s is unavailable: cannot create directory' % url):
        open_store(url)


def test_an_unopenable_sqlite_file_is_reported(tmp_path):
    url = 'sqlite:///%s' % tmp_path  # a directory, not a database file
    with pytest.raises(StoreUnavailable, match='store %s is unavailable: unable to open database file' % url):
        open_store(url)


def test_urls_dbfleet_cannot_use_are_refused_without_echoing_them():
    with pytest.raises(StoreError, match='not a valid SQLAlchemy URL') as raised:
        open_store('not a url %s' % SECRET)
    assert SECRET not in str(raised.value)
    with pytest.raises(StoreError, match=r'store postgresql://u:\*\*\*@db/x uses the postgresql backend'):
        open_store('postgresql://u:%s@db/x' % SECRET)


def test_sqlite_connections_are_set_up_for_many_writers(tmp_path):
    engine = create_store_engine('sqlite:///%s' % (tmp_path / 'dbfleet.db'))
    try:
        with engine.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql('PRAGMA %s' % name).scalar()  # noqa: E731
            assert (pragma('journal_mode'), pragma('busy_timeout'), pragma('foreign_keys')) == ('wal', 30000, 1)
    finally:
        engine.dispose()


def test_0010_adds_agent_tokens_and_going_back_drops_them(store_url):
    """Tokens made before 0010 keep working; an agent token cannot outlive a downgrade (the old
    schema has no such role), every other token stays."""
    with open_store(store_url) as store:
        store.tokens.create('old', 'operator', 'a' * 64)
        store.tokens.create('agent-db1', 'agent', 'b' * 64, host='db1')
    downgrade(store_url, '0008')
    with transaction(store_url) as connection:
        assert [row[0] for row in connection.execute(sa.text('SELECT name FROM api_tokens'))] == ['old']
        with pytest.raises((sa.exc.IntegrityError, sa.exc.OperationalError)):  # MariaDB: 4025
            with connection.begin_nested():
                connection.execute(sa.text("INSERT INTO api_tokens (name, role, token_hash, created_at) "
                                           "VALUES ('x', 'agent', '%s', '2030-01-01 00:00:00')" % ('c' * 64)))
    migrate.upgrade(store_url)
    with open_store(store_url) as store:
        [old] = store.tokens.list()
        assert (old['name'], old['host'], old['expires_at']) == ('old', None, None)
        assert store.tokens.create('agent-db2', 'agent', 'd' * 64, host='db2')['host'] == 'db2'
    with transaction(store_url) as connection:
        with pytest.raises((sa.exc.IntegrityError, sa.exc.OperationalError)):  # MariaDB: 4025
            with connection.begin_nested():
                connection.execute(sa.text("INSERT INTO api_tokens (name, role, token_hash, created_at) "
                                           "VALUES ('y', 'root', '%s', '2030-01-01 00:00:00')" % ('e' * 64)))


def test_0013_records_the_commit_a_job_ran_and_going_back_drops_it(store_url):
    """Jobs from before 0013 have no revision; a revision is 40 hex digits or nothing; a downgrade
    drops the column and keeps the jobs."""
    with open_store(store_url) as store:
        old, _ = store.jobs.create({'playbook': 'playbooks/hello.yml', 'inventory': 'inventories/localhost.yml'})
    downgrade(store_url, '0012')
    with transaction(store_url) as connection:
        assert 'project_revision' not in {column['name'] for column in sa.inspect(connection).get_columns('jobs')}
    migrate.upgrade(store_url)
    commit = '0123456789abcdef0123456789abcdef01234567'
    with open_store(store_url) as store:
        assert store.jobs.get(old['id'])['project_revision'] is None
        store.jobs.set_project_revision(old['id'], commit)
        assert store.jobs.get(old['id'])['project_revision'] == commit
        for wrong in ('main', commit.upper(), commit[:39], commit + '0'):
            with pytest.raises(ValueError, match='40 hex digits'):
                store.jobs.set_project_revision(old['id'], wrong)
        store.jobs.set_project_revision(old['id'], None)
        assert store.jobs.get(old['id'])['project_revision'] is None


def test_0014_records_the_worker_of_each_host_run_and_going_back_drops_it(store_url):
    """Host runs from before 0014 have no worker; a worker is recorded and read back; a downgrade
    drops the column and keeps the runs."""
    with open_store(store_url) as store:
        job, _ = store.jobs.create({'playbook': 'playbooks/hello.yml', 'inventory': 'inventories/localhost.yml'})
    downgrade(store_url, '0013')
    with transaction(store_url) as connection:
        connection.execute(sa.text("INSERT INTO job_host_runs (job_id, host, lane, status) "
                                   "VALUES ('%s', 'db1', 0, 'ok')" % job['id']))
    migrate.upgrade(store_url)
    with open_store(store_url) as store:
        assert store.jobs.host_runs(job['id'])[0]['worker'] is None
        store.jobs.set_host_runs(job['id'], [{'host': 'db2', 'lane': 1, 'status': 'worker_lost',
                                              'worker': 'worker1/4242'}])
        assert {run['host']: run['worker'] for run in store.jobs.host_runs(job['id'])} == {
            'db1': None, 'db2': 'worker1/4242'}
        with pytest.raises(ValueError):
            store.jobs.set_host_runs(job['id'], [{'host': 'db3', 'status': 'ok', 'worker': 'w' * 256}])
    downgrade(store_url, '0013')
    with transaction(store_url) as connection:
        assert 'worker' not in {column['name'] for column in sa.inspect(connection).get_columns('job_host_runs')}
        assert connection.execute(sa.text('SELECT COUNT(*) FROM job_host_runs')).scalar() == 2


def test_0020_rebuilds_jobs_for_approval_statuses_and_keeps_every_row_that_refers_to_them(store_url):
    """SQLite rebuilds `jobs` to change its status check: the rows that refer to jobs (host runs,
    tags, dependencies) must all still be there afterwards, both ways."""
    migrate.upgrade(store_url, '0016')
    rows = ("INSERT INTO jobs (id, playbook, inventory, inventory_kind, extra_vars, check_mode, diff_mode, queue, "
            "priority, status, created_at, attempt, max_retries, retry_backoff_seconds, cancel_requested) VALUES "
            "('{0}', 'p.yml', 'i.yml', 'file', '{{}}', 0, 0, 'default', 0, 'queued', '2026-12-01 00:00:00', 0, 0, 0, 0)")
    with transaction(store_url) as connection:
        for job_id in ('j1', 'j2'):
            connection.execute(sa.text(rows.format(job_id)))
        connection.execute(sa.text("INSERT INTO job_host_runs (job_id, host, lane, status) VALUES ('j1', 'db1', 0, 'ok')"))
        connection.execute(sa.text("INSERT INTO job_tags (job_id, tag) VALUES ('j1', 'large')"))
        connection.execute(sa.text("INSERT INTO job_dependencies (job_id, depends_on_id, `on`) "
                                   "VALUES ('j2', 'j1', 'always')".replace('`', '"' if 'sqlite' in store_url else '`')))
    migrate.upgrade(store_url)
    with open_store(store_url) as store:
        assert [run['host'] for run in store.jobs.host_runs('j1')] == ['db1']
        assert store.jobs.get('j2')['depends_on'] == [{'job_id': 'j1', 'on': 'always'}]
        waiting, _ = store.jobs.create({'playbook': 'p.yml', 'inventory': 'i.yml', 'approval_timeout_seconds': 60},
                                       depends_on=[('j1', 'always')])
        assert waiting['status'] == 'awaiting_approval'
    downgrade(store_url, '0016')

    def count(sql: str) -> int:
        with transaction(store_url) as connection:
            return connection.execute(sa.text(sql)).scalar()

    assert count("SELECT COUNT(*) FROM jobs WHERE status = 'canceled'") == 1  # no status the old schema knows
    assert count("SELECT COUNT(*) FROM job_host_runs") == count("SELECT COUNT(*) FROM job_tags") == 1
    assert count("SELECT COUNT(*) FROM job_dependencies") == 2
