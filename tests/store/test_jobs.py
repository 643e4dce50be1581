"""The runner service's job records on SQLite and MariaDB: jobs, transitions, dependencies,
pagination, events, host results, the audit log, and the migration that adds them."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import traceback

import pytest
import sqlalchemy as sa
from alembic import command

from dbfleet.store import Store, UnknownJob, migrate, open_store
from dbfleet.store.engine import create_store_engine
from dbfleet.store.job_lifecycle import SATISFIED_BY, TERMINAL_STATUSES, TRANSITIONS
from dbfleet.store.models import DEPENDENCY_CONDITIONS, JOB_STATUSES

UTC = dt.timezone.utc
SPEC = {'playbook': 'playbooks/inspect.yml', 'inventory': 'inventories/local_fleet.yml'}


def spec(**changes):
    return dict(SPEC, **changes)


def launch(store, depends_on=(), **changes) -> dict:
    job, created = store.jobs.create(spec(**changes), depends_on=depends_on)
    assert created
    return job


def run(store, job, to_status, **fields) -> dict:
    """Take a queued job through running to `to_status`."""
    assert store.jobs.transition(job['id'], 'running', worker='w1') is not None
    return store.jobs.transition(job['id'], to_status, **fields)


def job_in(store, status) -> dict:
    """A job in `status`, got there through the public API (max_retries=1 so worker_lost can retry)."""
    if status == 'queued':
        return launch(store, max_retries=1)
    if status == 'waiting':
        return launch(store, depends_on=[(launch(store)['id'], 'success')])
    if status == 'running':
        return store.jobs.transition(launch(store)['id'], 'running')
    if status == 'canceled':
        return store.jobs.request_cancel(launch(store)['id'])
    if status == 'awaiting_approval':
        return launch(store, approval_timeout_seconds=600)
    if status == 'rejected':
        return store.jobs.decide_approval(job_in(store, 'awaiting_approval')['id'], False, 'bob', 'no')
    if status == 'expired':
        waiting = job_in(store, 'awaiting_approval')
        return next(job for job in store.jobs.expire_approvals(waiting['approval_expires_at'])
                    if job['id'] == waiting['id'])
    if status == 'dependency_failed':
        failed = run(store, launch(store), 'failed')
        job = launch(store, depends_on=[(failed['id'], 'success')])
        assert job['status'] == 'dependency_failed'
        return job
    return run(store, launch(store, max_retries=1), status)


def execute(url, statement, **params):
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), params)
    finally:
        engine.dispose()


# -- creating and reading jobs ---------------------------------------------------------------

def test_create_and_get_a_job(store):
    deadline = dt.datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    job, created = store.jobs.create(
        spec(inventory='role:primary and not maint', inventory_kind='tags', limit_pattern='db1:db2',
             extra_vars={'retention': 7, 'password': '***'}, check_mode=True, diff_mode=True, forks=20,
             timeout_seconds=600, deadline=deadline, queue='backups', priority=5, max_retries=2,
             retry_backoff_seconds=30),
        idempotency_key='ticket-42', created_by='ci-bot')
    assert created is True
    assert len(job['id']) == 32 and int(job['id'], 16) >= 0
    assert {key: job[key] for key in ('playbook', 'inventory', 'inventory_kind', 'limit_pattern', 'extra_vars',
                                      'check_mode', 'diff_mode', 'forks', 'timeout_seconds', 'queue', 'priority',
                                      'idempotency_key', 'status', 'worker', 'attempt', 'max_retries',
                                      'retry_backoff_seconds', 'return_code', 'status_reason', 'created_by',
                                      'relaunch_of', 'cancel_requested', 'depends_on', 'host_results')} == dict(
        playbook='playbooks/inspect.yml', inventory='role:primary and not maint', inventory_kind='tags',
        limit_pattern='db1:db2', extra_vars={'retention': 7, 'password': '***'}, check_mode=True, diff_mode=True,
        forks=20, timeout_seconds=600, queue='backups', priority=5, idempotency_key='ticket-42', status='queued',
        worker=None, attempt=0, max_retries=2, retry_backoff_seconds=30, return_code=None, status_reason=None,
        created_by='ci-bot', relaunch_of=None, cancel_requested=False, depends_on=[], host_results={})
    assert job['deadline'] == deadline and job['deadline'].tzinfo == UTC
    assert job['created_at'].tzinfo == UTC and job['enqueued_at'] == job['created_at']
    assert (job['started_at'], job['finished_at']) == (None, None)
    assert job['timings']['run_seconds'] is None and job['timings']['queued_seconds'] >= 0

    stored = store.jobs.get(job['id'])
    assert stored | {'timings': None} == job | {'timings': None}
    assert store.jobs.get('0' * 32) is None

    plain, _ = store.jobs.create(SPEC)
    assert {key: plain[key] for key in ('inventory_kind', 'limit_pattern', 'extra_vars', 'check_mode', 'diff_mode',
                                        'forks', 'timeout_seconds', 'deadline', 'queue', 'priority',
                                        'idempotency_key', 'max_retries', 'retry_backoff_seconds', 'created_by')} == \
        dict(inventory_kind='file', limit_pattern=None, extra_vars={}, check_mode=False, diff_mode=False, forks=None,
             timeout_seconds=None, deadline=None, queue='default', priority=0, idempotency_key=None, max_retries=0,
             retry_backoff_seconds=0, created_by=None)

    relaunch, _ = store.jobs.create(spec(relaunch_of=job['id']))
    assert relaunch['relaunch_of'] == job['id']


def test_the_same_idempotency_key_gives_the_same_job(store):
    first, created = store.jobs.create(SPEC, idempotency_key='nightly-2025-01-01')
    again, created_again = store.jobs.create(spec(playbook='other.yml'), idempotency_key='nightly-2025-01-01')
    assert (created, created_again) == (True, False)
    assert again['id'] == first['id'] and again['playbook'] == SPEC['playbook']
    other, created_other = store.jobs.create(SPEC, idempotency_key='nightly-2025-01-02')
    assert created_other and other['id'] != first['id']
    assert len(store.jobs.list()['jobs']) == 2


@pytest.mark.parametrize('bad, message', [
    ({'inventory': 'x'}, 'playbook must be a non-empty string'),
    (spec(inventory=''), 'inventory must be a non-empty string'),
    (spec(limit='db1'), 'unknown field limit; known: playbook, inventory, inventory_kind'),
    (spec(inventory_kind='group'), "inventory_kind must be 'file' or 'tags', got 'group'"),
    (spec(extra_vars=['a']), 'extra_vars must be a mapping, got list'),
    (spec(check_mode='yes'), "check_mode must be true or false, got 'yes'"),
    (spec(forks=0), 'forks must be an integer of at least 1, got 0'),
    (spec(timeout_seconds=True), 'timeout_seconds must be an integer'),
    (spec(deadline='2030-01-01'), 'deadline must be a datetime'),
    (spec(max_retries=-1), 'max_retries must be an integer of at least 0'),
    (spec(queue='q' * 65), 'queue must be a non-empty string of at most 64 characters'),
    (spec(relaunch_of='f' * 32), 'relaunch_of: no job %s in the store' % ('f' * 32)),
    ('playbook.yml', 'a job spec must be a mapping, got str'),
])
def test_bad_job_specs_are_refused(store, bad, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
        store.jobs.create(bad)
    assert store.jobs.list()['jobs'] == []


def test_bad_dependencies_and_keys_are_refused(store):
    upstream = launch(store)
    with pytest.raises(ValueError, match='depends_on: no job nosuchjob, zzz in the store'):
        store.jobs.create(SPEC, depends_on=[(upstream['id'], 'success'), ('zzz', 'always'), ('nosuchjob', 'failure')])
    with pytest.raises(ValueError, match="on must be one of success, failure, always, got 'done'"):
        store.jobs.create(SPEC, depends_on=[(upstream['id'], 'done')])
    with pytest.raises(ValueError, match='listed twice, with on success and failure'):
        store.jobs.create(SPEC, depends_on=[(upstream['id'], 'success'), {'job_id': upstream['id'], 'on': 'failure'}])
    with pytest.raises(ValueError, match='depends_on must be a list'):
        store.jobs.create(SPEC, depends_on=upstream['id'])
    with pytest.raises(ValueError, match='idempotency_key must be a non-empty string of at most 255'):
        store.jobs.create(SPEC, idempotency_key='k' * 256)
    assert [job['id'] for job in store.jobs.list()['jobs']] == [upstream['id']]


def _create_with_key(url, barrier, results, failures):
    try:
        store = open_store(url)
        barrier.wait(timeout=120)
        job, created = store.jobs.create(SPEC, idempotency_key='same-key', created_by='racer')
        results.put((job['id'], created))
        store.close()
    except BaseException:
        failures.put(traceback.format_exc())
        raise


def test_idempotency_holds_under_concurrent_processes(store, store_url):
    context = multiprocessing.get_context('fork')
    barrier, results, failures = context.Barrier(6), context.Queue(), context.Queue()
    processes = [context.Process(target=_create_with_key, args=(store_url, barrier, results, failures))
                 for _ in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    errors = [failures.get() for _ in range(failures.qsize())]
    assert not errors, '\n'.join(errors)
    assert [process.exitcode for process in processes] == [0] * 6
    outcomes = [results.get(timeout=10) for _ in range(6)]
    assert len({job_id for job_id, _ in outcomes}) == 1, 'every process got the same job'
    assert sorted(created for _, created in outcomes) == [False] * 5 + [True]
    [job] = store.jobs.list()['jobs']
    assert job['id'] == outcomes[0][0] and job['idempotency_key'] == 'same-key'


# -- transitions -------------------------------------------------------------------------------

def test_a_job_runs_and_ends_with_timestamps(store):
    job = launch(store)
    running = store.jobs.transition(job['id'], 'running', expect={'queued'}, worker='worker-1')
    assert (running['status'], running['worker'], running['attempt']) == ('running', 'worker-1', 1)
    assert running['started_at'] >= job['enqueued_at'] and running['finished_at'] is None
    assert running['timings']['queued_seconds'] == (running['started_at'] - job['enqueued_at']).total_seconds()

    done = store.jobs.transition(job['id'], 'failed', return_code=2, status_reason='2 hosts failed')
    assert (done['status'], done['return_code'], done['status_reason']) == ('failed', 2, '2 hosts failed')
    assert done['finished_at'] >= done['started_at']
    assert done['timings']['run_seconds'] == (done['finished_at'] - done['started_at']).total_seconds()
    assert store.jobs.get(job['id'])['timings'] == done['timings'], 'an ended job has fixed timings'

    assert store.jobs.transition(job['id'], 'running') is None, 'terminal: the compare-and-set loses'
    assert store.jobs.transition(job['id'], 'successful') is None
    assert store.jobs.get(job['id'])['status'] == 'failed'

    explicit = dt.datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC)
    other = store.jobs.transition(launch(store)['id'], 'running', started_at=explicit)
    assert other['started_at'] == explicit, 'an explicit time beats the automatic one'


def test_every_move_in_the_table_and_no_other(store):
    for from_status in JOB_STATUSES:
        for to_status in JOB_STATUSES:
            if to_status == 'awaiting_approval':
                continue  # refused outright, below
            job = job_in(store, from_status)
            assert job['status'] == from_status
            moved = store.jobs.transition(job['id'], to_status)
            if from_status in TRANSITIONS[to_status]:
                assert moved is not None and moved['status'] == to_status, (from_status, to_status)
                assert (moved['finished_at'] is not None) == (to_status in TERMINAL_STATUSES)
            else:
                assert moved is None, (from_status, to_status)
                assert store.jobs.get(job['id'])['status'] == from_status


def test_transition_refuses_bad_requests(store):
    job = launch(store)
    with pytest.raises(ValueError, match="unknown job status 'done'"):
        store.jobs.transition(job['id'], 'done')
    with pytest.raises(ValueError, match='a job cannot move from successful to running; it can only from queued'):
        store.jobs.transition(job['id'], 'running', expect={'queued', 'successful'})
    with pytest.raises(ValueError, match="expect: unknown job status 'bogus'"):
        store.jobs.transition(job['id'], 'running', expect={'bogus'})
    with pytest.raises(ValueError, match='no job moves to awaiting_approval: a job is awaiting_approval only from '
                                         'its creation'):
        store.jobs.transition(job['id'], 'awaiting_approval')
    with pytest.raises(ValueError, match='transition: cannot set attempt; it sets worker, return_code'):
        store.jobs.transition(job['id'], 'running', attempt=3)
    with pytest.raises(ValueError, match="return_code must be an integer, got '0'"):
        store.jobs.transition(job['id'], 'running', return_code='0')
    with pytest.raises(UnknownJob, match='no job nosuch in the store'):
        store.jobs.transition('nosuch', 'running')
    assert store.jobs.get(job['id'])['status'] == 'queued', 'nothing moved'
    assert store.jobs.transition(job['id'], 'successful', expect='running') is None


def _race_to_run(url, job_ids, worker, barrier, results, failures):
    try:
        store = open_store(url)
        for job_id in job_ids:
            barrier.wait(timeout=120)  # both try every job at the same moment
            won = store.jobs.transition(job_id, 'running', expect={'queued'}, worker=worker)
            results.put((job_id, worker if won else None))
        store.close()
    except BaseException:
        failures.put(traceback.format_exc())
        raise


def test_of_two_processes_racing_to_run_a_job_exactly_one_wins(store, store_url):
    job_ids = [launch(store)['id'] for _ in range(20)]
    context = multiprocessing.get_context('fork')
    barrier, results, failures = context.Barrier(2), context.Queue(), context.Queue()
    processes = [context.Process(target=_race_to_run, args=(store_url, job_ids, worker, barrier, results, failures))
                 for worker in ('worker-a', 'worker-b')]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    errors = [failures.get() for _ in range(failures.qsize())]
    assert not errors, '\n'.join(errors)
    assert [process.exitcode for process in processes] == [0, 0]
    winners = {}
    for _ in range(2 * len(job_ids)):
        job_id, winner = results.get(timeout=10)
        if winner:
            assert job_id not in winners, 'two winners for %s' % job_id
            winners[job_id] = winner
    assert sorted(winners) == sorted(job_ids)
    for job_id in job_ids:
        job = store.jobs.get(job_id)
        assert (job['status'], job['worker'], job['attempt']) == ('running', winners[job_id], 1)


def test_a_lost_worker_is_retried_while_retries_last(store):
    job = launch(store, max_retries=1, retry_backoff_seconds=5)
    dependent = launch(store, depends_on=[(job['id'], 'failure')])
    lost = run(store, job, 'worker_lost', status_reason='worker w1 gone')
    assert (lost['status'], lost['attempt'], lost['finished_at'] is not None) == ('worker_lost', 1, True)
    assert store.jobs.ready_dependents(job['id']) == [], 'a retry may still come: the dependent keeps waiting'

    retried = store.jobs.transition(job['id'], 'queued')
    assert (retried['status'], retried['attempt'], retried['worker'], retried['started_at'],
            retried['finished_at'], retried['status_reason']) == ('queued', 1, None, None, None, None)
    assert retried['enqueued_at'] > lost['enqueued_at']
    assert run(store, retried, 'worker_lost')['attempt'] == 2
    with pytest.raises(ValueError, match='has run 2 times and may be retried 1 times: it stays worker_lost'):
        store.jobs.transition(job['id'], 'queued')
    [moved] = store.jobs.ready_dependents(job['id'])
    assert (moved['id'], moved['status']) == (dependent['id'], 'queued'), 'worker_lost counts as a failure'

    canceled = run(store, launch(store, max_retries=3), 'worker_lost')
    assert store.jobs.request_cancel(canceled['id'])['status'] == 'worker_lost'
    assert store.jobs.transition(canceled['id'], 'queued') is None, 'a cancel request beats the retry'


def test_request_cancel(store):
    queued = launch(store)
    canceled = store.jobs.request_cancel(queued['id'])
    assert (canceled['status'], canceled['cancel_requested'], canceled['status_reason']) == \
        ('canceled', True, 'canceled before it started')
    assert canceled['finished_at'] is not None and canceled['timings']['run_seconds'] is None
    assert store.jobs.transition(queued['id'], 'running') is None, 'a worker that dequeues it late does not run it'

    blocker = launch(store)
    waiting = launch(store, depends_on=[(blocker['id'], 'success')])
    assert store.jobs.request_cancel(waiting['id'])['status'] == 'canceled'

    running = store.jobs.transition(launch(store)['id'], 'running')
    flagged = store.jobs.request_cancel(running['id'])
    assert (flagged['status'], flagged['cancel_requested']) == ('running', True)
    assert store.jobs.transition(running['id'], 'canceled', return_code=-15)['status'] == 'canceled'

    done = run(store, launch(store), 'successful')
    assert store.jobs.request_cancel(done['id']) | {'timings': None} == done | {'timings': None}, 'an ended job stays'
    assert store.jobs.request_cancel('nosuch') is None


# -- dependencies ----------------------------------------------------------------------------

OUTCOME_TABLE = {  # upstream ended -> (on success, on failure, on always)
    'successful': ('queued', 'dependency_failed', 'queued'),
    'failed': ('dependency_failed', 'queued', 'queued'),
    'timed_out': ('dependency_failed', 'queued', 'queued'),
    'worker_lost': ('dependency_failed', 'queued', 'queued'),
    'canceled': ('dependency_failed', 'dependency_failed', 'queued'),
}


def test_the_tables_cover_every_status_and_condition():
    assert set(TRANSITIONS) == set(JOB_STATUSES)
    assert set(SATISFIED_BY) == set(DEPENDENCY_CONDITIONS)
    assert TERMINAL_STATUSES < set(JOB_STATUSES)
    for ended, statuses in OUTCOME_TABLE.items():
        for on, status in zip(DEPENDENCY_CONDITIONS, statuses):
            assert (ended in SATISFIED_BY[on]) == (status == 'queued'), (ended, on)


@pytest.mark.parametrize('ended', sorted(OUTCOME_TABLE))
def test_dependents_run_only_when_the_dependency_ended_as_asked(store, ended):
    upstream = launch(store)
    dependents = {on: launch(store, depends_on=[(upstream['id'], on)]) for on in DEPENDENCY_CONDITIONS}
    assert {job['status'] for job in dependents.values()} == {'waiting'}
    assert all(job['enqueued_at'] is None for job in dependents.values())
    assert store.jobs.ready_dependents(upstream['id']) == [], 'nothing is ready while the dependency is queued'

    if ended == 'canceled':
        store.jobs.request_cancel(upstream['id'])
    else:
        run(store, upstream, ended)
    moved = {job['id']: job for job in store.jobs.ready_dependents(upstream['id'])}
    assert sorted(moved) == sorted(job['id'] for job in dependents.values())
    for on, expected in zip(DEPENDENCY_CONDITIONS, OUTCOME_TABLE[ended]):
        job = store.jobs.get(dependents[on]['id'])
        assert job['status'] == expected, on
        assert moved[job['id']]['status'] == expected
        if expected == 'queued':
            assert job['enqueued_at'] is not None and job['status_reason'] is None
        else:
            assert job['status_reason'] == 'dependency %s ended %s, but this job runs on %s' % (upstream['id'],
                                                                                                ended, on)
            assert job['finished_at'] is not None
    assert store.jobs.ready_dependents(upstream['id']) == [], 'each is resolved once'


def test_chains_and_jobs_with_several_dependencies(store):
    a = launch(store)
    b = launch(store, depends_on=[(a['id'], 'success')])
    c = launch(store, depends_on=[(b['id'], 'success')])
    d = launch(store, depends_on=[(b['id'], 'failure')])
    e = launch(store, depends_on=[(c['id'], 'always'), (d['id'], 'success')])
    assert store.jobs.get(e['id'])['depends_on'] == sorted([{'job_id': c['id'], 'on': 'always'},
                                                           {'job_id': d['id'], 'on': 'success'}],
                                                          key=lambda item: item['job_id'])

    run(store, a, 'failed')
    moved = store.jobs.ready_dependents(a['id'])
    # b fails on a, then c and d on b, then e on c and d: all in the same call.
    assert [job['id'] for job in moved][:1] == [b['id']]
    assert {job['id']: job['status'] for job in moved} == {
        b['id']: 'dependency_failed', c['id']: 'dependency_failed', d['id']: 'queued'}
    assert store.jobs.get(c['id'])['status_reason'] == \
        'dependency %s ended dependency_failed, but this job runs on success' % b['id']
    assert store.jobs.get(e['id'])['status'] == 'waiting', 'd has not ended yet'

    run(store, store.jobs.get(d['id']), 'successful')
    [ready] = store.jobs.ready_dependents(d['id'])
    assert (ready['id'], ready['status']) == (e['id'], 'queued'), 'c ended (always) and d succeeded'

    x = launch(store)
    y = launch(store, depends_on=[(x['id'], 'success')])
    z = launch(store, depends_on=[(y['id'], 'success')])
    run(store, x, 'successful')
    assert [job['id'] for job in store.jobs.ready_dependents(x['id'])] == [y['id']]
    assert store.jobs.get(z['id'])['status'] == 'waiting'
    run(store, store.jobs.get(y['id']), 'successful')
    assert [job['id'] for job in store.jobs.ready_dependents(y['id'])] == [z['id']]
    with pytest.raises(UnknownJob):
        store.jobs.ready_dependents('nosuch')


def test_a_job_whose_dependencies_already_ended_is_decided_at_creation(store):
    good = run(store, launch(store), 'successful')
    bad = run(store, launch(store), 'failed')
    assert launch(store, depends_on=[(good['id'], 'success'), (bad['id'], 'failure')])['status'] == 'queued'
    failed = launch(store, depends_on=[(good['id'], 'success'), (bad['id'], 'success')])
    assert failed['status'] == 'dependency_failed' and failed['finished_at'] is not None
    assert failed['status_reason'] == 'dependency %s ended failed, but this job runs on success' % bad['id']
    running = store.jobs.transition(launch(store)['id'], 'running')
    assert launch(store, depends_on=[(good['id'], 'success'), (running['id'], 'always')])['status'] == 'waiting'


def test_ready_dependents_without_a_job_sweeps_every_waiting_job(store):
    upstream = launch(store)
    first = launch(store, depends_on=[(upstream['id'], 'success')])
    second = launch(store, depends_on=[(first['id'], 'success')])
    other = launch(store, depends_on=[(launch(store)['id'], 'success')])
    store.jobs.request_cancel(upstream['id'])  # ...and the caller died before calling ready_dependents
    assert {job['id']: job['status'] for job in store.jobs.ready_dependents()} == {
        first['id']: 'dependency_failed', second['id']: 'dependency_failed'}
    assert store.jobs.get(other['id'])['status'] == 'waiting'
    assert store.jobs.ready_dependents() == []


# -- listing ---------------------------------------------------------------------------------

def all_pages(store, limit, between_pages=None, **filters):
    ids, cursor = [], None
    while True:
        page = store.jobs.list(limit=limit, cursor=cursor, **filters)
        assert len(page['jobs']) <= limit
        ids.extend(job['id'] for job in page['jobs'])
        cursor = page['next_cursor']
        if cursor is None:
            return ids
        if between_pages:
            between_pages()


def test_pagination_is_stable_while_jobs_arrive(store, store_url):
    jobs = [launch(store) for _ in range(13)]
    newest_first = [job['id'] for job in reversed(jobs)]
    assert all_pages(store, limit=50) == newest_first

    arrived = []
    seen = all_pages(store, limit=4, between_pages=lambda: arrived.append(launch(store)['id']))
    assert seen == newest_first, 'no job repeated or skipped; new ones are on the first page of a new listing'
    assert len(arrived) == 3
    assert all_pages(store, limit=5)[:3] == arrived[::-1]

    # Jobs created in the same microsecond (other API processes) are ordered by id.
    same = dt.datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    tied = [job['id'] for job in jobs[3:9]]
    execute(store_url, 'UPDATE jobs SET created_at = :at WHERE id IN (%s)' % ', '.join("'%s'" % i for i in tied),
            at=same.replace(tzinfo=None))
    expected = [job['id'] for job in store.jobs.list(limit=100)['jobs']]
    assert expected[-6:] == sorted(tied, reverse=True), 'the oldest, in id order'
    for limit in (1, 2, 4, 5):
        assert all_pages(store, limit=limit) == expected, limit
    page = store.jobs.list(limit=2, cursor=store.jobs.list(limit=len(expected) - 5)['next_cursor'])
    assert [job['id'] for job in page['jobs']] == expected[-5:-3]


def test_list_jobs_filters_and_refusals(store):
    start = dt.datetime.now(UTC)
    inspect, _ = store.jobs.create(spec(), created_by='ci-bot')
    backup = launch(store, playbook='playbooks/backup.yml', template='nightly')
    run(store, backup, 'successful')
    middle = dt.datetime.now(UTC)
    running = store.jobs.transition(launch(store, playbook='playbooks/backup.yml')['id'], 'running')

    def ids(**filters):
        return [job['id'] for job in store.jobs.list(**filters)['jobs']]

    assert ids(status='queued') == [inspect['id']]
    assert ids(status={'running', 'successful'}) == [running['id'], backup['id']]
    assert ids(playbook='playbooks/backup.yml') == [running['id'], backup['id']]
    assert ids(playbook='playbooks/backup.yml', status='successful') == [backup['id']]
    assert ids(created_after=middle) == [running['id']]
    assert ids(template='nightly') == [backup['id']] and ids(template='nightly', status='queued') == []
    assert ids(created_by='ci-bot') == [inspect['id']] and ids(created_by='nobody') == []
    assert ids(created_before=middle) == [backup['id'], inspect['id']]
    assert ids(created_after=start, created_before=middle) == [backup['id'], inspect['id']]
    assert ids(created_after=running['created_at']) == [running['id']], 'created_after is inclusive'
    assert ids(created_before=running['created_at']) == [backup['id'], inspect['id']], 'created_before is not'
    [listed] = store.jobs.list(status='running')['jobs']
    assert listed | {'timings': None} == store.jobs.get(running['id']) | {'timings': None}

    with pytest.raises(ValueError, match="status: unknown job status 'done'"):
        store.jobs.list(status='done')
    with pytest.raises(ValueError, match='limit must be an integer from 1 to 1000, got 0'):
        store.jobs.list(limit=0)
    with pytest.raises(ValueError, match="cursor 'abc' is not one list_jobs gave out"):
        store.jobs.list(cursor='abc')
    with pytest.raises(ValueError, match='created_after must be a datetime'):
        store.jobs.list(created_after='yesterday')


def test_pending_jobs_by_priority_then_age(store):
    low = launch(store)
    high = launch(store, priority=10)
    low_later = launch(store)
    urgent = launch(store, priority=100, queue='urgent')
    store.jobs.transition(launch(store, priority=1000)['id'], 'running')
    launch(store, depends_on=[(low['id'], 'success')], priority=1000)  # waiting: not pending
    store.jobs.request_cancel(launch(store, priority=1000)['id'])
    assert [job_id for job_id, _, _ in store.jobs.pending()] == [urgent['id'], high['id'], low['id'], low_later['id']]
    assert [job_id for job_id, _, _ in store.jobs.pending(limit=2)] == [urgent['id'], high['id']]
    assert store.jobs.pending()[0] == (urgent['id'], 'urgent', store.jobs.get(urgent['id'])['enqueued_at'])


# -- events and results ------------------------------------------------------------------------

def make_events(count, start=1, hosts=('db1', 'db2', 'db3'), **extra):
    events = []
    for seq in range(start, start + count):
        host = hosts[seq % len(hosts)]
        events.append(dict(seq=seq, uuid='uuid-%06d' % seq, event='runner_on_ok' if seq % 4 else 'runner_on_failed',
                           host=host, task='task %d' % (seq // 10), play='play', changed=seq % 2 == 0,
                           failed=seq % 4 == 0, stdout='ok: [%s]' % host, data={'seq': seq, 'res': {'rc': 0}},
                           **extra))
    return events


def test_events_are_stored_in_batches_without_duplicates(store):
    job = launch(store)
    other = launch(store)
    assert store.events.add(job['id'], make_events(300)) == 300
    assert store.events.add(job['id'], make_events(100, start=251)) == 50, 'uuids 251-300 were stored already'
    assert store.events.add(job['id'], make_events(5, start=351) + make_events(5, start=351)) == 5, \
        'a duplicate inside the batch'
    assert store.events.add(other['id'], make_events(10)) == 10, 'uuids are unique per job, not globally'
    without_uuid = [dict(seq=1000, event='verbose', stdout='line')] * 2
    assert store.events.add(job['id'], without_uuid) == 2, 'no uuid, nothing to deduplicate by'
    assert store.events.add(job['id'], []) == 0

    everything = store.events.list(job['id'], limit=1000)
    assert [event['seq'] for event in everything['events']] == list(range(1, 356)) + [1000, 1000]
    assert everything['next_cursor'] is None
    first = everything['events'][0]
    assert first == dict(job_id=job['id'], seq=1, uuid='uuid-000001', event='runner_on_ok', host='db2', task='task 0',
                         play='play', changed=False, failed=False, created=first['created'], stdout='ok: [db2]',
                         data={'seq': 1, 'res': {'rc': 0}})
    assert first['created'].tzinfo == UTC
    assert everything['events'][-1] | {'created': None} == dict(
        job_id=job['id'], seq=1000, uuid=None, event='verbose', host=None, task=None, play=None, changed=None,
        failed=None, created=None, stdout='line', data={})


def test_events_filters_and_cursor(store):
    job = launch(store)
    store.events.add(job['id'], make_events(120))

    seqs, cursor = [], None
    while True:
        page = store.events.list(job['id'], host='db1', after_seq=cursor, limit=7)
        seqs.extend(event['seq'] for event in page['events'])
        assert {event['host'] for event in page['events']} <= {'db1'}
        cursor = page['next_cursor']
        if cursor is None:
            break
        assert cursor == page['events'][-1]['seq']
    assert seqs == [seq for seq in range(1, 121) if seq % 3 == 0]

    failed = store.events.list(job['id'], event='runner_on_failed')['events']
    assert [event['seq'] for event in failed] == list(range(4, 121, 4))
    both = store.events.list(job['id'], event=['runner_on_failed', 'runner_on_ok'], host='db2', after_seq=100)
    assert [event['seq'] for event in both['events']] == [103, 106, 109, 112, 115, 118]
    assert store.events.list(job['id'], after_seq=120) == {'events': [], 'next_cursor': None}
    assert store.events.list(job['id'], host='nosuch') == {'events': [], 'next_cursor': None}

    # A follower that asks after the last seq it saw gets what arrived since.
    store.events.add(job['id'], make_events(3, start=121))
    assert [event['seq'] for event in store.events.list(job['id'], after_seq=120)['events']] == [121, 122, 123]


def test_event_fields_and_refusals(store):
    job = launch(store)
    created = '2025-03-04T05:06:07.891011'
    big = 'x' * 200_000  # more than MySQL's TEXT holds
    assert store.events.add(job['id'], [dict(seq=1, event='playbook_on_start', created=created, stdout=big)]) == 1
    [event] = store.events.list(job['id'])['events']
    assert event['created'] == dt.datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    assert event['stdout'] == big

    for bad, message in [
        ([{'seq': 1}], 'event 0: event must be the event name'),
        ([{'seq': -1, 'event': 'x'}], 'event 0: seq must be an integer of at least 0'),
        ([{'seq': 1, 'event': 'x'}, {'seq': 2, 'event': 'x', 'counter': 2}], 'event 1: unknown field counter'),
        ([{'seq': 1, 'event': 'x', 'created': 'yesterday'}], 'created must be a datetime or ISO 8601 text'),
        ([{'seq': 1, 'event': 'x', 'changed': 1}], 'changed must be true, false or null'),
        ([{'seq': 1, 'event': 'x', 'data': 'text'}], 'data must be a mapping'),
        ([{'seq': 1, 'event': 'x', 'host': 'h' * 256}], 'host must be text of at most 255 characters'),
        (['runner_on_ok'], 'event 0 must be a mapping'),
    ]:
        with pytest.raises(ValueError, match=message):
            store.events.add(job['id'], bad)
    assert len(store.events.list(job['id'])['events']) == 1, 'a refused batch stores nothing'
    with pytest.raises(UnknownJob, match='no job nosuch in the store'):
        store.events.add('nosuch', make_events(1))
    with pytest.raises(UnknownJob):
        store.events.list('nosuch')
    with pytest.raises(ValueError, match='after_seq must be an integer'):
        store.events.list(job['id'], after_seq='5')


def test_host_results_are_upserted(store):
    job = launch(store)
    assert store.jobs.get(job['id'])['host_results'] == {}
    store.jobs.set_host_results(job['id'], {'db1': {'ok': 3, 'changed': 1}, 'db2': {'ok': 1, 'unreachable': 1}})
    store.jobs.set_host_results(job['id'], {'db1': {'ok': 5, 'changed': 2, 'failed': 1}, 'db3': {}})
    zero = dict.fromkeys(('ok', 'changed', 'failed', 'unreachable', 'skipped', 'rescued', 'ignored'), 0)
    assert store.jobs.get(job['id'])['host_results'] == {
        'db1': zero | {'ok': 5, 'changed': 2, 'failed': 1},
        'db2': zero | {'ok': 1, 'unreachable': 1},
        'db3': zero,
    }
    other = launch(store)
    store.jobs.set_host_results(other['id'], {'db1': {'skipped': 4, 'rescued': 1, 'ignored': 2}})
    assert store.jobs.get(other['id'])['host_results'] == {'db1': zero | {'skipped': 4, 'rescued': 1, 'ignored': 2}}
    assert store.jobs.get(job['id'])['host_results']['db1']['ok'] == 5
    page = {item['id']: item['host_results'] for item in store.jobs.list()['jobs']}
    assert page[other['id']] == {'db1': zero | {'skipped': 4, 'rescued': 1, 'ignored': 2}}

    with pytest.raises(ValueError, match='host results of db1: unknown count oks'):
        store.jobs.set_host_results(job['id'], {'db1': {'oks': 1}})
    with pytest.raises(ValueError, match='host results of db1: failed must be an integer of at least 0'):
        store.jobs.set_host_results(job['id'], {'db1': {'failed': -1}})
    with pytest.raises(UnknownJob):
        store.jobs.set_host_results('nosuch', {'db1': {}})
    assert store.jobs.get(job['id'])['host_results']['db1']['failed'] == 1


def test_audit_log(store):
    job = launch(store)
    store.audit.record('ci-bot', 'launch', job['id'], {'playbook': SPEC['playbook'], 'at': dt.date(2025, 1, 2)})
    store.audit.record('alice', 'cancel', job['id'])
    store.audit.record('ci-bot', 'relaunch', job['id'], {'hosts': 'failed'})

    entries = store.audit.list()
    assert [(entry['actor'], entry['action']) for entry in entries] == [
        ('ci-bot', 'relaunch'), ('alice', 'cancel'), ('ci-bot', 'launch')]
    assert entries[2]['detail'] == {'playbook': SPEC['playbook'], 'at': '2025-01-02'}
    assert entries[1]['detail'] is None and entries[1]['target'] == job['id']
    assert entries[0]['at'] >= entries[2]['at'] and entries[0]['at'].tzinfo == UTC
    assert [entry['action'] for entry in store.audit.list(actor='ci-bot')] == ['relaunch', 'launch']
    assert [entry['actor'] for entry in store.audit.list(action='cancel')] == ['alice']
    assert len(store.audit.list(limit=1)) == 1
    with pytest.raises(ValueError, match='actor must be a non-empty string'):
        store.audit.record('', 'launch', job['id'])
    with pytest.raises(ValueError, match='action must be a non-empty string of at most 32 characters'):
        store.audit.record('alice', 'a' * 33, job['id'])


def test_audit_log_filters_by_target_action_prefix_and_time_and_pages_newest_first(store):
    for number in range(5):
        store.audit.record('admin', 'schedule.update' if number % 2 else 'token.create', 'thing-%d' % (number % 2))
    entries = store.audit.list()
    assert [entry['target'] for entry in entries] == ['thing-0', 'thing-1', 'thing-0', 'thing-1', 'thing-0']
    assert [entry['id'] for entry in store.audit.list(target='thing-1')] == [entries[1]['id'], entries[3]['id']]
    assert {entry['action'] for entry in store.audit.list(action='token.')} == {'token.create'}
    assert store.audit.list(action='token') == [], 'a prefix ends with a dot'
    assert store.audit.list(action='%.') == [] and store.audit.list(action='_oken.') == [], 'no wildcards'
    first, second = store.audit.list(limit=2), None
    second = store.audit.list(limit=2, before=first[-1]['id'])
    third = store.audit.list(limit=2, before=second[-1]['id'])
    assert [entry['id'] for entry in first + second + third] == [entry['id'] for entry in entries]
    oldest = entries[-1]['at']
    assert [entry['id'] for entry in store.audit.list(until=oldest)] == []
    assert entries[-1] in store.audit.list(since=oldest) and store.audit.list(since=entries[0]['at'])[-1]['at'] >= \
        entries[0]['at']
    for before in (0, -1, True, 'x'):
        with pytest.raises(ValueError, match='before must be a positive entry id'):
            store.audit.list(before=before)


# -- the migration -------------------------------------------------------------------------------

def test_upgrading_from_0001_keeps_the_data_and_downgrading_drops_only_jobs(store_url):
    migrate.upgrade(store_url, '0001')
    engine = create_store_engine(store_url)
    old = Store(engine)  # the 0001 schema: hosts, facts and tags work, jobs do not exist yet
    try:
        old.facts.record('db1', {'server': {'flavour': 'mariadb'}})
        old.tags.sync_rules('db1', {'role:primary': {'role': 'primary'}}, who='rules')
        old.tags.add('db1', 'team:dba', who='alice')
    finally:
        old.close()

    def hosts_facts_tags(store):
        return (store.hosts.list(), store.facts.latest('db1'), store.tags.of_host('db1'), store.tags.events())

    with open_store(store_url) as store:
        assert migrate.current(store_url) == migrate.head()
        before = hosts_facts_tags(store)
        assert before[1]['facts'] == {'server': {'flavour': 'mariadb'}}
        assert sorted(before[2]) == ['role:primary', 'team:dba']
        job = launch(store)
        store.events.add(job['id'], make_events(3))

    engine = create_store_engine(store_url)
    try:
        with engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), '0001')
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert migrate.current(store_url) == '0001'
    assert tables == {'alembic_version', 'hosts', 'fact_snapshots', 'tags', 'host_tags', 'tag_events'}
    migrate.upgrade(store_url)
    with open_store(store_url, migrate=False) as store:
        assert hosts_facts_tags(store) == before, 'hosts, facts and tags survive the round trip'
        assert store.jobs.get(job['id']) is None and store.jobs.list()['jobs'] == []
        assert launch(store)['status'] == 'queued'


def test_queued_jobs_are_counted_per_queue(store):
    assert store.jobs.queued_by_queue() == {}
    launch(store)
    launch(store, queue='backups')
    launch(store, queue='backups')
    run(store, launch(store, queue='nightly'), 'successful')
    assert store.jobs.queued_by_queue() == {'default': 1, 'backups': 2}


def test_events_of_jobs_ended_before_a_time_are_pruned_in_batches(store):
    cutoff = dt.datetime(2026, 6, 1, tzinfo=UTC)
    old = run(store, launch(store), 'successful', finished_at=cutoff - dt.timedelta(days=30))
    older = run(store, launch(store), 'failed', finished_at=cutoff - dt.timedelta(days=90))
    recent = run(store, launch(store), 'successful', finished_at=cutoff + dt.timedelta(seconds=1))
    running = launch(store)
    store.jobs.transition(running['id'], 'running', worker='w1')
    for job, count in ((old, 7), (older, 3), (recent, 5), (running, 4)):
        assert store.events.add(job['id'], make_events(count)) == count
    assert store.events.prune(cutoff, batch=2) == (2, 10)
    assert [store.events.last_seq(job['id']) for job in (old, older, recent, running)] == [0, 0, 5, 4]
    assert store.jobs.get(old['id'])['status'] == 'successful', 'the job stays'
    assert store.events.prune(cutoff) == (0, 0)
    for bad in (0, -1, True, '10'):
        with pytest.raises(ValueError, match='batch'):
            store.events.prune(cutoff, batch=bad)
    with pytest.raises(ValueError, match='finished_before'):
        store.events.prune('2026-06-01')


def test_the_cli_prunes_events_by_age(store, store_url):
    from dbfleet.clock import utcnow
    from tests.helpers import ok, refused
    old = run(store, launch(store), 'successful', finished_at=utcnow() - dt.timedelta(days=40))
    recent = run(store, launch(store), 'successful', finished_at=utcnow() - dt.timedelta(days=1))
    store.events.add(old['id'], make_events(3))
    store.events.add(recent['id'], make_events(2))
    assert 'pruned 3 events of 1 jobs that ended more than 30d ago' in \
        ok(store_url, 'store', 'prune-events', '--older-than', '30d').stdout
    assert [store.events.last_seq(old['id']), store.events.last_seq(recent['id'])] == [0, 2]
    assert 'not a duration' in refused(store_url, 'store', 'prune-events', '--older-than', 'soon')
    assert 'longer than zero' in refused(store_url, 'store', 'prune-events', '--older-than', '0d')


def test_a_job_needing_approval_waits_outside_the_queue_until_decided(store):
    spec = {'playbook': 'playbooks/restore.yml', 'inventory': 'inventories/x.yml', 'approval_timeout_seconds': 3600}
    job, _ = store.jobs.create(spec, created_by='alice')
    assert job['status'] == 'awaiting_approval' and job['enqueued_at'] is None
    assert job['approval_expires_at'] - job['created_at'] == dt.timedelta(seconds=3600)
    assert store.jobs.pending() == []  # the reconciler never queues it
    approved = store.jobs.decide_approval(job['id'], True, 'bob')
    assert approved['status'] == 'queued' and approved['enqueued_at'] is not None
    assert (approved['approval_decided_by'], approved['status_reason']) == ('bob', 'approved by bob')
    assert store.jobs.decide_approval(job['id'], False, 'carol', 'too late') is None  # decided already

    rejected, _ = store.jobs.create(spec, created_by='alice')
    rejected = store.jobs.decide_approval(rejected['id'], False, 'bob', 'not during the sale')
    assert rejected['status'] == 'rejected' and rejected['finished_at'] is not None
    assert rejected['status_reason'] == 'rejected by bob: not during the sale'

    # Approved while what it depends on still runs: it waits for it, as a new job would.
    upstream, _ = store.jobs.create({'playbook': 'a.yml', 'inventory': 'i.yml'})
    later, _ = store.jobs.create(spec, depends_on=[(upstream['id'], 'success')])
    assert later['status'] == 'awaiting_approval'
    assert store.jobs.decide_approval(later['id'], True, 'bob')['status'] == 'waiting'


def test_approval_expires_and_cancel_and_deadlines_reach_jobs_awaiting_it(store):
    spec = {'playbook': 'playbooks/restore.yml', 'inventory': 'inventories/x.yml', 'approval_timeout_seconds': 600}
    job, _ = store.jobs.create(spec)
    assert store.jobs.expire_approvals(job['created_at'] + dt.timedelta(seconds=599)) == []
    [expired] = store.jobs.expire_approvals(job['created_at'] + dt.timedelta(seconds=600))
    assert expired['status'] == 'expired' and 'no admin approved it within 600 s' in expired['status_reason']
    other, _ = store.jobs.create(spec)
    assert store.jobs.request_cancel(other['id'])['status'] == 'canceled'
    late, _ = store.jobs.create(dict(spec, deadline=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)))
    assert [job['id'] for job in store.jobs.overdue()] == [late['id']]
