"""dbfleet.mysql.mysql_restore through real ansible-playbook runs: a scratch schema of the local fleet's
primary backed up (logical and physical), written to, a table dropped by accident, its binlogs archived;
then restored into sandboxes (one schema; a physical backup), over the machine's MariaDB (the bug of the
hand recipe: ERROR 1050 when the restore went to the binlog and later tables were not dropped), and
refused when the chain or the options are wrong; backups encrypted with age restored with their identity,
refused without it or with another key; a backup and its binlogs brought back from a repository by
playbooks/restore.yml when the host lost its own, told where from or finding it missing."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest

from tests.collection.restore_helpers import (
    accident,
    create_schema,
    drop_schema,
    execute,
    fetch_binlogs,
    figures,
    scratch_schema_name,
)
from tests.conftest import REPO, VENV_BIN, ansible_env

pytestmark = pytest.mark.fleet
UTC = dt.timezone.utc

MACHINE = dict(login_host='127.0.0.1', login_port=3306, login_user='root')
SOURCE = dict(login_host='127.0.0.1', login_port=33061, login_user='dbfleet_backup', login_password='backup-pw-Secret4')


def playbook(*args):
    completed = subprocess.run([str(VENV_BIN / 'ansible-playbook'), *args], cwd=REPO, env=ansible_env(),
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]


def age_key() -> tuple[str, str]:
    """(identity, public key) of a new age key pair."""
    made = subprocess.run(['age-keygen'], capture_output=True, text=True, check=True, timeout=30)
    identity = made.stdout
    return identity, next(line.split(': ')[1] for line in identity.splitlines() if 'public key' in line)


def backup(fleet, dest, **options):
    """One backup of the primary with mysql_backup as root over its socket; its directory."""
    task = dict(login_unix_socket=str(fleet.instance('primary').socket), login_user=fleet.os_user, dest=str(dest),
                name='primary', **options)
    play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': [{'dbfleet.mysql.mysql_backup': task}]}]
    path = Path(dest) / 'backup-play.yml'
    path.write_text(json.dumps(play))
    playbook('-i', 'localhost,', '-c', 'local', '-e', 'ansible_python_interpreter=%s' % sys.executable, str(path))
    [manifest] = sorted(Path(dest, 'primary').glob('*/*-%s/manifest.json' % options.get('method', 'logical')))
    return manifest.parent, json.loads(manifest.read_text())


@pytest.fixture(scope='module')
def history(fleet, tmp_path_factory):
    """Two scratch schemas; a logical backup of both and a physical one of the instance; writes to both,
    a rotation, the accident; the binlogs from the older backup's file archived beside the backups."""
    dest = tmp_path_factory.mktemp('repository')
    schema, other = scratch_schema_name(), scratch_schema_name()
    create_schema(fleet, schema)
    create_schema(fleet, other)
    try:
        logical_dir, logical = backup(fleet, dest, databases=[schema, other])
        physical_dir, physical = backup(fleet, dest, method='physical')
        # The same two, encrypted to an age key (another repository: its binlog_dir is given).
        identity, public = age_key()
        sealed = tmp_path_factory.mktemp('encrypted')
        encrypted_logical_dir, _ = backup(fleet, sealed, databases=[schema], encrypt_recipients=[public])
        encrypted_physical_dir, _ = backup(fleet, sealed, method='physical', encrypt_recipients=[public])
        execute(fleet, ["INSERT INTO orders (note) VALUES ('other-after')", 'CREATE TABLE other_later (id INT)',
                        'FLUSH BINARY LOGS'], database=other)
        moments = accident(fleet, schema)
        binlogs = fetch_binlogs(fleet, dest / 'primary', logical['binlog_file'], dest)
        yield dict(dest=dest, schema=schema, other=other, logical_dir=logical_dir, logical=logical,
                   physical_dir=physical_dir, physical=physical, binlogs=binlogs, identity=identity,
                   encrypted_logical_dir=encrypted_logical_dir, encrypted_physical_dir=encrypted_physical_dir,
                   **moments)
    finally:
        drop_schema(fleet, schema)
        drop_schema(fleet, other)


def restore(run_module, **args):
    """The module's registered result."""
    run = run_module({'controller': {}}, args, module='dbfleet.mysql.mysql_restore')
    assert 'controller' in run.results, run.output[-3000:]
    return run.results['controller']


def target_text(history):
    return history['target'].strftime('%Y-%m-%d %H:%M:%S')


def test_one_schema_of_a_logical_backup_to_an_instant(run_module, history):
    result = restore(run_module, backup=str(history['logical_dir']), schema=history['schema'],
                     stop_datetime=target_text(history), source=SOURCE)
    assert not result.get('failed'), result['msg']
    schema = history['schema']
    assert result['schemas'] == [schema]
    # Only that schema: the other's tables are not there, and its later row was filtered out of the replay
    # (applied, it would fail for want of the table).
    assert result['verification']['tables'] == history['before_drop']
    assert result['verification']['objects']['restored'] == {schema: dict(tables=3, views=1, routines=1,
                                                                          triggers=1, events=0)}
    assert len(result['replayed']['files']) == 2 and result['replayed']['events'] > 0
    assert result['loaded']['sql_bytes'] < history['logical']['uncompressed_bytes']
    assert any('vs the source' in line for line in result['verification']['compared'])


def test_a_physical_backup_restored_and_replayed_in_a_sandbox(run_module, history):
    result = restore(run_module, backup=str(history['physical_dir']), stop_datetime=target_text(history))
    assert not result.get('failed'), result['msg']
    schema = history['schema']
    assert {name: figures for name, figures in result['verification']['tables'].items()
            if name.startswith(schema + '.')} == history['before_drop']
    assert result['verification']['check_table']['errors'] == []
    assert set(result['seconds']) >= {'extract', 'prepare', 'copy_back', 'sandbox', 'replay', 'verify'}
    assert result['replayed']['files'][0] == history['physical']['binlog_file']


def test_over_a_server_it_drops_the_databases_first_so_the_replay_never_hits_error_1050(run_module, history):
    schema = history['schema']
    with contextlib.closing(pymysql.connect(host='127.0.0.1', port=3306, user='root', autocommit=True)) as machine:
        with machine.cursor() as cursor:
            # A server restored before: the table created after the backup is there already.
            cursor.execute('CREATE DATABASE `%s`' % schema)
            cursor.execute('CREATE TABLE `%s`.later (id INT PRIMARY KEY)' % schema)
        try:
            refused = restore(run_module, backup=str(history['logical_dir']), target='server', schema=schema,
                              stop_datetime=target_text(history), **MACHINE)
            assert refused['failed']
            assert 'refusing to restore over root@127.0.0.1:3306 without force' in refused['msg']
            assert 'it has the databases %s, which will be dropped and replaced' % schema in refused['msg']
            assert 'With force: true this restore would drop the databases %s on root@127.0.0.1:3306; load ' \
                   'dump.sql.gz (database %s only) with sql_log_bin=0; replay ' % (schema, schema) in refused['msg']
            result = restore(run_module, backup=str(history['logical_dir']), target='server', schema=schema,
                             stop_datetime=target_text(history), force=True, **MACHINE)
            assert not result.get('failed'), result['msg']
            assert result['dropped'] == [schema]
            assert result['verification']['tables'] == history['before_drop']
        finally:
            with machine.cursor() as cursor:
                cursor.execute('DROP DATABASE IF EXISTS `%s`' % schema)


def test_a_server_with_a_binlog_and_replicas_is_refused_without_force(run_module, fleet, history):
    result = restore(run_module, backup=str(history['logical_dir']), target='server', schema=history['schema'],
                     login_unix_socket=str(fleet.instance('primary').socket), login_user=fleet.os_user)
    assert result['failed'] and 'without force' in result['msg']
    assert 'it writes a binary log' in result['msg'] and 'it has replicas' in result['msg']


def test_a_broken_chain_is_refused_before_anything_is_restored(run_module, history, tmp_path):
    files = sorted(path.name for path in history['binlogs'].iterdir())
    assert len(files) >= 3, files
    cases = {
        'gap': (lambda binlogs: (binlogs / files[1]).unlink(), 'is missing from'),
        'first': (lambda binlogs: (binlogs / files[0]).unlink(), 'the backup\'s binlog file) is missing'),
        'cut': (lambda binlogs: _truncate(binlogs / files[0]), 'is cut short'),
        'damaged': (lambda binlogs: (binlogs / (files[0] + '.json')).write_text(json.dumps(
            {'file': files[0], 'bytes': 1, 'sha256': '0' * 64})), 'does not match its manifest'),
    }
    for name, (damage, message) in cases.items():
        binlogs = tmp_path / name
        shutil.copytree(history['binlogs'], binlogs)
        damage(binlogs)
        result = restore(run_module, backup=str(history['logical_dir']), binlog_dir=str(binlogs),
                         stop_datetime=target_text(history))
        assert result['failed'] and message in result['msg'], (name, result['msg'])
        assert 'sandbox' not in result
    later = restore(run_module, backup=str(history['logical_dir']), stop_datetime='2999-01-01 00:00:00')
    assert later['failed'] and 'after the newest archived event' in later['msg']
    before = restore(run_module, backup=str(history['logical_dir']), stop_datetime='2001-01-01 00:00:00')
    assert before['failed'] and 'is before the backup' in before['msg']


def test_an_encrypted_backup_restores_with_its_age_identity_and_never_without(run_module, history):
    schema = history['schema']
    logical, physical = str(history['encrypted_logical_dir']), str(history['encrypted_physical_dir'])
    assert list(Path(logical).glob('dump.sql.gz.age')) and list(Path(physical).glob('backup.xbstream.gz.age'))
    # Decrypted in the stream, replayed to one second before the drop from the archive beside the clear backups.
    result = restore(run_module, backup=logical, schema=schema, age_identity=history['identity'],
                     stop_datetime=target_text(history), binlog_dir=str(history['binlogs']), source=SOURCE)
    assert not result.get('failed'), result['msg']
    assert result['verification']['tables'] == history['before_drop'] and result['verification']['ok']
    assert result['verification']['objects']['restored'][schema] == dict(tables=3, views=1, routines=1, triggers=1,
                                                                        events=0)
    result = restore(run_module, backup=physical, age_identity=history['identity'])
    assert not result.get('failed'), result['msg']
    assert {name for name in result['verification']['tables'] if name.startswith(schema + '.')} == \
        {'%s.%s' % (schema, table) for table in ('orders', 'precious')}
    assert set(result['seconds']) >= {'extract', 'prepare', 'copy_back'}

    # Without the identity: refused before anything starts, naming the recipient; with another key: age's own
    # error, nothing restored; a value that is no identity at all is refused as such. The key is never shown.
    refused = restore(run_module, backup=logical)
    assert refused['failed'] and 'is encrypted with age (to age1' in refused['msg'] and 'give age_identity' in \
        refused['msg'] and 'sandbox' not in refused
    other, _ = age_key()
    wrong = restore(run_module, backup=physical, age_identity=other)
    assert wrong['failed'] and 'age exited with status 1' in wrong['msg'] and 'no identity matched' in wrong['msg']
    assert 'sandbox' not in wrong
    junk = restore(run_module, backup=logical, age_identity='AGE-SECRET-KEY-1 not a key')
    assert junk['failed'] and 'is not an age identity' in junk['msg']
    secret = next(line for line in history['identity'].splitlines() if line.startswith('AGE-SECRET-KEY-1'))
    for outcome in (result, refused, wrong, junk):
        assert secret not in json.dumps(outcome)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 40])


def repository_of(history, root: Path) -> Path:
    """A repository as the copy step leaves it: the logical backup and every archived binlog from its file on,
    each with its manifest. The backup's path relative to it."""
    from ansible_collections.dbfleet.mysql.plugins.module_utils.binlog_archive import binlog_number, manifest_for
    relative = Path(*history['logical_dir'].parts[-3:])
    shutil.copytree(history['logical_dir'], root / relative)
    binlogs = root / 'primary' / 'binlogs'
    binlogs.mkdir()
    for path in sorted(history['binlogs'].iterdir()):
        if binlog_number(path.name):
            shutil.copy2(path, binlogs / path.name)
            manifest = manifest_for(str(binlogs / path.name), shutil.which('mariadb-binlog'), dt.datetime.now(UTC))
            (binlogs / (path.name + '.json')).write_text(json.dumps(manifest))
    return relative


def restore_play(tmp_path, **variables) -> tuple[str, dict]:
    """restore.yml on the local fleet's primary with these extra vars, through ansible-runner: (its status,
    {task name: result} of the tasks that ran)."""
    import tempfile

    import ansible_runner
    run = ansible_runner.run(private_data_dir=tempfile.mkdtemp(dir=tmp_path), project_dir=str(REPO),
                             playbook='playbooks/restore.yml', inventory=str(REPO / 'inventories' / 'local_fleet.yml'),
                             limit='primary', extravars=variables, envvars=ansible_env(), quiet=True, timeout=900)
    results = {event['event_data']['task']: event['event_data'].get('res', {'skipped': True} if event['event'] ==
                                                                     'runner_on_skipped' else {})
               for event in run.events if event['event'] in ('runner_on_ok', 'runner_on_failed', 'runner_on_skipped')}
    return run.status, results


def test_a_backup_comes_back_from_a_repository_when_the_host_lost_its_own(history, tmp_path):
    root = tmp_path / 'offsite'
    relative = repository_of(history, root)
    staging = tmp_path / 'staging'
    config = tmp_path / 'rclone.conf'  # a remote of the local backend: the same commands as any other
    config.write_text('[offsite]\ntype = local\n')
    variables = dict(dbfleet_restore_backup='/a/lost/disk/%s' % relative, dbfleet_restore_from='offsite',
                     dbfleet_restore_stop_datetime=target_text(history), dbfleet_restore_staging=str(staging),
                     dbfleet_restore_sha256=history['logical']['sha256'],
                     dbfleet_backup_repositories=[dict(name='offsite', kind='rclone', remote='offsite:%s' % root,
                                                       config=str(config))])
    status, results = restore_play(tmp_path, **variables)
    assert status == 'successful', {task: result.get('msg') for task, result in results.items()}
    restored = results['Restore, replay and verify']
    fetched = results['Fetch the backup and the binlogs from the repository']
    assert fetched['files'][0] == '%s/%s' % (relative, history['logical']['archive'])
    assert set(restored['replayed']['files']) <= {Path(name).name for name in fetched['files'][1:]}
    assert restored['replayed']['events'] > 0
    # The table dropped by accident is back as it was, from the repository's copy, and nothing stays staged.
    assert {name: figures for name, figures in restored['verification']['tables'].items()
            if name.startswith(history['schema'] + '.')} == history['before_drop']
    assert restored['backup']['path'] == '%s/%s' % (fetched['staging_dir'], relative)
    assert list(staging.iterdir()) == []
    # Not the backup the catalog recorded (another SHA-256), or not in the repository: refused, nothing restored.
    status, results = restore_play(tmp_path, **dict(variables, dbfleet_restore_sha256='0' * 64))
    assert status == 'failed' and 'not the backup the catalog recorded' in \
        results['Fetch the backup and the binlogs from the repository']['msg']
    assert 'Restore, replay and verify' not in results and list(staging.iterdir()) == []
    status, results = restore_play(tmp_path, **dict(variables, dbfleet_restore_from='elsewhere'))
    assert status == 'failed' and "no repository named 'elsewhere': the repositories are offsite" in \
        results['Fetch the backup and the binlogs from the repository']['msg']


def test_a_backup_missing_from_the_disk_comes_from_the_first_repository_with_a_verified_copy(history, tmp_path):
    """Not told where from (`dbfleet backups restore HOST --to T`), restore.yml uses the host's own copy when it is
    there, and otherwise the first repository the catalog has a verified copy in (the restore template passes
    them as dbfleet_restore_fallback), saying so."""
    root = tmp_path / 'offsite'
    relative = repository_of(history, root)
    config = tmp_path / 'rclone.conf'
    config.write_text('[offsite]\ntype = local\n')
    variables = dict(dbfleet_restore_stop_datetime=target_text(history), dbfleet_restore_staging=str(tmp_path / 'st'),
                     dbfleet_restore_sha256=history['logical']['sha256'], dbfleet_restore_fallback='offsite,elsewhere',
                     dbfleet_backup_repositories=[dict(name='offsite', kind='rclone', remote='offsite:%s' % root,
                                                       config=str(config))],
                     dbfleet_restore_binlog_dir=str(history['binlogs']))
    status, results = restore_play(tmp_path, **dict(variables, dbfleet_restore_backup=str(history['logical_dir'])))
    assert status == 'successful', {task: result.get('msg') for task, result in results.items()}
    assert results['Fetch the backup and the binlogs from the repository'].get('skipped')
    assert results['Restore, replay and verify']['backup']['path'] == str(history['logical_dir'])
    status, results = restore_play(tmp_path, **dict(variables, dbfleet_restore_backup='/a/lost/disk/%s' % relative))
    assert status == 'successful', {task: result.get('msg') for task, result in results.items()}
    assert "is not on primary's disk: restoring its verified copy in repository offsite" in \
        results["Say that the host's own copy is missing"]['msg']
    fetched = results['Fetch the backup and the binlogs from the repository']
    assert fetched['files'][0] == '%s/%s' % (relative, history['logical']['archive'])
    restored = results['Restore, replay and verify']
    assert restored['backup']['path'] == '%s/%s' % (fetched['staging_dir'], relative)
    assert {name: figures for name, figures in restored['verification']['tables'].items()
            if name.startswith(history['schema'] + '.')} == history['before_drop']


def test_hostile_options_are_refused(run_module, history, tmp_path):
    logical, physical = str(history['logical_dir']), str(history['physical_dir'])
    fake = tmp_path / 'fake'
    fake.mkdir()
    (fake / 'manifest.json').write_text(json.dumps({'method': 'logical', 'archive': '../../../etc/passwd',
                                                    'compress': 'none'}))
    cases = [
        (dict(backup='relative/dir'), 'must be the absolute path'),
        (dict(backup=str(tmp_path)), 'has no manifest.json'),
        (dict(backup=str(fake)), 'names an unexpected archive'),
        (dict(backup=logical, schema='a`b'), 'is not a database name'),
        (dict(backup=logical, schema='mysql'), 'is not a database name'),
        (dict(backup=logical, schema='absent'), 'has no database absent'),
        (dict(backup=physical, schema=history['schema']), 'is physical'),
        (dict(backup=physical, target='server', **MACHINE), 'into a sandbox only'),
        (dict(backup=logical, stop_datetime='yesterday'), 'must be a UTC time'),
        (dict(backup=logical, stop_datetime='2026-02-30 00:00:00'), 'not a real date'),
        (dict(backup=logical, stop_gtid='0-1-x; DROP DATABASE'), 'is not a MariaDB GTID'),
        (dict(backup=logical, stop_gtid='0-1-1', stop_datetime='2026-01-01 00:00:00'), 'mutually exclusive'),
        (dict(backup=logical, source={'login_host': 'x', 'shell': 'rm'}), 'unknown: shell'),
        (dict(backup=logical, target='server', keep_sandbox=True, **MACHINE), 'keep_sandbox applies'),
        (dict(backup=logical, stop_gtid='0-1-1'), 'is already in the backup'),
    ]
    for args, message in cases:
        result = restore(run_module, **args)
        assert result.get('failed') and message in result['msg'], (args, result.get('msg'))
