"""A database of a benchmark's own on this machine's MariaDB (127.0.0.1:3306, root without a
password): created empty, dropped when the benchmark ends, however it ends."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pymysql

MARIADB = dict(host='127.0.0.1', port=3306, user='root', password='')


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """The store URL of a new, empty database `name` (one left by a crashed run is dropped first)."""
    with pymysql.connect(autocommit=True, **MARIADB) as connection, connection.cursor() as cursor:
        cursor.execute('DROP DATABASE IF EXISTS `%s`' % name)
        cursor.execute('CREATE DATABASE `%s` CHARACTER SET utf8mb4' % name)
    try:
        yield 'mysql+pymysql://root@127.0.0.1:3306/%s' % name
    finally:
        with pymysql.connect(autocommit=True, **MARIADB) as connection, connection.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS `%s`' % name)
