"""Backup logic that needs no server (module_utils/backup.py): reading positions out of dumps and
backup logs, tool versions and arguments, option files, xbstream checking, layout and retention."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import struct
import subprocess
import zlib

import pytest
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import (
    MANIFEST,
    Backup,
    BackupError,
    Compression,
    StreamEnds,
    Tool,
    XbstreamError,
    backup_path,
    binlog_info_position,
    check_name,
    default_name,
    defaults_file_text,
    dump_is_complete,
    find_backups,
    find_tool,
    option_value,
    parse_backup_dir,
    parse_backup_position,
    parse_dump_position,
    parse_tool_version,
    position_refused,
    read_xbstream,
    remove_backups,
    select_expired,
)
from ansible_collections.dbfleet.mysql.plugins.module_utils.backup_retention import RetentionPolicy

UTC = dt.timezone.utc

# The head and the footer of a mariadb-dump 10.11 dump with --master-data=2 --gtid, as written.
MARIADB_10_11_HEAD = """/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: 127.0.0.1    Database: audit
/*!40101 SET NAMES utf8mb4 */;
-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;

-- A corresponding to the above master-data CHANGE-MASTER settings to the slave gtid state is printed later in the file.

--
-- Alternately, following is the position of the binary logging from SHOW MASTER STATUS at point of backup.
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000002', MASTER_LOG_POS=342;

INSERT INTO `notes` VALUES (1,'-- CHANGE MASTER TO MASTER_LOG_FILE=\\'evil.000009\\', MASTER_LOG_POS=1;');
"""
MARIADB_10_11_TAIL = """
--
-- The deferred gtid setting for slave corresponding to the master-data CHANGE-MASTER follows
--
-- Preferably use GTID to start replication from GTID position:

-- SET GLOBAL gtid_slave_pos='0-1-53,1-2-7';
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;

-- Dump completed on 2026-11-27  6:43:20
"""
MARIADB_OLD = """-- MySQL dump 10.19  Distrib 10.5.23-MariaDB, for debian-linux-gnu (x86_64)
--
-- GTID to start replication from
--

-- SET GLOBAL gtid_slave_pos='0-1-99';

--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin.000007', MASTER_LOG_POS=4711;
"""
MYSQL_5_7 = """-- MySQL dump 10.13  Distrib 5.7.26, for Linux (x86_64)
SET @@GLOBAL.GTID_PURGED='7664fad8-49fd-11e8-a546-4201c0a8010a:1-766741,
90e79fc1-49fd-11e8-a6dd-4201c0a8010b:1-20227';

--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000233', MASTER_LOG_POS=314582450;
"""
MYSQL_8_4 = """-- MySQL dump 10.13  Distrib 8.4.3, for Linux (x86_64)
/* SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5'; */

-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000003', SOURCE_LOG_POS=157;
"""


@pytest.mark.parametrize('text,expected', [
    (MARIADB_10_11_HEAD + MARIADB_10_11_TAIL, ('mysql-bin.000002', 342, '0-1-53,1-2-7')),
    (MARIADB_OLD, ('mariadb-bin.000007', 4711, '0-1-99')),
    (MYSQL_5_7, ('mysql-bin.000233', 314582450,
                 '7664fad8-49fd-11e8-a546-4201c0a8010a:1-766741,90e79fc1-49fd-11e8-a6dd-4201c0a8010b:1-20227')),
    (MYSQL_8_4, ('binlog.000003', 157, '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5')),
    ('-- MariaDB dump 10.19\nCREATE TABLE t (a int);\n-- Dump completed\n', (None, None, None)),
], ids=['mariadb-10.11', 'mariadb-10.5', 'mysql-5.7', 'mysql-8.4', 'no-position'])
def test_position_from_the_dump_header_and_footer(text, expected):
    position = parse_dump_position(text)
    assert (position['binlog_file'], position['binlog_position'], position['gtid']) == expected


def test_row_data_never_passes_for_a_position():
    position = parse_dump_position("INSERT INTO t VALUES ('x');\n-- CHANGE MASTER TO MASTER_LOG_FILE='a.1';\n")
    assert position['binlog_file'] is None


def test_the_completion_footer_must_be_the_last_line():
    assert dump_is_complete(MARIADB_10_11_TAIL)
    assert dump_is_complete('...\n-- Dump completed\n\n')  # --skip-dump-date
    assert not dump_is_complete(MARIADB_10_11_TAIL + "INSERT INTO t VALUES (1);\n")
    assert not dump_is_complete('')


def test_stream_ends_keep_the_first_and_last_bytes():
    ends = StreamEnds(head=10, tail=8)
    for chunk in (b'0123456', b'789abcdef', b'XYZ'):
        ends.feed(chunk)
    assert ends.head == b'0123456789' and ends.tail == b'bcdefXYZ' and ends.bytes == 19


def test_position_from_the_physical_backup_log_and_binlog_info():
    log = ("[00] 2026-11-27 06:44:12 Backup created in directory '/tmp/x/'\n"
           "[00] 2026-11-27 06:44:12 MySQL binlog position: filename 'mysql-bin.000002', position '342', "
           "GTID of the last change '0-1-53'\n[00] 2026-11-27 06:44:12 completed OK!\n")
    assert parse_backup_position(log) == dict(binlog_file='mysql-bin.000002', binlog_position=342, gtid='0-1-53')
    assert parse_backup_position('completed OK!') == dict(binlog_file=None, binlog_position=None, gtid=None)
    assert binlog_info_position('mysql-bin.000002\t342\t0-1-53\n') == dict(
        binlog_file='mysql-bin.000002', binlog_position=342, gtid='0-1-53')
    assert binlog_info_position('binlog.000003\t157\n')['gtid'] is None
    assert binlog_info_position('') is None


@pytest.mark.parametrize('stderr,refused', [
    ("mysqldump: Couldn't execute 'FLUSH TABLES WITH READ LOCK': Access denied; you need (at least one of) the "
     "RELOAD privilege(s) for this operation (1227)", True),
    ("mysqldump: Couldn't execute 'SHOW MASTER STATUS': Access denied; you need (at least one of) the SUPER, "
     "REPLICATION CLIENT privilege(s) for this operation (1227)", True),
    ("mysqldump: Couldn't execute 'SHOW BINARY LOG STATUS': Access denied; you need (at least one of) the SUPER, "
     "REPLICATION CLIENT privilege(s) for this operation (1227)", True),
    ('mariadb-dump: Error: Binlogging on server not active', True),
    ("mariadb-dump: Couldn't execute 'show events': Access denied for user 'u'@'h' to database 'shop' (1044)", False),
    ("mariadb-dump: Got error: 1045: \"Access denied for user 'u'@'h' (using password: YES)\" when trying to "
     "connect", False),
])
def test_only_a_refused_position_makes_the_dump_run_again_without_it(stderr, refused):
    assert position_refused(stderr) is refused


@pytest.mark.parametrize('text,version,flavour', [
    ('mysqldump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)', '10.11.19-MariaDB', 'mariadb'),
    ('mariadb-dump from 11.4.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)', '11.4.2-MariaDB', 'mariadb'),
    ('mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)', '8.0.36', 'mysql'),
    ('mariabackup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)', '10.11.19-MariaDB', 'mariadb'),
    ('xtrabackup version 8.0.35-30 based on MySQL server 8.0.35 Linux (x86_64) (revision id: 6beb4b49)',
     '8.0.35-30', 'mysql'),
])
def test_tool_versions(text, version, flavour):
    assert parse_tool_version(text) == (version, flavour)


def test_dump_arguments_per_tool():
    mariadb = Tool('mariadb-dump', '/usr/bin/mariadb-dump', 'mariadb-dump from 11.4.2-MariaDB, client 10.19')
    mysql8 = Tool('mysqldump', '/usr/bin/mysqldump', 'mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community)')
    mysql57 = Tool('mysqldump', '/usr/bin/mysqldump', 'mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)')
    common = ['--single-transaction', '--quick', '--routines', '--triggers', '--events', '--hex-blob']
    arguments = mariadb.dump_arguments(['shop', 'crm'], with_position=True)
    assert arguments[:6] == common and arguments[-3:] == ['--databases', 'shop', 'crm']
    assert '--master-data=2' in arguments and '--gtid' in arguments
    assert '--master-data=2' not in mariadb.dump_arguments(['shop'], with_position=False)
    assert '--source-data=2' in mysql8.dump_arguments(['shop'], True)
    assert '--set-gtid-purged=COMMENTED' in mysql8.dump_arguments(['shop'], True)
    assert '--master-data=2' in mysql57.dump_arguments(['shop'], True)
    assert '--set-gtid-purged=COMMENTED' not in mysql57.dump_arguments(['shop'], True)


def test_a_missing_tool_or_compressor_names_the_package_to_install():
    with pytest.raises(BackupError, match='install mariadb-backup .MariaDB. or percona-xtrabackup'):
        find_tool('physical', lambda name: None, None)
    with pytest.raises(BackupError, match='install mariadb-client'):
        find_tool('logical', lambda name: None, None)
    with pytest.raises(BackupError, match='compress=zstd needs the zstd program .* install the zstd package'):
        Compression.resolve('zstd', lambda name: None)
    assert Compression.resolve('none', lambda name: None).compress_command is None


def test_tool_of_the_servers_flavour_is_preferred():
    versions = {'/opt/a/mariadb-dump': 'mariadb-dump from 11.4.2-MariaDB', '/opt/b/mysqldump': 'mysqldump  Ver 8.0.36'}
    paths = {'mariadb-dump': '/opt/a/mariadb-dump', 'mysqldump': '/opt/b/mysqldump'}
    run = lambda argv: (0, versions[argv[0]], '')  # noqa: E731
    assert find_tool('logical', paths.get, run, 'mariadb').name == 'mariadb-dump'
    assert find_tool('logical', paths.get, run, 'mysql').name == 'mysqldump'


def params(**overrides):
    values = dict(login_user=None, login_password=None, login_host='localhost', login_port=3306,
                  login_unix_socket=None, config_file='', ca_cert=None, client_cert=None, client_key=None,
                  check_hostname=None)
    values.update(overrides)
    return values


NASTY_PASSWORD = 'p"w#x\\y z\'end;[client]'


def test_option_file_quoting_survives_the_client_library(tmp_path):
    """The password comes back whole through the MariaDB client library's own option parser."""
    my_print_defaults = shutil.which('my_print_defaults')
    if not my_print_defaults:
        pytest.skip('my_print_defaults (mariadb-client) is not installed')
    path = tmp_path / 'client.cnf'
    path.write_text(defaults_file_text(params(login_user='bk', login_password=NASTY_PASSWORD,
                                              login_host='127.0.0.1', login_port=33061)))
    output = subprocess.run([my_print_defaults, '--defaults-file=%s' % path, 'client'], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    assert '--password=%s' % NASTY_PASSWORD in output
    assert {'--user=bk', '--host=127.0.0.1', '--port=33061', '--protocol=tcp'} <= set(output)


def test_option_file_contents(tmp_path):
    config = tmp_path / 'my.cnf'
    config.write_text('[client]\nuser=fromfile\n')
    text = defaults_file_text(params(login_unix_socket='/run/x.sock', config_file=str(config)))
    assert text.index('!include %s' % config) < text.index('[client]')
    assert 'socket="/run/x.sock"' in text and 'protocol=socket' in text and 'host=' not in text
    assert 'password' not in text and 'user=' not in text.split('[client]')[1]
    text = defaults_file_text(params(login_password='', ca_cert='/ca.pem', check_hostname=True))
    assert 'password=""' in text and 'ssl-ca="/ca.pem"' in text and 'ssl-verify-server-cert=1' in text
    assert option_value('a\nb') == '"a\\nb"'


# -- xbstream ------------------------------------------------------------------------------

def chunk(path, payload=None, crc=None):
    name = path.encode()
    if payload is None:
        return b'XBSTCK01' + bytes([0]) + b'E' + struct.pack('<I', len(name)) + name
    return (b'XBSTCK01' + bytes([0]) + b'P' + struct.pack('<I', len(name)) + name
            + struct.pack('<QQI', len(payload), 0, zlib.crc32(payload) if crc is None else crc) + payload)


def xbstream(*parts):
    return io.BytesIO(b''.join(parts))


def test_a_whole_xbstream_is_read_with_every_checksum():
    stream = xbstream(chunk('ibdata1', b'x' * 1000), chunk('ibdata1', b'y' * 10), chunk('ibdata1'),
                      chunk('xtrabackup_binlog_info', b'mysql-bin.000001\t4\t0-1-1\n'), chunk('xtrabackup_binlog_info'))
    summary = read_xbstream(stream)
    assert summary['files'] == 2 and summary['chunks'] == 3 and summary['payload_bytes'] == 1010 + 25
    assert summary['kept'] == {'xtrabackup_binlog_info': 'mysql-bin.000001\t4\t0-1-1\n'}


@pytest.mark.parametrize('data,message', [
    (chunk('ibdata1', b'abc', crc=1) + chunk('ibdata1'), 'checksum mismatch in ibdata1'),
    ((chunk('ibdata1', b'abcdef') + chunk('ibdata1'))[:-20], 'truncated xbstream'),
    (b'-- MariaDB dump\n' * 3, 'wrong chunk magic'),
    (b'', 'empty xbstream'),
])
def test_a_damaged_xbstream_says_what_is_wrong(data, message):
    with pytest.raises(XbstreamError, match=message):
        read_xbstream(io.BytesIO(data))


# -- layout and retention --------------------------------------------------------------------

STARTED = dt.datetime(2026, 11, 27, 1, 2, 3, tzinfo=UTC)


def test_layout_per_host_and_day():
    assert backup_path('/srv/b', 'db1', STARTED, 'logical') == '/srv/b/db1/2026-11-27/20261127T010203Z-logical'
    assert backup_path('/srv/b', 'db1', STARTED, 'physical', 2).endswith('/20261127T010203Z-physical-2')
    backup = parse_backup_dir('/srv/b/db1/2026-11-27/20261127T010203Z-physical-2')
    assert (backup.started, backup.method, backup.sequence) == (STARTED, 'physical', 2)
    assert parse_backup_dir('/srv/b/db1/2026-11-27/.20261127T010203Z-logical.partial-77') is None
    assert parse_backup_dir('/srv/b/db1/misc/20261127T010203Z-logical') is None
    assert default_name(params(login_host='db1', login_port=3307)) == 'db1:3307'
    assert default_name(params(login_unix_socket='/run/mysqld/mysqld.sock')) == 'localhost_run_mysqld_mysqld.sock'
    for bad in ('', '.', '..', 'a/b'):
        with pytest.raises(BackupError, match='cannot be a directory name'):
            check_name(bad)


def make_backup(host_dir, started, method='logical', sequence=0, manifest=True):
    path = backup_path(os.path.dirname(host_dir), os.path.basename(host_dir), started, method, sequence)
    os.makedirs(path)
    if manifest:
        with open(os.path.join(path, MANIFEST), 'w') as handle:
            handle.write('{}')
    return path


def days_ago(days, now=STARTED):
    return now - dt.timedelta(days=days)


def test_only_whole_backups_are_found_newest_first(tmp_path):
    host_dir = str(tmp_path / 'db1')
    old = make_backup(host_dir, days_ago(3))
    newer = make_backup(host_dir, days_ago(1))
    same_second = make_backup(host_dir, days_ago(1), sequence=2)
    make_backup(host_dir, days_ago(2), manifest=False)                      # no manifest: not a backup
    os.makedirs(os.path.join(host_dir, '2026-11-20', '.20261120T000000Z-logical.partial-1'))
    os.makedirs(os.path.join(host_dir, 'notes', '20261101T000000Z-logical'))  # not in a date directory
    elsewhere = make_backup(str(tmp_path / 'other'), days_ago(9))
    os.symlink(elsewhere, os.path.join(host_dir, '2026-11-20', '20261118T010203Z-logical'))
    assert [backup.path for backup in find_backups(host_dir)] == [same_second, newer, old]
    assert find_backups(str(tmp_path / 'missing')) == []


def backups(*specs):
    """Backup objects (not on disk): (days before STARTED, method)."""
    return [Backup('/b/db1/x/%d-%s' % (index, method), days_ago(days), method) for index, (days, method)
            in enumerate(specs)]


def test_retention_by_count_keeps_the_newest_including_the_new_one():
    keep = Backup('/b/db1/new', STARTED, 'logical')
    existing = backups((1, 'logical'), (2, 'logical'), (3, 'logical'), (4, 'physical'), (30, 'physical'))
    expired = select_expired(existing, keep, STARTED, RetentionPolicy(count=3))
    assert [backup.path for backup in expired] == [existing[2].path]
    assert select_expired(existing, keep, STARTED, RetentionPolicy(count=1)) == existing[:3]
    assert select_expired(existing, keep, STARTED, RetentionPolicy()) == []


def test_retention_by_age_and_both_rules():
    keep = Backup('/b/db1/new', STARTED, 'logical')
    existing = backups((1, 'logical'), (6, 'logical'), (14.5, 'logical'), (40, 'logical'))
    assert select_expired(existing, keep, STARTED, RetentionPolicy(days=14)) == existing[2:]
    assert select_expired(existing, keep, STARTED, RetentionPolicy(days=0)) == existing
    assert select_expired(existing, keep, STARTED, RetentionPolicy(count=2, days=14)) == existing[1:]


def test_the_backup_just_made_is_never_expired():
    keep = Backup('/b/db1/new', days_ago(100), 'logical')   # a clock that went backwards
    existing = backups((1, 'logical'), (2, 'logical'))
    expired = select_expired(existing + [keep], keep, STARTED, RetentionPolicy(count=1, days=1))
    assert expired == [existing[1]]


def test_removal_stays_inside_the_host_directory(tmp_path):
    host_dir = str(tmp_path / 'db1')
    old = make_backup(host_dir, days_ago(10))
    kept = make_backup(host_dir, days_ago(1))
    outside = make_backup(str(tmp_path / 'db2'), days_ago(10))
    sneaky = os.path.join(host_dir, '2026-11-01', '20261101T000000Z-logical')
    os.makedirs(os.path.dirname(sneaky))
    os.symlink(outside, sneaky)
    removed, problems = remove_backups(host_dir, [parse_backup_dir(old), parse_backup_dir(sneaky),
                                                  parse_backup_dir(outside)])
    assert removed == [old]
    assert len(problems) == 2 and all('left alone' in problem for problem in problems)
    assert not os.path.exists(os.path.dirname(old)), 'the empty date directory goes too'
    assert os.path.isdir(kept) and os.path.isdir(outside) and os.path.islink(sneaky)
