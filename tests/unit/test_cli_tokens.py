"""`dbfleet tokens create|list|revoke`: the installed console script against both store backends.
A token is printed once and never stored: the api_tokens table is read directly to prove it."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess

from tests.conftest import REPO, VENV_BIN, ansible_env
from tests.store.test_tokens import rows as table_rows

TOKEN = re.compile(r'dbf_[A-Za-z0-9_-]{43}')


def dbfleet(store_url, *args):
    return subprocess.run([str(VENV_BIN / 'dbfleet'), *args], cwd=REPO, env=ansible_env(DBFLEET_STORE_URL=store_url),
                          capture_output=True, text=True, timeout=300, check=False)


def ok(store_url, *args) -> subprocess.CompletedProcess:
    completed = dbfleet(store_url, *args)
    assert completed.returncode == 0, completed.stderr
    return completed


def refused(store_url, *args) -> str:
    """A user error: exit code 2, one line on stderr, nothing on stdout. Returns the line."""
    completed = dbfleet(store_url, *args)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stdout == ''
    assert completed.stderr.count('\n') == 1 and completed.stderr.startswith('dbfleet: '), completed.stderr
    return completed.stderr.strip()


def test_create_prints_the_token_once_and_stores_only_its_hash(store_url):
    completed = ok(store_url, 'tokens', 'create', 'ci-bot', '--role', 'operator')
    token = completed.stdout.strip()
    assert TOKEN.fullmatch(token), 'stdout is the token alone, for TOKEN=$(dbfleet tokens create ...)'
    assert completed.stderr.count('\n') == 1 and 'cannot be shown again' in completed.stderr
    [row] = table_rows(store_url)
    assert row['name'] == 'ci-bot' and row['role'] == 'operator' and row['created_by'].startswith('cli:')
    assert row['token_hash'] == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token[4:] in str(value) for value in row.values()), 'the clear token is not in the table'

    listed = ok(store_url, 'tokens', 'list').stdout
    assert 'ci-bot' in listed and 'operator' in listed and '1 token(s)' in listed
    assert token[4:] not in listed and row['token_hash'] not in listed


def test_create_json_has_the_token_and_the_record_but_no_hash(store_url):
    created = json.loads(ok(store_url, 'tokens', 'create', 'deployer', '--role', 'admin', '--json').stdout)
    assert set(created) == {'token', 'id', 'name', 'role', 'created_at', 'created_by', 'revoked_at', 'last_used_at',
                            'templates'}
    assert created['name'] == 'deployer' and created['role'] == 'admin' and TOKEN.fullmatch(created['token'])
    assert created['revoked_at'] is None and created['last_used_at'] is None
    [row] = table_rows(store_url)
    assert row['token_hash'] == hashlib.sha256(created['token'].encode()).hexdigest()
    assert created['token'] not in row.values()


def test_create_refuses_bad_input_in_one_line(store_url):
    missing = dbfleet(store_url, 'tokens', 'create', 'nobody')
    assert missing.returncode == 2 and "Missing option '--role'" in missing.stderr, 'no role by default'
    assert refused(store_url, 'tokens', 'create', 'ci', '--role', 'root') == \
        "dbfleet: --role must be one of viewer, operator, admin, got 'root'"
    assert 'must not contain whitespace or control characters' in refused(
        store_url, 'tokens', 'create', 'ci bot', '--role', 'viewer')
    assert 'at most 255 characters' in refused(store_url, 'tokens', 'create', 'n' * 256, '--role', 'viewer')
    ok(store_url, 'tokens', 'create', 'ci', '--role', 'viewer')
    assert refused(store_url, 'tokens', 'create', 'ci', '--role', 'admin').startswith(
        "dbfleet: a token named ci already exists: pick another name, or revoke it ('dbfleet tokens revoke ci')")
    assert [(row['name'], row['role']) for row in table_rows(store_url)] == [('ci', 'viewer')]


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
    assert re.search(r'old\s+admin\s+\S+ \S+\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d', table), table
    assert '2 token(s)' in table
    assert not any(row['token_hash'] in table for row in table_rows(store_url))
    live = ok(store_url, 'tokens', 'list').stdout
    assert 'reader' in live and 'old' not in live and '1 token(s)' in live


def test_revoking_an_unknown_token_says_what_to_run(store_url):
    assert refused(store_url, 'tokens', 'revoke', 'ghost') == \
        "dbfleet: no API token named ghost in the store: 'dbfleet tokens list --all' shows them all"


def test_a_name_that_looks_like_markup_is_listed_as_it_is(store_url):
    ok(store_url, 'tokens', 'create', '[/red]ops', '--role', 'viewer')
    assert re.search(r'^\[/red\]ops\s+viewer\s', ok(store_url, 'tokens', 'list').stdout, re.MULTILINE)
