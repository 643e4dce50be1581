"""TLS login options against the fleet's primary, which serves TLS with the fleet's own CA
(devtools/fleet/tls.py); the analytics instance offers none."""

from __future__ import annotations

import contextlib

import pytest
from ansible_collections.dbfleet.mysql.plugins.module_utils.mysql import MySQLConnectError, mysql_connect

from devtools.fleet import INSTANCES, MONITOR_PASSWORD, MONITOR_USER
from devtools.fleet.tls import write_ca
from tests.helpers import run_fresh

pytestmark = pytest.mark.fleet

X509_USER, X509_PASSWORD = 'dbfleet_x509', 'x509-pw-Secret4'


def login(name, **extra):
    params = dict(login_host='127.0.0.1', login_port=INSTANCES[name].port, login_user=MONITOR_USER,
                  login_password=MONITOR_PASSWORD, config_file='', connect_timeout=10)
    params.update(extra)
    return params


def session_tls(connection):
    with connection.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
        return dict((row['Variable_name'], row['Value']) for row in cursor.fetchall())


@pytest.fixture(scope='module')
def tls(fleet):
    return INSTANCES['primary'].tls_files


@pytest.fixture
def x509_user(fleet):
    """An account on the primary that must present a certificate signed by the fleet's CA."""
    statements = ["CREATE OR REPLACE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s' REQUIRE X509" % (X509_USER, X509_PASSWORD),
                  "GRANT SELECT ON *.* TO '%s'@'127.0.0.1'" % X509_USER]
    with contextlib.closing(fleet.admin('primary')) as admin, admin.cursor() as cursor:
        cursor.execute('SET SESSION sql_log_bin = 0')  # the replica needs none of this
        for statement in statements:
            cursor.execute(statement)
    yield X509_USER
    with contextlib.closing(fleet.admin('primary')) as admin, admin.cursor() as cursor:
        cursor.execute('SET SESSION sql_log_bin = 0')
        cursor.execute("DROP USER IF EXISTS '%s'@'127.0.0.1'" % X509_USER)


def test_without_tls_options_tls_is_used_when_the_server_offers_it(tls):
    with contextlib.closing(mysql_connect(login('primary'))) as connection:
        status = session_tls(connection)
    assert status['Ssl_version'].startswith('TLS') and status['Ssl_cipher']


def test_tls_works_in_a_fresh_process_where_ssl_is_loaded_on_first_use(tls):
    """As in a module run: ssl is not loaded by the import, then the handshake loads it."""
    output = run_fresh('''
        import sys
        from ansible_collections.dbfleet.mysql.plugins.module_utils.mysql import mysql_connect
        assert '_ssl' not in sys.modules
        login = dict(login_host='127.0.0.1', login_port=%d, login_user=%r, login_password=%r, config_file='')
        for extra in ({}, dict(ca_cert=%r, check_hostname=True)):
            with mysql_connect(dict(login, **extra)).cursor() as cursor:
                cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
                print(cursor.fetchone()['Value'])
    ''' % (INSTANCES['primary'].port, MONITOR_USER, MONITOR_PASSWORD, str(tls.ca)))
    assert [line[:3] for line in output.split()] == ['TLS', 'TLS']


def test_without_tls_options_a_server_without_tls_is_reached_in_clear(fleet):
    with contextlib.closing(mysql_connect(login('analytics'))) as connection:
        assert session_tls(connection)['Ssl_version'] == ''


def test_ca_cert_verifies_the_server_and_its_name(tls):
    with contextlib.closing(mysql_connect(login('primary', ca_cert=str(tls.ca), check_hostname=True))) as connection:
        assert session_tls(connection)['Ssl_version'].startswith('TLS')


def test_a_server_certificate_from_another_ca_is_refused(tls, tmp_path):
    other = write_ca(tmp_path / 'other-ca.pem')
    with pytest.raises(MySQLConnectError) as error:
        mysql_connect(login('primary', ca_cert=str(other)))
    message = str(error.value)
    assert '%s@127.0.0.1:%d' % (MONITOR_USER, INSTANCES['primary'].port) in message
    assert 'certificate verify failed' in message
    assert MONITOR_PASSWORD not in message


def test_ca_cert_against_a_server_without_tls_fails_instead_of_going_clear(tls):
    with pytest.raises(MySQLConnectError, match="SSL is required but the server doesn't support it"):
        mysql_connect(login('analytics', ca_cert=str(tls.ca)))


def test_client_certificate_logs_in_an_account_that_requires_x509(tls, x509_user):
    params = login('primary', login_user=x509_user, login_password=X509_PASSWORD, ca_cert=str(tls.ca))
    with pytest.raises(MySQLConnectError, match='access denied'):
        mysql_connect(params)
    params.update(client_cert=str(tls.client_cert), client_key=str(tls.client_key))
    with contextlib.closing(mysql_connect(params)) as connection:
        assert session_tls(connection)['Ssl_version'].startswith('TLS')


def test_facts_report_the_connection_tls_through_ansible_playbook(tls, run_module):
    login_vars = dict((key, '{{ %s }}' % key) for key in ('login_host', 'login_port', 'login_user', 'login_password'))
    hosts = dict((name, dict(login_host='127.0.0.1', login_port=INSTANCES[name].port, login_user=MONITOR_USER,
                             login_password=MONITOR_PASSWORD)) for name in ('primary', 'analytics'))
    run = run_module(hosts, dict(login_vars, config_file='', gather_subset=['!all']))
    assert run.rc == 0, run.output
    assert run.facts('primary')['server']['connection_tls']['version'].startswith('TLS')
    assert run.facts('analytics')['server']['connection_tls'] is None

    hosts['primary']['ca'] = str(tls.ca)
    run = run_module({'primary': hosts['primary']},
                     dict(login_vars, config_file='', gather_subset=['!all'], ca_cert='{{ ca }}', check_hostname=True))
    assert run.rc == 0, run.output
    assert run.facts('primary')['server']['connection_tls']['cipher']


def test_certificates_given_as_text_log_in_and_leave_no_file(tls, x509_user, run_module, tmp_path):
    """ca_cert_data / client_cert_data / client_key_data (what a dbfleet MySQL credential hands a
    play): written into the module's own temporary directory for the run, gone after it; the key
    never in the output."""
    texts = {name: path.read_text() for name, path in (('ca', tls.ca), ('cert', tls.client_cert),
                                                       ('key', tls.client_key))}
    host = dict(login_host='127.0.0.1', login_port=INSTANCES['primary'].port, login_user=x509_user,
                login_password=X509_PASSWORD, **texts)
    args = dict((key, '{{ %s }}' % key) for key in ('login_host', 'login_port', 'login_user', 'login_password'))
    args.update(config_file='', gather_subset=['!all'], check_hostname=True, ca_cert_data='{{ ca }}',
                client_cert_data='{{ cert }}', client_key_data='{{ key }}')
    remote_tmp = tmp_path / 'remote-tmp'
    run = run_module({'primary': host}, args, extra_args=['-e', 'ansible_remote_tmp=%s' % remote_tmp, '-v'])
    assert run.rc == 0 and not run.results['primary'].get('failed'), run.output
    assert run.facts('primary')['server']['connection_tls']['version'].startswith('TLS')
    key_lines = [line for line in texts['key'].splitlines() if not line.startswith('-----')]
    assert not any(line in run.output for line in key_lines)
    assert remote_tmp.is_dir() and not list(remote_tmp.rglob('*.pem'))

    run = run_module({'primary': host}, dict(args, client_cert_data=None, client_key_data=None))
    assert run.results['primary']['failed'] and 'access denied' in run.results['primary']['msg'], 'X509 required'
    run = run_module({'primary': host}, dict(args, ca_cert=str(tls.ca)))
    assert 'mutually exclusive' in run.results['primary']['msg'] and 'ca_cert' in run.results['primary']['msg']
    run = run_module({'primary': host}, dict(args, client_key_data='not a key at all'))
    assert run.results['primary']['msg'] == 'client_key_data is not PEM text (a -----BEGIN ...----- block)'
