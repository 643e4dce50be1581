"""`dbfleet tokens create|list|revoke`: the installed console script against both store backends.
A token is printed once and never stored: the api_tokens table is read directly to prove it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

from dbfleet.store import open_store
from runner_service import tokens
from tests.helpers import dbfleet, ok, refused
from tests.store.helpers import api_token_rows

TOKEN = re.compile(r'dbf_[A-Za-z0-9_-]{43}')


def test_create_prints_the_token_once_and_stores_only_its_hash(store_url):
    completed = ok(store_url, 'tokens', 'create', 'ci-bot', '--role', 'operator')
    token = completed.stdout.strip()
    assert TOKEN.fullmatch(token), 'stdout is the token alone, for TOKEN=$(dbfleet tokens create ...)'
    assert completed.stderr.count('\n') == 1 and 'cannot be shown again' in completed.stderr
    [row] = api_token_rows(store_url)
    assert row['name'] == 'ci-bot' and row['role'] == 'operator' and row['created_by'].startswith('cli:')
    assert row['token_hash'] == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token[4:] in str(value) for value in row.values()), 'the clear token is not in the table'

    listed = ok(store_url, 'tokens', 'list').stdout
    assert 'ci-bot' in listed and 'operator' in listed and '1 token(s)' in listed
    assert token[4:] not in listed and row['token_hash'] not in listed


def test_create_json_has_the_token_and_the_record_but_no_hash(store_url):
    created = json.loads(ok(store_url, 'tokens', 'create', 'deployer', '--role', 'admin', '--json').stdout)
    assert set(created) == {'token', 'id', 'name', 'role', 'created_at', 'created_by', 'revoked_at', 'last_used_at',
                            'templates', 'host', 'expires_at'}
    assert created['name'] == 'deployer' and created['role'] == 'admin' and TOKEN.fullmatch(created['token'])
    assert created['revoked_at'] is None and created['last_used_at'] is None
    [row] = api_token_rows(store_url)
    assert row['token_hash'] == hashlib.sha256(created['token'].encode()).hexdigest()
    assert created['token'] not in row.values()


def test_create_refuses_bad_input_in_one_line(store_url):
    missing = dbfleet(store_url, 'tokens', 'create', 'nobody')
    assert missing.returncode == 2 and "Missing option '--role'" in missing.stderr, 'no role by default'
    assert refused(store_url, 'tokens', 'create', 'ci', '--role', 'root') == \
        "dbfleet: --role must be one of viewer, operator, admin, agent, got 'root'"
    assert 'must not contain whitespace or control characters' in refused(
        store_url, 'tokens', 'create', 'ci bot', '--role', 'viewer')
    assert 'at most 255 characters' in refused(store_url, 'tokens', 'create', 'n' * 256, '--role', 'viewer')
    ok(store_url, 'tokens', 'create', 'ci', '--role', 'viewer')
    assert refused(store_url, 'tokens', 'create', 'ci', '--role', 'admin').startswith(
        "dbfleet: a token named ci already exists: pick another name, or revoke it ('dbfleet tokens revoke ci')")
    assert [(row['name'], row['role']) for row in api_token_rows(store_url)] == [('ci', 'viewer')]


def test_revoke_hides_a_token_from_the_list_until_all_is_asked(store_url):
    for name, role in (('reader', 'viewer'), ('old', 'admin')):
        ok(store_url, 'tokens', 'create', name, '--role', role)
    first = ok(store_url, 'tokens', 'revoke', 'old').stdout
    assert first.startswith('token old revoked at ')
    assert ok(store_url, 'tokens', 'revoke', 'old').stdout == first, 'revoking again keeps the first time'

    listed = json.loads(ok(store_url, 'tokens', 'list', '--json').stdout)
    assert [token['name'] for token in listed] == ['reader']
    everything = json.loads(ok(store_url, 'tokens', 'list', '--all', '--json').stdout)
    assert [(token['name'], token['revoked_at'] is not None) for token in everything] == [('old', True),
                                                                                          ('reader', False)]
    assert all('token_hash' not in token and 'token' not in token for token in everything)

    table = ok(store_url, 'tokens', 'list', '--all').stdout
    assert re.search(r'old\s+admin\s+-\s+\S+ \S+\s+-\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d', table), table
    assert '2 token(s)' in table
    assert not any(row['token_hash'] in table for row in api_token_rows(store_url))
    live = ok(store_url, 'tokens', 'list').stdout
    assert 'reader' in live and 'old' not in live and '1 token(s)' in live


def test_revoking_an_unknown_token_says_what_to_run(store_url):
    assert refused(store_url, 'tokens', 'revoke', 'ghost') == \
        "dbfleet: no API token named ghost in the store: 'dbfleet tokens list --all' shows them all"


def test_a_name_that_looks_like_markup_is_listed_as_it_is(store_url):
    ok(store_url, 'tokens', 'create', '[/red]ops', '--role', 'viewer')
    assert re.search(r'^\[/red\]ops\s+viewer\s', ok(store_url, 'tokens', 'list').stdout, re.MULTILINE)


def test_an_agent_token_names_its_host_and_any_token_may_expire(store_url):
    created = json.loads(ok(store_url, 'tokens', 'create', 'agent-db1', '--role', 'agent', '--host', 'db1',
                            '--expires', '90d', '--json').stdout)
    assert created['role'] == 'agent' and created['host'] == 'db1' and created['expires_at'] is not None
    dated = ok(store_url, 'tokens', 'create', 'auditor', '--role', 'viewer', '--expires', '2999-12-31')
    assert 'expires 2999-12-31 00:00:00' in dated.stderr
    listed = {token['name']: token for token in json.loads(ok(store_url, 'tokens', 'list', '--json').stdout)}
    assert listed['auditor']['expires_at'].startswith('2999-12-31') and listed['auditor']['expired'] is False
    assert listed['agent-db1']['host'] == 'db1'
    table = ok(store_url, 'tokens', 'list').stdout
    assert re.search(r'^auditor\s+viewer\s+-\s+\S+ \S+\s+2999-12-31 00:00:00\s', table, re.MULTILINE), table
    assert re.search(r'^agent-db1\s+agent\s+db1\s', table, re.MULTILINE), table

    assert refused(store_url, 'tokens', 'create', 'a2', '--role', 'agent') == \
        'dbfleet: an agent token needs --host: the bridged host it reports for'
    assert refused(store_url, 'tokens', 'create', 'o2', '--role', 'operator', '--host', 'db1') == \
        'dbfleet: --host is for agent tokens only (role operator)'
    assert 'already past' in refused(store_url, 'tokens', 'create', 'old', '--role', 'viewer', '--expires',
                                     '2001-01-01')
    assert 'is neither a duration' in refused(store_url, 'tokens', 'create', 'x', '--role', 'viewer', '--expires',
                                              'soon')
    assert 'too far' in refused(store_url, 'tokens', 'create', 'x', '--role', 'viewer', '--expires', '99999999999d')
    assert sorted(row['name'] for row in api_token_rows(store_url)) == ['agent-db1', 'auditor']


def test_an_expired_token_is_listed_as_expired(store_url):
    with open_store(store_url) as store:
        store.tokens.create('gone', 'viewer', tokens.hash_token(tokens.new_token()),
                            expires_at=dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc))
    assert re.search(r'^gone\s+viewer\s+-\s+\S+ \S+\s+2001-01-01 00:00:00 \(expired\)', ok(
        store_url, 'tokens', 'list').stdout, re.MULTILINE)
    assert json.loads(ok(store_url, 'tokens', 'list', '--json').stdout)[0]['expired'] is True


def test_create_and_revoke_are_in_the_audit_log_which_dbfleet_audit_reads(store_url):
    token = ok(store_url, 'tokens', 'create', 'ci', '--role', 'operator').stdout.strip()
    ok(store_url, 'tokens', 'revoke', 'ci')
    entries = json.loads(ok(store_url, 'audit', '--json').stdout)['entries']
    assert [(entry['action'], entry['target']) for entry in entries] == [('token.revoke', 'ci'), ('token.create', 'ci')]
    assert all(entry['actor'].startswith('cli:') for entry in entries)
    assert entries[1]['detail'] == {'role': 'operator', 'host': None, 'expires_at': None}
    assert token not in json.dumps(entries) and token[4:] not in ok(store_url, 'audit').stdout
    page = json.loads(ok(store_url, 'audit', '--limit', '1', '--json').stdout)
    assert [entry['action'] for entry in page['entries']] == ['token.revoke'] and page['next_cursor']
    older = json.loads(ok(store_url, 'audit', '--cursor', str(page['next_cursor']), '--json').stdout)
    assert [entry['action'] for entry in older['entries']] == ['token.create'] and older['next_cursor'] is None
    assert json.loads(ok(store_url, 'audit', '--action', 'token.create', '--since', '1d', '--json').stdout)[
        'entries'][0]['target'] == 'ci'
    assert json.loads(ok(store_url, 'audit', '--until', '2001-01-01', '--json').stdout)['entries'] == []
    assert '--since' in refused(store_url, 'audit', '--since', 'yesterday')
