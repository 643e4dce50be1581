"""The checks hostile input meets at the boundary, one by one (the service tests drive them
through the real API): extra vars, host patterns, secret names, JSON bodies, bounded commands,
private directories."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from dbfleet.paths import private_directory
from runner_service.api.request_guard import Refused, check_json
from runner_service.bounded import MemoryLimit, TimeLimit, run_bounded
from runner_service.extra_vars import ANSIBLE_MARKER_KEYS, ExtraVarsError, check_extra_vars
from runner_service.host_patterns import HostPatternError, check_host_pattern
from runner_service.secret_box import MASK, looks_secret, secret_values, split_extra_vars
from runner_service.worker.run import untemplated


def test_ansible_core_recognises_no_marker_key_we_do_not_refuse():
    """The decoder of the installed ansible-core: every key it turns into something else."""
    from ansible._internal._json._profiles import _legacy

    recognised = set(_legacy.Decoder._profile.deserialize_map)
    assert recognised <= set(ANSIBLE_MARKER_KEYS)
    for key in recognised:
        with pytest.raises(ExtraVarsError, match='__ansible'):
            check_extra_vars({'v': [{'x': 1, key: 'y'}]}, allow_connection_vars=True)


@pytest.mark.parametrize('values', [
    {'__ansible_unsafe': 'x'},
    {'a': {'b': [{'c': {'__ansible_vault': 'x'}}]}},
    {'a': [[[{'keep': 1, '__ansible_type': 'x'}]]]},
    {'a': {'__Ansible_Unsafe': 'x'}},
])
def test_marker_keys_are_refused_at_any_depth(values):
    with pytest.raises(ExtraVarsError, match="Ansible's own markers"):
        check_extra_vars(values, allow_connection_vars=True)


@pytest.mark.parametrize('values, words', [
    ({'a': 'x\x00'}, 'NUL'),
    ({'a\x00': 1}, 'NUL'),
    ({'a': [float('nan')]}, 'NaN'),
    ({'a': {'b': float('-inf')}}, 'NaN'),
    ({'a': {1, 2}}, 'not a JSON value'),
])
def test_what_json_should_not_carry_is_refused(values, words):
    with pytest.raises(ExtraVarsError, match=words):
        check_extra_vars(values, allow_connection_vars=True)


def test_nesting_is_bounded_without_recursion():
    deep: object = 'x'
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ExtraVarsError, match='nested more than'):
        check_extra_vars({'a': deep}, allow_connection_vars=True)


def test_connection_variables_only_where_allowed():
    values = {'ansible_host': '10.0.0.1', 'ANSIBLE_python_interpreter': '/bin/x'}
    assert check_extra_vars(values, allow_connection_vars=True) is values
    with pytest.raises(ExtraVarsError, match=r'ansible_\*'):
        check_extra_vars(values, allow_connection_vars=False)
    assert check_extra_vars({'value': {'ansible_host': 'nested is data'}}, allow_connection_vars=False)


def test_error_messages_never_carry_long_input():
    with pytest.raises(ExtraVarsError) as error:
        check_extra_vars({'k' * 1000: {'__ansible_unsafe' + 'u' * 1000: 1}}, allow_connection_vars=True)
    assert len(str(error.value)) < 300


def test_every_string_is_written_unsafe_and_keys_are_kept():
    assert untemplated({'a': ['{{ x }}', 1, {'k': None}]}) == {
        'a': [{'__ansible_unsafe': '{{ x }}'}, 1, {'k': None}]}


@pytest.mark.parametrize('pattern', ['@x', ' @x', 'a,@x', 'a:@x', 'a:!@x', 'a,&@x', 'a\n', 'a\x00',
                                     # Ansible also splits on whitespace and strips Unicode spaces
                                     'x @/etc', '\u00a0@/etc', 'x\u3000@/etc', 'x,\u000b@/etc'])
def test_a_file_is_never_a_host_pattern(pattern):
    with pytest.raises(HostPatternError):
        check_host_pattern(pattern)


@pytest.mark.parametrize('pattern', ['node1', 'web*:!db1', 'a:&b', 'db[1:3]', '~^db\\d+', 'all'])
def test_host_patterns_pass(pattern):
    assert check_host_pattern(pattern) == pattern


@pytest.mark.parametrize('name', ['mysql_pwd', 'MYSQL_PWD', 'x_pwd', 'db_password', 'PassPhrase', 'api_token',
                                  'my_secret', 'sshKey', 'private_keys', 'db_credentials', 'pw'])
def test_secret_names(name):
    assert looks_secret(name)


@pytest.mark.parametrize('name', ['region', 'user', 'value', 'host', 'sleep_seconds'])
def test_plain_names(name):
    assert not looks_secret(name)


def test_nested_secrets_are_masked_and_only_they_are_hunted_in_output():
    public, secret = split_extra_vars({'db': {'user': 'admin', 'Pwd': 'hunter22'}, 'list': [{'token': 'abcd1'}]})
    assert public == {'db': {'user': 'admin', 'Pwd': MASK}, 'list': [{'token': MASK}]}
    assert secret_values(secret) == {'hunter22', 'abcd1'}


@pytest.mark.parametrize('body', [b'{"a": NaN}', b'{"a": [Infinity]}', b'{"a": {"b": -Infinity}}',
                                  b'{"a": 1e999}', b'{"a": "\\u0000"}', b'{"\\u0000": 1}',
                                  b'[' * 100000 + b']' * 100000])
def test_json_bodies_that_are_refused(body):
    with pytest.raises(Refused) as refused:
        check_json(body, 'application/json')
    assert refused.value.status == 422


@pytest.mark.parametrize('body', [b'{"a": 1.5, "b": "NaN", "c": [1e300]}', b'not json'])
def test_json_bodies_that_pass(body):
    check_json(body, 'application/json')


def test_a_bounded_command_that_takes_too_long_is_killed(tmp_path):
    with pytest.raises(TimeLimit):
        run_bounded([['/bin/sh', '-c', 'sleep 30 & wait']], str(tmp_path), dict(os.environ), 0.5, None)


def test_a_bounded_command_that_runs_out_of_memory(tmp_path):
    at_once = [sys.executable, '-c', 'x = bytearray(400 * 1024 * 1024)']
    growing = [sys.executable, '-c', 'x = []\ntry:\n    while True: x.append(bytearray(1 << 20))\nexcept '
               'MemoryError:\n    raise SystemExit(1)']
    for hog in (at_once, growing):
        with pytest.raises(MemoryLimit):
            run_bounded([hog], str(tmp_path), dict(os.environ), 60, 200 * 1024 * 1024)
    fine = run_bounded([[sys.executable, '-c', 'print(1)']], str(tmp_path), dict(os.environ), 60, 200 * 1024 * 1024)
    assert fine[0].returncode == 0 and fine[0].stdout == '1\n'


def test_private_directories(tmp_path):
    shared = tmp_path / 'shared'
    shared.mkdir(mode=0o755)
    made = private_directory(shared / 'var' / 'runs' / 'job')
    modes = [stat.S_IMODE(os.stat(path).st_mode) for path in (shared / 'var', shared / 'var' / 'runs', made)]
    assert modes == [0o700, 0o700, 0o700]
    loose = tmp_path / 'loose'
    loose.mkdir(mode=0o755)
    private_directory(loose, tighten_existing=False)
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o755
    private_directory(loose)
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o700


def test_json_of_extra_vars_round_trips_as_ansible_reads_it():
    """What execution writes (-e @file) decodes, with ansible-core's own decoder, to the values sent."""
    from ansible.module_utils.common.json import get_decoder

    values = {'a': ["{{ lookup('pipe', 'id') }}", 1, {'k': 'v'}]}
    decoded = json.loads(json.dumps(untemplated(values)), cls=get_decoder('legacy'))
    assert decoded == values
