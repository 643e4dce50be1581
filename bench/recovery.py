#!/usr/bin/env python3
"""Recovery: restore speed of dbfleet.mysql.mysql_restore against the plain tools on the same backup.

Figures (defined in the shared benchmarks page):
1. Logical: MB/s of SQL loaded (the dump's uncompressed bytes over the load's seconds) by the module
   (its `seconds.load`: decompressor -> mariadb with sql_log_bin=0) against a plain
   `gzip -dc dump.sql.gz | mariadb` into an equally fresh sandbox. Goal: ratio >= 0.95.
2. Physical: MB/s of datadir restored (mbstream -x, mariabackup --prepare, --copy-back) by the module
   (its extract + prepare + copy_back seconds) against the same three commands run by hand.
3. Binlog replay: events/s and MB/s of the module's replay (mariadb-binlog | mariadb, sql_log_bin=0)
   against a plain `mariadb-binlog --start-position --stop-position FILES | mariadb` of the same range
   into a sandbox holding the same dump.
Also the module's whole run (ansible-playbook start-up, sandbox, verification included), for scale.

The source is the local fleet's primary: a full logical and a physical backup of it, then BENCH_ROWS
single-row transactions into a scratch schema of its own (dropped at the end), the binlogs fetched with
`mariadb-binlog --read-from-remote-server --raw`. Medians of --rounds runs, alternating module and plain.

    .venv/bin/python bench/recovery.py [--rounds 3] [--rows 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / 'collections'))

from ansible_collections.dbfleet.mysql.plugins.module_utils.restore import (  # noqa: E402
    Pipeline,
    Sandbox,
    Tools,
    _run,
    _tree_bytes,
)

from bench.report import record  # noqa: E402
from devtools.fleet import Fleet  # noqa: E402

VENV_BIN = REPO / '.venv' / 'bin'
COMMAND = '.venv/bin/python bench/recovery.py'
MB = 1024 * 1024


def ansible_env():
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               PATH='%s:%s' % (VENV_BIN, env.get('PATH', '')))
    return env


def run_module(work: Path, module: str, args: dict) -> dict:
    """One task through ansible-playbook on localhost; its registered result."""
    out = work / ('result-%s.json' % uuid.uuid4().hex[:8])
    play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        {module: args, 'register': 'result'},
        {'ansible.builtin.copy': {'content': '{{ result | to_json }}', 'dest': str(out)}}]}]
    path = work / 'play.yml'
    path.write_text(json.dumps(play))
    completed = subprocess.run([str(VENV_BIN / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local', '-e',
                                'ansible_python_interpreter=%s' % sys.executable, str(path)],
                               cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=3600)
    if completed.returncode != 0:
        raise SystemExit('%s failed: %s' % (module, (completed.stdout + completed.stderr)[-3000:]))
    result = json.loads(out.read_text())
    out.unlink()
    return result


@contextlib.contextmanager
def sandbox(tools, work, initialize=True):
    box = Sandbox(tools, base=str(work))
    box.write_config()
    try:
        if initialize:
            box.initialize(str(work))
        yield box
    finally:
        box.remove()


def plain_logical(tools, work, backup_dir, manifest):
    with sandbox(tools, work) as box:
        box.start()
        archive = backup_dir / manifest['archive']
        began = time.monotonic()
        Pipeline(['gzip', '-dc', str(archive)], [tools.client, '--defaults-file=%s' % box.client_file],
                 str(work)).run('plain load')
        return time.monotonic() - began


def plain_physical(tools, work, backup_dir, manifest):
    extracted = work / 'plain-extract'
    shutil.rmtree(extracted, ignore_errors=True)
    extracted.mkdir()
    with sandbox(tools, work, initialize=False) as box:
        os.mkdir(box.datadir)
        began = time.monotonic()
        Pipeline(['gzip', '-dc', str(backup_dir / manifest['archive'])], [tools.mbstream, '-x', '-C', str(extracted)],
                 str(work)).run('plain extract')
        _run([tools.backup, '--prepare', '--target-dir=%s' % extracted], 'plain prepare', scratch=str(work))
        _run([tools.backup, '--copy-back', '--target-dir=%s' % extracted, '--datadir=%s' % box.datadir],
             'plain copy-back', scratch=str(work))
        seconds = time.monotonic() - began
        size = _tree_bytes(box.datadir)
    shutil.rmtree(extracted, ignore_errors=True)
    return seconds, size


def plain_replay(tools, work, backup_dir, manifest, replayed, binlogs):
    with sandbox(tools, work) as box:
        box.start()
        Pipeline(['gzip', '-dc', str(backup_dir / manifest['archive'])],
                 [tools.client, '--defaults-file=%s' % box.client_file], str(work)).run('load')
        producer = [tools.binlog, '--start-position=%d' % replayed['start_position']]
        if replayed['stop_position'] is not None:
            producer.append('--stop-position=%d' % replayed['stop_position'])
        producer += [str(binlogs / name) for name in replayed['files']]
        began = time.monotonic()
        Pipeline(producer, [tools.client, '--defaults-file=%s' % box.client_file, '--binary-mode'], str(work),
                 env=dict(os.environ, TZ='UTC')).run('plain replay')
        return time.monotonic() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--rows', type=int, default=5000, help='single-row transactions to replay')
    args = parser.parse_args()
    fleet = Fleet()
    fleet.start()
    work = Path(tempfile.mkdtemp(prefix='dbfleet-bench-recovery-'))
    tools = Tools(shutil.which, physical=True, sandbox=True)
    schema = 'restore_bench_%s' % uuid.uuid4().hex[:8]
    socket_login = dict(login_unix_socket=str(fleet.instance('primary').socket), login_user=fleet.os_user)
    try:
        dest = work / 'repository'
        with contextlib.closing(fleet.admin('primary')) as admin, admin.cursor() as cursor:
            cursor.execute('CREATE DATABASE `%s`' % schema)
            cursor.execute('CREATE TABLE `%s`.events (id INT PRIMARY KEY AUTO_INCREMENT, payload VARCHAR(200))'
                           % schema)
        logical = run_module(work, 'dbfleet.mysql.mysql_backup', dict(dest=str(dest), name='primary', **socket_login))
        physical = run_module(work, 'dbfleet.mysql.mysql_backup', dict(dest=str(dest), name='primary',
                                                                       method='physical', **socket_login))
        logical_dir, logical_manifest = Path(logical['path']), logical['manifest']
        physical_dir, physical_manifest = Path(physical['path']), physical['manifest']
        with contextlib.closing(fleet.admin('primary', database=schema)) as admin, admin.cursor() as cursor:
            for row in range(args.rows):
                cursor.execute("INSERT INTO events (payload) VALUES (REPEAT('x', 150))")
            cursor.execute('SELECT @@last_gtid')
            last_gtid = cursor.fetchone()[0]
            cursor.execute('FLUSH BINARY LOGS')
        binlogs = dest / 'primary' / 'binlogs'
        binlogs.mkdir(parents=True)
        defaults = work / 'fetch.cnf'
        defaults.write_text('[client]\nsocket=%s\nuser=%s\n' % (socket_login['login_unix_socket'], fleet.os_user))
        subprocess.run([tools.binlog, '--defaults-file=%s' % defaults, '--read-from-remote-server', '--raw',
                        '--to-last-log', '--result-file=%s/' % binlogs, physical_manifest['binlog_file']
                        if physical_manifest['binlog_file'] < logical_manifest['binlog_file']
                        else logical_manifest['binlog_file']], check=True, env=dict(os.environ, TZ='UTC'))

        sql_mb = logical_manifest['uncompressed_bytes'] / MB
        module_load, plain_load, module_wall = [], [], []
        for _ in range(args.rounds):
            began = time.monotonic()
            result = run_module(work, 'dbfleet.mysql.mysql_restore',
                                dict(backup=str(logical_dir), checksum_tables=False))
            module_wall.append(time.monotonic() - began)
            module_load.append(result['seconds']['load'])
            plain_load.append(plain_logical(tools, work, logical_dir, logical_manifest))

        module_physical, plain_physical_s, datadir_bytes = [], [], 0
        for _ in range(max(1, args.rounds - 1)):
            result = run_module(work, 'dbfleet.mysql.mysql_restore',
                                dict(backup=str(physical_dir), checksum_tables=False))
            module_physical.append(sum(result['seconds'][phase] for phase in ('extract', 'prepare', 'copy_back')))
            seconds, datadir_bytes = plain_physical(tools, work, physical_dir, physical_manifest)
            plain_physical_s.append(seconds)

        module_replay, plain_replay_s, replayed = [], [], None
        for _ in range(args.rounds):
            result = run_module(work, 'dbfleet.mysql.mysql_restore',
                                dict(backup=str(logical_dir), stop_gtid=last_gtid, checksum_tables=False))
            replayed = result['replayed']
            module_replay.append(result['seconds']['replay'])
            plain_replay_s.append(plain_replay(tools, work, logical_dir, logical_manifest, replayed, binlogs))
    finally:
        with contextlib.closing(fleet.admin('primary')) as admin, admin.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS `%s`' % schema)
        shutil.rmtree(work, ignore_errors=True)

    median = statistics.median
    physical_mb = datadir_bytes / MB
    replay_mb = replayed['bytes'] / MB
    rows = [
        ('logical load (%.1f MB of SQL, %d rounds)' % (sql_mb, args.rounds),
         '%.1f MB/s' % (sql_mb / median(module_load)), '%.1f MB/s' % (sql_mb / median(plain_load)),
         '%.2f' % (median(plain_load) / median(module_load))),
        ('physical extract + prepare + copy-back (%.0f MB datadir, %d rounds)' % (physical_mb, len(module_physical)),
         '%.1f MB/s' % (physical_mb / median(module_physical)), '%.1f MB/s' % (physical_mb / median(plain_physical_s)),
         '%.2f' % (median(plain_physical_s) / median(module_physical))),
        ('binlog replay (%d events, %.1f MB, %d rounds)' % (replayed['events'], replay_mb, args.rounds),
         '%.0f events/s, %.2f MB/s' % (replayed['events'] / median(module_replay), replay_mb / median(module_replay)),
         '%.0f events/s, %.2f MB/s' % (replayed['events'] / median(plain_replay_s),
                                       replay_mb / median(plain_replay_s)),
         '%.2f' % (median(plain_replay_s) / median(module_replay))),
    ]
    lines = ['| what | mysql_restore | plain tools | ratio (goal >= 0.95) |', '|---|---|---|---|']
    lines += ['| %s |' % ' | '.join(row) for row in rows]
    lines += ['', 'Load average at the end: %.1f / %.1f / %.1f (1 / 5 / 15 min) on %d cores: on a shared machine the '
              'ratios move by +-0.2 from run to run.' % (os.getloadavg() + (os.cpu_count() or 0,))]
    lines += ['', 'The whole logical restore through ansible-playbook (start-up, sandbox initialised and started, load, '
              'CHECK TABLE and object counts, sandbox removed): median %.1f s.' % median(module_wall),
              'Ratios are plain seconds over module seconds (above 1: the module was faster). Medians of the rounds; '
              'module and plain runs alternate, each into a fresh sandbox.']
    for line in lines:
        print(line)
    record(key='recovery', title='Recovery: restore and binlog replay (bench/recovery.py)', command=COMMAND,
           lines=lines)


if __name__ == '__main__':
    main()
