"""Store fixtures: every store test runs against a SQLite file and against a fresh database
on the machine's MariaDB (127.0.0.1:3306, root without password), never against mocks."""

from __future__ import annotations

import secrets

import pymysql
import pytest

from dbfleet.store import open_store

MARIADB = dict(host='127.0.0.1', port=3306, user='root', password='')


def mariadb_admin() -> pymysql.connections.Connection:
    """A root connection to the machine's MariaDB; a failure fails the test (it is always there)."""
    try:
        return pymysql.connect(autocommit=True, connect_timeout=10, **MARIADB)
    except pymysql.MySQLError as error:
        pytest.fail('MariaDB on %s:%s is not reachable as %s (%s): the store tests need it'
                    % (MARIADB['host'], MARIADB['port'], MARIADB['user'], error))


def mariadb_url(database: str) -> str:
    return 'mysql+pymysql://%(user)s@%(host)s:%(port)s/' % MARIADB + database


@pytest.fixture
def mariadb_database():
    """A fresh, empty database on the machine's MariaDB, dropped afterwards; yields its URL."""
    name = 'dbfleet_test_%s' % secrets.token_hex(6)
    admin = mariadb_admin()
    try:
        with admin.cursor() as cursor:
            cursor.execute('CREATE DATABASE `%s` CHARACTER SET utf8mb4' % name)
        yield mariadb_url(name)
    finally:
        with admin.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS `%s`' % name)
        admin.close()


@pytest.fixture(params=['sqlite', 'mariadb'])
def store_url(request, tmp_path):
    """URL of an empty store on each backend (the SQLite file's directory does not exist yet)."""
    if request.param == 'sqlite':
        yield 'sqlite:///%s' % (tmp_path / 'var' / 'dbfleet.db')
    else:
        yield request.getfixturevalue('mariadb_database')


@pytest.fixture
def store(store_url):
    store = open_store(store_url)
    yield store
    store.close()
