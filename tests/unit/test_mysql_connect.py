"""Login options -> PyMySQL arguments, and connection errors (module_utils/mysql.py)."""

import socket

import pytest
from ansible_collections.dbfleet.mysql.plugins.module_utils.mysql import (
    MySQLConnectError,
    connection_kwargs,
    describe_target,
    mysql_common_argument_spec,
    mysql_connect,
)


def params(**overrides):
    values = dict((name, spec.get('default')) for name, spec in mysql_common_argument_spec().items())
    values.update(overrides)
    return values


def test_password_is_no_log_in_the_shared_spec():
    assert mysql_common_argument_spec()['login_password']['no_log'] is True


def test_tcp_options(tmp_path):
    kwargs = connection_kwargs(params(login_host='db1', login_port=3307, login_user='u', login_password='p',
                                      config_file=str(tmp_path / 'missing.cnf')))
    assert (kwargs['host'], kwargs['port'], kwargs['user'], kwargs['password']) == ('db1', 3307, 'u', 'p')
    assert 'unix_socket' not in kwargs and 'read_default_file' not in kwargs


def test_socket_wins_over_host():
    kwargs = connection_kwargs(params(login_unix_socket='/run/x.sock', login_host='db1'))
    assert kwargs['unix_socket'] == '/run/x.sock' and 'host' not in kwargs


def test_config_file_read_when_present_and_disabled_by_empty_string(tmp_path):
    cnf = tmp_path / 'my.cnf'
    cnf.write_text('[client]\nuser=fromfile\n')
    assert connection_kwargs(params(config_file=str(cnf)))['read_default_file'] == str(cnf)
    assert 'read_default_file' not in connection_kwargs(params(config_file=''))


def test_tls_options():
    kwargs = connection_kwargs(params(ca_cert='/ca.pem', client_cert='/c.pem', client_key='/k.pem',
                                      check_hostname=False))
    assert kwargs['ssl_ca'] == '/ca.pem' and kwargs['ssl_verify_cert'] is True
    assert kwargs['ssl_verify_identity'] is False
    assert kwargs['ssl_cert'] == '/c.pem' and kwargs['ssl_key'] == '/k.pem'


def test_describe_target():
    assert describe_target(params(login_user='m', login_host='db1', login_port=3307)) == 'm@db1:3307'
    assert describe_target(params(login_user='m', login_unix_socket='/s')) == 'm@socket /s'


def _closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_unreachable_port_names_target_not_password():
    port = _closed_port()
    with pytest.raises(MySQLConnectError) as error:
        mysql_connect(params(login_host='127.0.0.1', login_port=port, login_user='m',
                             login_password='s3cret-Pass', config_file='', connect_timeout=3))
    message = str(error.value)
    assert '127.0.0.1:%d' % port in message and 'unreachable' in message
    assert 's3cret-Pass' not in message
    assert error.value.errno == 2003


def test_missing_socket_file_is_reported_before_connecting(tmp_path):
    with pytest.raises(MySQLConnectError, match='login_unix_socket .*does not exist'):
        mysql_connect(params(login_unix_socket=str(tmp_path / 'nope.sock'), config_file=''))
