# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection handling shared by every dbfleet.mysql module.

One argument spec (documented once in doc_fragments/mysql.py) and one way to connect,
so that every module accepts the same login options and reports connection failures
the same way: naming the target, never the password.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback


class _DeferredModule(object):
    """Stands in for a module, which is imported on first attribute access."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attribute):
        return getattr(importlib.import_module(self._name), attribute)


class _Refused(object):
    """A sys.meta_path finder that makes the named top-level packages look absent."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition('.')[0] in self.names:
            raise ModuleNotFoundError('deferred: %s' % fullname, name=fullname)
        return None


def _default_backend():
    return importlib.import_module('cryptography.hazmat.backends').default_backend()


def _import_pymysql():
    """Import PyMySQL without running ssl and cryptography, which it imports up front and a
    module run rarely needs: ssl only when the server offers TLS, cryptography only for the RSA
    password exchange of sha256_password / caching_sha2_password without TLS. Loading both costs
    ~20 ms of a ~60 ms module run. PyMySQL is imported with both looking absent, then its
    references to them are replaced by stand-ins that import them on first use, so that
    everything works as before. Nothing is deferred when they were imported already, when they
    are not installed, or when this PyMySQL does not name them where expected."""
    deferred = [name for name in ('ssl', 'cryptography')
                if name not in sys.modules and importlib.util.find_spec(name) is not None]
    if 'pymysql' in sys.modules or not deferred:
        import pymysql.cursors
        return pymysql
    finder = _Refused(deferred)
    sys.meta_path.insert(0, finder)
    try:
        import pymysql.cursors
    except ImportError:  # this PyMySQL needs one of them at import: import it as it is
        for name in [name for name in sys.modules if name == 'pymysql' or name.startswith('pymysql.')]:
            del sys.modules[name]
        sys.meta_path.remove(finder)
        import pymysql.cursors
        return pymysql
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
    connections, auth = pymysql.connections, pymysql._auth
    if 'ssl' in deferred and getattr(connections, 'ssl', True) is None and hasattr(connections, 'SSL_ENABLED'):
        connections.ssl = _DeferredModule('ssl')
        connections.SSL_ENABLED = True
    if 'cryptography' in deferred and getattr(auth, '_have_cryptography', None) is False:
        auth.serialization = _DeferredModule('cryptography.hazmat.primitives.serialization')
        auth.hashes = _DeferredModule('cryptography.hazmat.primitives.hashes')
        auth.padding = _DeferredModule('cryptography.hazmat.primitives.asymmetric.padding')
        auth.default_backend = _default_backend
        auth._have_cryptography = True
    return pymysql


try:
    pymysql = _import_pymysql()
    from pymysql.cursors import DictCursor
    PYMYSQL_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised by the module's missing_required_lib path
    pymysql = None
    DictCursor = None
    PYMYSQL_IMPORT_ERROR = traceback.format_exc()


class _PreferredTLS(object):
    """The unverified context of PyMySQL's PREFERRED mode, made only when the server offers TLS."""

    @staticmethod
    def wrap_socket(sock, server_hostname=None):
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context.wrap_socket(sock, server_hostname=server_hostname)


if pymysql is not None:
    class Connection(pymysql.connections.Connection):
        """PyMySQL's connection without two costs. Given no TLS option, PyMySQL 1.2 prepares an
        opportunistic, unverified TLS context for every connection (PREFERRED mode) and loads
        the system's CA store into it (about 25 ms, a fifth of this module's run), which an
        unverified context never reads. Here that context is built only when the server offers
        TLS, and without the CA store; TLS is still used then, unverified, exactly as PyMySQL
        would. Explicit TLS options (ca_cert...) go to PyMySQL unchanged."""

        def _create_ssl_ctx(self, sslp):
            if isinstance(sslp, dict) and not sslp:
                return _PreferredTLS()
            return super()._create_ssl_ctx(sslp)


def mysql_common_argument_spec():
    """The login options every module takes (see the mysql doc fragment)."""
    return dict(
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        login_host=dict(type='str', default='localhost'),
        login_port=dict(type='int', default=3306),
        login_unix_socket=dict(type='str'),
        connect_timeout=dict(type='int', default=30),
        config_file=dict(type='path', default='~/.my.cnf'),
        ca_cert=dict(type='path', aliases=['ssl_ca']),
        client_cert=dict(type='path', aliases=['ssl_cert']),
        client_key=dict(type='path', aliases=['ssl_key']),
        ca_cert_data=dict(type='str'),
        client_cert_data=dict(type='str'),
        client_key_data=dict(type='str', no_log=True),
        check_hostname=dict(type='bool'),
    )


# A certificate or key given as text, and the path option it stands for.
TLS_DATA_OPTIONS = (('ca_cert_data', 'ca_cert'), ('client_cert_data', 'client_cert'), ('client_key_data', 'client_key'))
MYSQL_MUTUALLY_EXCLUSIVE = [[data, path] for data, path in TLS_DATA_OPTIONS]


def write_tls_data(module):
    """Certificates and keys given as text (a dbfleet MySQL credential hands them so: the files
    need not exist on the host beforehand) are written 0600 into the module's own temporary
    directory, which is 0700 and removed when the module ends, and used by path from there.
    Returns an error message, or None."""
    for data_option, path_option in TLS_DATA_OPTIONS:
        text = module.params.get(data_option)
        if text is None:
            continue
        if '-----BEGIN ' not in text:
            return '%s is not PEM text (a -----BEGIN ...----- block)' % data_option
        path = os.path.join(module.tmpdir, '%s.pem' % path_option)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, 'w') as handle:
            handle.write(text if text.endswith('\n') else text + '\n')
        module.params[path_option] = path
    return None


class MySQLConnectError(Exception):
    """Connecting failed; the message names the target and the reason, never the password."""

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.errno = errno


def describe_target(params):
    """'user@host:port' or 'user@socket /path' for messages."""
    user = params.get('login_user') or '(default user)'
    if params.get('login_unix_socket'):
        return '%s@socket %s' % (user, params['login_unix_socket'])
    return '%s@%s:%s' % (user, params.get('login_host') or 'localhost', params.get('login_port') or 3306)


def redact(text, secret):
    """Remove a secret from a message that may echo input back."""
    if secret:
        text = text.replace(secret, '********')
    return text


def _config_file_path(params):
    config_file = params.get('config_file')
    if not config_file:
        return None
    config_file = os.path.expanduser(os.path.expandvars(config_file))
    return config_file if os.path.isfile(config_file) else None


def connection_kwargs(params):
    """PyMySQL keyword arguments for the module's login options."""
    timeout = params.get('connect_timeout') or 30
    kwargs = dict(
        connect_timeout=timeout,
        read_timeout=max(timeout, 60),
        write_timeout=max(timeout, 60),
        autocommit=True,
        charset='utf8mb4',
        cursorclass=DictCursor,
    )
    config_file = _config_file_path(params)
    if config_file:
        kwargs['read_default_file'] = config_file
    if params.get('login_user'):
        kwargs['user'] = params['login_user']
    if params.get('login_password') is not None:
        kwargs['password'] = params['login_password']
    if params.get('login_unix_socket'):
        kwargs['unix_socket'] = params['login_unix_socket']
    else:
        kwargs['host'] = params.get('login_host') or 'localhost'
        kwargs['port'] = params.get('login_port') or 3306
    if params.get('ca_cert'):
        kwargs['ssl_ca'] = params['ca_cert']
        kwargs['ssl_verify_cert'] = True
        if params.get('check_hostname') is not None:
            kwargs['ssl_verify_identity'] = params['check_hostname']
    if params.get('client_cert'):
        kwargs['ssl_cert'] = params['client_cert']
    if params.get('client_key'):
        kwargs['ssl_key'] = params['client_key']
    return kwargs


_CONNECT_HINTS = {
    1045: 'access denied: check login_user / login_password (or the [client] section of config_file)',
    1044: 'access denied to the database',
    2002: 'cannot reach the unix socket: check login_unix_socket and that the server runs',
    2003: 'server unreachable: check login_host / login_port and that the server runs',
    2013: 'connection lost during the handshake',
}


def mysql_connect(params):
    """Open a PyMySQL connection from module params, or raise MySQLConnectError."""
    if pymysql is None:
        raise MySQLConnectError('PyMySQL is not installed on the host running the module')
    target = describe_target(params)
    for path_option in ('login_unix_socket', 'ca_cert', 'client_cert', 'client_key'):
        path = params.get(path_option)
        if path and not os.path.exists(path):
            raise MySQLConnectError('cannot connect to %s: %s %s does not exist' % (target, path_option, path), errno=2002)
    try:
        return Connection(**connection_kwargs(params))
    except pymysql.err.MySQLError as exc:
        errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        detail = exc.args[1] if len(exc.args) > 1 else str(exc)
        hint = _CONNECT_HINTS.get(errno, 'connection failed')
        message = 'cannot connect to %s: %s (MySQL error %s: %s)' % (target, hint, errno, detail)
        raise MySQLConnectError(redact(message, params.get('login_password')), errno=errno)
    except (OSError, ValueError) as exc:
        message = 'cannot connect to %s: %s' % (target, exc)
        raise MySQLConnectError(redact(message, params.get('login_password')))
