"""module_utils/mysql.py loads ssl and cryptography on first use, and both still work when used.

Each check runs in a fresh interpreter: this test process has imported both long ago."""

from __future__ import annotations

from tests.helpers import run_fresh


def test_importing_the_connection_code_runs_neither_ssl_nor_cryptography():
    output = run_fresh('''
        import sys
        from ansible_collections.dbfleet.mysql.plugins.module_utils import mysql
        assert mysql.pymysql is not None
        loaded = sorted(name for name in ('_ssl', 'cryptography.hazmat.bindings._rust',
                                          'cryptography.hazmat.primitives.serialization.ssh') if name in sys.modules)
        print(loaded)
    ''')
    assert output.strip() == '[]'


def test_rsa_password_exchange_works_through_the_deferred_modules():
    """sha256_password / caching_sha2_password without TLS: PyMySQL encrypts the password with
    the server's RSA key through the modules loaded on first use; the key's owner decrypts it."""
    output = run_fresh('''
        from ansible_collections.dbfleet.mysql.plugins.module_utils import mysql
        import pymysql._auth as auth
        assert auth._have_cryptography
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        salt = b'0123456789abcdefghij'
        sealed = auth.sha2_rsa_encrypt(b'pw-Secret', salt, public_pem)
        clear = key.decrypt(sealed, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()),
                                                 algorithm=hashes.SHA1(), label=None))
        print(auth._xor_password(clear, salt))
    ''')
    assert output.strip() == repr(b'pw-Secret\x00')


def test_modules_imported_before_are_left_alone():
    output = run_fresh('''
        import ssl
        from ansible_collections.dbfleet.mysql.plugins.module_utils import mysql
        import pymysql.connections
        print(pymysql.connections.ssl is ssl, pymysql._auth._have_cryptography)
    ''')
    assert output.split() == ['True', 'True']
