"""API tokens on SQLite and MariaDB: the store's TokenStore (create, look up, list, revoke, the
last-use throttle) and runner_service.tokens (issue, authenticate, roles). Tokens are kept hashed."""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor

import pytest
import sqlalchemy as sa

from dbfleet.clock import utcnow
from dbfleet.store import LAST_USED_EVERY, StoreError, UnknownToken, open_store
from dbfleet.store.engine import create_store_engine
from dbfleet.store.models import NAME_LENGTH, TOKEN_ROLES
from runner_service import tokens
from tests.store.helpers import api_token_rows

UTC = dt.timezone.utc
FIELDS = {'id', 'name', 'role', 'created_at', 'created_by', 'revoked_at', 'last_used_at', 'templates', 'host',
          'expires_at'}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def assert_no_hash(value, *hashes):
    """No record carries a hash: neither the key nor any value."""
    records = value if isinstance(value, list) else [value]
    for record in records:
        assert set(record) == FIELDS
        assert not any(str(field) in hashes for field in record.values())


# -- creating and reading ---------------------------------------------------------------------

def test_create_returns_the_record_without_the_hash(store):
    before = utcnow()
    record = store.tokens.create('ci-bot', 'operator', digest('one'), created_by='cli:alice')
    assert_no_hash(record, digest('one'))
    assert record['name'] == 'ci-bot' and record['role'] == 'operator' and record['created_by'] == 'cli:alice'
    assert record['created_at'].tzinfo == UTC and before <= record['created_at'] <= utcnow()
    assert record['revoked_at'] is None and record['last_used_at'] is None
    assert isinstance(record['id'], int)


def test_every_role_can_be_given(store):
    for role in TOKEN_ROLES:
        host = 'db1' if role == 'agent' else None
        assert store.tokens.create('t-' + role, role, digest(role), host=host)['role'] == role
    assert [(token['role'], token['host']) for token in store.tokens.list()] == [
        ('admin', None), ('agent', 'db1'), ('operator', None), ('viewer', None)]


@pytest.mark.parametrize('host', [None, '', 'db 1', 'db\n1', 'h' * (NAME_LENGTH + 1), 7])
def test_an_agent_token_needs_its_host(store, host):
    with pytest.raises(ValueError, match='token a: an agent token needs its host'):
        store.tokens.create('a', 'agent', digest('a'), host=host)
    assert store.tokens.list() == []


@pytest.mark.parametrize('role', ['viewer', 'operator', 'admin'])
def test_only_an_agent_token_names_a_host(store, role):
    with pytest.raises(ValueError, match='token t: only an agent token names a host'):
        store.tokens.create('t', role, digest('t'), host='db1')


def test_a_token_keeps_its_expiry_and_an_expired_one_is_found_but_its_use_not_recorded(store):
    at = dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    record = store.tokens.create('temp', 'viewer', digest('temp'), expires_at=at)
    assert record['expires_at'] == at and store.tokens.list()[0]['expires_at'] == at
    found = store.tokens.by_hash(digest('temp'), now=at - dt.timedelta(seconds=1))
    assert found['expires_at'] == at and found['last_used_at'] == at - dt.timedelta(seconds=1)
    later = store.tokens.by_hash(digest('temp'), now=at + dt.timedelta(days=1))
    assert later['last_used_at'] == at - dt.timedelta(seconds=1), 'an expired token\'s use is not recorded'
    with pytest.raises(ValueError, match='expires_at must be a timezone-aware datetime'):
        store.tokens.create('naive', 'viewer', digest('naive'), expires_at=dt.datetime(2030, 1, 1))


def test_token_by_hash_finds_the_live_token(store):
    created = store.tokens.create('reader', 'viewer', digest('r'))
    found = store.tokens.by_hash(digest('r'))
    assert_no_hash(found, digest('r'))
    assert {key: found[key] for key in FIELDS - {'last_used_at'}} == \
        {key: created[key] for key in FIELDS - {'last_used_at'}}
    assert store.tokens.by_hash(digest('unknown')) is None


def test_list_is_by_name_and_hides_revoked_tokens_unless_asked(store):
    for name in ('zeta', 'alpha', 'Mid', 'beta'):
        store.tokens.create(name, 'viewer', digest(name))
    store.tokens.revoke('beta')
    listed = store.tokens.list()
    assert_no_hash(listed, *(digest(name) for name in ('zeta', 'alpha', 'Mid', 'beta')))
    assert [token['name'] for token in listed] == ['Mid', 'alpha', 'zeta']  # binary order, as on both backends
    everything = store.tokens.list(include_revoked=True)
    assert [token['name'] for token in everything] == ['Mid', 'alpha', 'beta', 'zeta']
    assert [token['name'] for token in everything if token['revoked_at']] == ['beta']


def test_an_empty_store_has_no_tokens(store):
    assert store.tokens.list() == [] and store.tokens.list(include_revoked=True) == []


# -- revoking -----------------------------------------------------------------------------------

def test_revoke_is_final_and_idempotent(store):
    store.tokens.create('old', 'admin', digest('old'))
    first = store.tokens.revoke('old')
    assert_no_hash(first, digest('old'))
    assert first['revoked_at'] is not None and first['revoked_at'].tzinfo == UTC
    assert store.tokens.by_hash(digest('old')) is None
    again = store.tokens.revoke('old')
    assert again == first, 'revoking again keeps the first revocation time'


def test_revoking_an_unknown_token_names_it_and_says_what_to_run(store):
    with pytest.raises(UnknownToken, match=r"no API token named ghost in the store: 'dbfleet tokens list") as caught:
        store.tokens.revoke('ghost')
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, StoreError)
    assert caught.value.name == 'ghost'


def test_revoke_refuses_a_name_no_token_can_have(store):
    with pytest.raises(ValueError, match='token name must not contain whitespace'):
        store.tokens.revoke('two\nlines')


# -- names are never reused ---------------------------------------------------------------------

def test_a_name_is_taken_even_once_revoked(store):
    store.tokens.create('deploy', 'operator', digest('d1'))
    message = r"a token named deploy already exists: pick another name, or revoke it \('dbfleet tokens revoke deploy'\)"
    with pytest.raises(ValueError, match=message):
        store.tokens.create('deploy', 'viewer', digest('d2'))
    store.tokens.revoke('deploy')
    with pytest.raises(ValueError, match=message):
        store.tokens.create('deploy', 'viewer', digest('d3'))
    assert [token['name'] for token in store.tokens.list(include_revoked=True)] == ['deploy']


def test_a_hash_is_registered_once(store):
    store.tokens.create('first', 'viewer', digest('same'))
    with pytest.raises(ValueError, match='token second: another token already has this hash') as caught:
        store.tokens.create('second', 'viewer', digest('same'))
    assert digest('same') not in str(caught.value)


def test_a_name_lost_to_a_concurrent_insert_is_the_same_error(store, store_url):
    """The race the checks cannot see: another transaction inserts the name after this one
    checked it. On MariaDB (READ COMMITTED, no gap locks) the insert goes through and the
    flush fails on the unique key (create_token turns that into the usual error; were it not
    to, the store's retry would, its second check seeing the name). SQLite serialises its
    writers, so it cannot happen there."""
    if store_url.startswith('sqlite'):
        pytest.skip('SQLite serialises writers (BEGIN IMMEDIATE): no concurrent insert can come in between')
    other = create_store_engine(store_url)
    inserted = []

    def insert_behind_its_back(session, flush_context, instances):
        if inserted:
            return
        inserted.append(True)
        with other.begin() as connection:
            connection.execute(sa.text("INSERT INTO api_tokens (name, role, token_hash, created_at) "
                                       "VALUES ('racy', 'viewer', :hash, :at)"),
                               {'hash': digest('theirs'), 'at': utcnow().replace(tzinfo=None)})

    sa.event.listen(store.transactions.writer, 'before_flush', insert_behind_its_back)
    try:
        with pytest.raises(ValueError, match='a token named racy already exists'):
            store.tokens.create('racy', 'admin', digest('mine'))
    finally:
        sa.event.remove(store.transactions.writer, 'before_flush', insert_behind_its_back)
        other.dispose()
    assert inserted
    [token] = store.tokens.list()
    assert token['role'] == 'viewer' and store.tokens.by_hash(digest('mine')) is None


_barrier = None


def _share(barrier):
    global _barrier
    _barrier = barrier


def _create_named(url, index) -> str:
    """In a worker process: create token 'shared' once every worker is ready; 'created' or the error."""
    store = open_store(url)
    try:
        _barrier.wait(timeout=120)
        try:
            store.tokens.create('shared', 'viewer', digest('racer-%d' % index))
            return 'created'
        except ValueError as error:
            return str(error)
    finally:
        store.close()


def test_one_of_many_processes_gets_a_name(store, store_url):
    context = multiprocessing.get_context('fork')  # a fork pool starts all its workers at once
    with ProcessPoolExecutor(6, mp_context=context, initializer=_share, initargs=(context.Barrier(6),)) as pool:
        outcomes = list(pool.map(_create_named, [store_url] * 6, range(6), timeout=300))
    assert outcomes.count('created') == 1
    assert all(outcome.startswith('a token named shared already exists') for outcome in outcomes
               if outcome != 'created')
    assert len(store.tokens.list()) == 1


# -- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize('name, message', [
    ('', 'token name must be a non-empty string of at most 255 characters'),
    ('n' * (NAME_LENGTH + 1), 'token name must be a non-empty string of at most 255 characters'),
    (None, 'token name must be a non-empty string'),
    (42, 'token name must be a non-empty string'),
    ('ci bot', 'token name must not contain whitespace or control characters'),
    ('ci\tbot', 'token name must not contain whitespace or control characters'),
    ('ci\n', 'token name must not contain whitespace or control characters'),
    ('ci\x00bot', 'token name must not contain whitespace or control characters'),
    ('ci\x1b[31m', 'token name must not contain whitespace or control characters'),
    ('ci\u00a0bot', 'token name must not contain whitespace or control characters'),  # no-break space
    ('ci\u200bbot', 'token name must not contain whitespace or control characters'),  # zero-width space
])
def test_bad_names_are_refused(store, name, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        store.tokens.create(name, 'viewer', digest('x'))
    assert store.tokens.list() == []


def test_the_longest_name_and_other_scripts_are_fine(store):
    for name in ('n' * NAME_LENGTH, 'équipe-données', 'ci/bot@prod:1'):
        assert store.tokens.create(name, 'viewer', digest(name))['name'] == name


@pytest.mark.parametrize('role', ['root', 'Admin', '', None, 'viewer '])
def test_an_unknown_role_is_refused_with_the_roles(store, role):
    with pytest.raises(ValueError, match=re.escape('token ci: role must be one of viewer, operator, admin, agent, '
                                                   'got %r' % (role,))):
        store.tokens.create('ci', role, digest('x'))


@pytest.mark.parametrize('token_hash', [
    '', 'abc', digest('x')[:63], digest('x') + '0', digest('x').upper(), 'g' * 64, None, 12,
    'dbf_' + 'A' * 60,  # a token itself, passed by mistake: refused and not echoed
])
def test_a_hash_must_be_64_lowercase_hex_characters(store, token_hash):
    with pytest.raises(ValueError, match='token_hash must be the SHA-256 hex digest') as caught:
        store.tokens.create('ci', 'viewer', token_hash)
    if token_hash:
        assert str(token_hash) not in str(caught.value)
    with pytest.raises(ValueError, match='token_hash must be the SHA-256 hex digest'):
        store.tokens.by_hash(token_hash)


@pytest.mark.parametrize('created_by', ['', 'w' * (NAME_LENGTH + 1), 7])
def test_created_by_must_be_a_short_string(store, created_by):
    with pytest.raises(ValueError, match='token ci: created_by must be a non-empty string of at most 255'):
        store.tokens.create('ci', 'viewer', digest('x'), created_by=created_by)


# -- last use -----------------------------------------------------------------------------------

def count_writes(store, monkeypatch) -> list[bool]:
    """The `write` flag of each transaction the store runs from now on."""
    seen: list[bool] = []
    original = store.transactions.run

    def recording(work, write=False):
        seen.append(write)
        return original(work, write=write)

    monkeypatch.setattr(store.transactions, 'run', recording)
    return seen


def test_last_use_is_recorded_at_most_once_a_minute(store, monkeypatch):
    store.tokens.create('api', 'viewer', digest('api'))
    start = dt.datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    writes = count_writes(store, monkeypatch)

    assert store.tokens.by_hash(digest('api'), now=start)['last_used_at'] == start
    assert writes == [False, True], 'first use: a read, then one write'

    writes.clear()
    for seconds in (1, 30, 59.999):
        later = start + dt.timedelta(seconds=seconds)
        assert store.tokens.by_hash(digest('api'), now=later)['last_used_at'] == start
    assert writes == [False, False, False], 'uses within a minute are reads only'
    assert store.tokens.list()[0]['last_used_at'] == start

    writes.clear()
    next_minute = start + LAST_USED_EVERY
    assert store.tokens.by_hash(digest('api'), now=next_minute)['last_used_at'] == next_minute
    assert writes == [False, True]
    assert store.tokens.list()[0]['last_used_at'] == next_minute


def test_an_earlier_clock_does_not_move_last_use_back(store):
    store.tokens.create('api', 'viewer', digest('api'))
    start = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    store.tokens.by_hash(digest('api'), now=start)
    assert store.tokens.by_hash(digest('api'), now=start - dt.timedelta(hours=1))['last_used_at'] == start


def test_each_token_has_its_own_last_use(store):
    store.tokens.create('one', 'viewer', digest('one'))
    store.tokens.create('two', 'viewer', digest('two'))
    start = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    store.tokens.by_hash(digest('one'), now=start)
    store.tokens.by_hash(digest('two'), now=start + dt.timedelta(seconds=10))
    assert {token['name']: token['last_used_at'] for token in store.tokens.list()} == {
        'one': start, 'two': start + dt.timedelta(seconds=10)}


def test_a_revoked_token_is_not_found_and_its_use_is_not_recorded(store):
    store.tokens.create('gone', 'admin', digest('gone'))
    store.tokens.revoke('gone')
    assert store.tokens.by_hash(digest('gone')) is None
    [token] = store.tokens.list(include_revoked=True)
    assert token['last_used_at'] is None


# -- runner_service.tokens ----------------------------------------------------------------------

def test_issue_shows_the_token_once_and_stores_only_its_hash(store, store_url):
    token, record = tokens.issue(store, 'ci-bot', 'operator', created_by='cli:alice')
    assert re.fullmatch(r'dbf_[A-Za-z0-9_-]{43}', token)
    assert_no_hash(record, tokens.hash_token(token))
    assert record['name'] == 'ci-bot' and record['role'] == 'operator' and record['created_by'] == 'cli:alice'
    [row] = api_token_rows(store_url)
    assert row['token_hash'] == tokens.hash_token(token) == digest(token)
    assert not any(token in str(value) or token[4:] in str(value) for value in row.values()), \
        'the clear token is nowhere in the table'


def test_authenticate_knows_live_tokens_only(store):
    token, record = tokens.issue(store, 'reader', 'viewer')
    other, _ = tokens.issue(store, 'writer', 'operator')
    found = tokens.authenticate(store, token)
    assert found['name'] == 'reader' and found['id'] == record['id'] and found['last_used_at'] is not None
    assert tokens.authenticate(store, other)['role'] == 'operator'
    assert tokens.authenticate(store, tokens.new_token()) is None, 'well formed but unknown'
    store.tokens.revoke('reader')
    assert tokens.authenticate(store, token) is None
    assert tokens.authenticate(store, other)['name'] == 'writer'


@pytest.mark.parametrize('text', [
    None, '', ' ', 'dbf_', 'Bearer dbf_' + 'a' * 43, 'dbf_' + 'a' * 43 + '\n', ' dbf_' + 'a' * 43, 'dbf_a b',
    'dbf_' + 'a' * 10_000, 'abc', b'dbf_' + b'a' * 43, 42, ['dbf_x'], {'token': 'x'}, 'dbf_\x00' * 20,
    'dbf_ééééééééééééééééééééé',
])
def test_authenticate_never_raises_for_bad_input(store, text):
    tokens.issue(store, 'someone', 'admin')
    assert tokens.authenticate(store, text) is None


def test_a_token_differs_on_every_issue(store):
    made = {tokens.issue(store, 'ci-%d' % index, 'viewer')[0] for index in range(20)}
    assert len(made) == 20
    assert_no_hash(store.tokens.list(), *(tokens.hash_token(token) for token in made))


def test_hash_token_is_the_sha256_hex_digest():
    assert tokens.hash_token('abc') == 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    assert re.fullmatch(r'[0-9a-f]{64}', tokens.hash_token(tokens.new_token()))


def test_roles_rank_viewer_operator_admin_and_agent_stands_apart():
    assert tokens.ROLES == TOKEN_ROLES == ('viewer', 'operator', 'admin', 'agent')
    ranked = ('viewer', 'operator', 'admin')
    allowed = {(role, needed) for role in tokens.ROLES for needed in ranked if tokens.allows(role, needed)}
    assert allowed == {('viewer', 'viewer'), ('operator', 'viewer'), ('operator', 'operator'),
                       ('admin', 'viewer'), ('admin', 'operator'), ('admin', 'admin')}, 'agent is not above viewer'


@pytest.mark.parametrize('role', [None, '', 'root', 'Admin', ['admin'], 3, 'agent'])
def test_an_unknown_role_is_allowed_nothing(role):
    assert not any(tokens.allows(role, needed) for needed in ('viewer', 'operator', 'admin'))


def test_verify_says_expired_from_the_injected_clock(store):
    now = dt.datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    token, record = tokens.create(store, 'quarter', 'viewer', 'cli:alice', expires='90d', now=now)
    assert record['expires_at'] == now + dt.timedelta(days=90)
    assert tokens.verify(store, token, now=now + dt.timedelta(days=89))['name'] == 'quarter'
    with pytest.raises(tokens.Refused) as refused:
        tokens.verify(store, token, now=now + dt.timedelta(days=90))
    assert refused.value.reason == 'expired' and 'expired at 2030-08-30' in refused.value.detail
    assert token not in refused.value.detail
    assert tokens.authenticate(store, token, now=now + dt.timedelta(days=91)) is None
    store.tokens.revoke('quarter')
    with pytest.raises(tokens.Refused) as refused:
        tokens.verify(store, token, now=now)
    assert refused.value.reason == 'unknown'


@pytest.mark.parametrize('expires', ['0s', '2030-05-31', 'soon', '99999999999d', '-3d'])
def test_an_expiry_in_the_past_or_unreadable_is_refused(store, expires):
    now = dt.datetime(2030, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match='token t: expires_at .* is already past|expires: '):
        tokens.create(store, 't', 'viewer', 'cli:alice', expires=expires, now=now)
    assert store.tokens.list() == [] and store.audit.list() == []


def test_create_and_revoke_are_audited_without_the_token(store):
    now = dt.datetime(2030, 6, 1, tzinfo=UTC)
    token, _ = tokens.create(store, 'agent-db1', 'agent', 'admin', host='db1', expires='2030-12-31', now=now)
    tokens.revoke(store, 'agent-db1', 'admin')
    revoked, created = store.audit.list()
    assert (created['action'], created['target'], created['actor']) == ('token.create', 'agent-db1', 'admin')
    assert created['detail'] == {'role': 'agent', 'host': 'db1', 'expires_at': '2030-12-31T00:00:00+00:00'}
    assert (revoked['action'], revoked['target']) == ('token.revoke', 'agent-db1')
    assert token not in str(store.audit.list()) and tokens.hash_token(token) not in str(store.audit.list())


@pytest.mark.parametrize('needed', ['root', '', None, 'Admin'])
def test_asking_for_an_unknown_role_is_a_bug(needed):
    with pytest.raises(ValueError, match='unknown role .* needed: use one of viewer, operator, admin'):
        tokens.allows('admin', needed)
