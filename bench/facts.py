#!/usr/bin/env python3
"""Fact collection: dbfleet.mysql.mysql_facts against community.mysql.mysql_info.

Figures (defined in the shared benchmarks page):
1. Module cost on the instance with >= 1,000 tables: median wall of an ad-hoc run of the
   module minus the median wall of an ad-hoc ansible.builtin.ping to the same host, for
   equivalent subsets (everything; version + databases). Goal: <= 0.5 x mysql_info's cost.
2. Fleet collection: ansible-playbook over N inventory hosts mapped onto the local fleet,
   forks F: wall and CPU seconds per host, against the same play with mysql_info.

Both modules run with the same ansible-core, from a separate virtualenv (.venv-bench) that
holds the `ansible` package (which ships community.mysql). Results are printed and written
to docs/benchmarks.md with the command line.

    .venv/bin/python bench/facts.py [--rounds 7] [--hosts 500] [--forks 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.report import record  # noqa: E402
from devtools.fleet import INSTANCES, Fleet  # noqa: E402
from devtools.fleet.scale_inventory import write_scale_inventory  # noqa: E402

BASELINE_VENV = REPO / '.venv-bench'
BASELINE_REQUIREMENTS = REPO / 'bench' / 'requirements-baseline.txt'
BENCH_USER, BENCH_PASSWORD = 'dbfleet_bench', 'bench-pw-Secret3'
BIG = 'analytics'

# name -> (module, extra arguments): equivalent subsets of the two modules.
CASES = {
    'everything': (('dbfleet.mysql.mysql_facts', {}), ('community.mysql.mysql_info', {})),
    'version+databases': (('dbfleet.mysql.mysql_facts', {'gather_subset': ['!all', 'schemas']}),
                          ('community.mysql.mysql_info', {'filter': ['version', 'databases']})),
}


def ensure_baseline_venv():
    stamp = BASELINE_VENV / '.dbfleet-requirements'
    wanted = BASELINE_REQUIREMENTS.read_text()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print('installing the baseline (ansible package with community.mysql) into %s' % BASELINE_VENV, flush=True)
    if not (BASELINE_VENV / 'bin' / 'python').exists():
        subprocess.run([sys.executable, '-m', 'venv', str(BASELINE_VENV)], check=True)
    subprocess.run([str(BASELINE_VENV / 'bin' / 'pip'), 'install', '-q', '-r', str(BASELINE_REQUIREMENTS)], check=True)
    stamp.write_text(wanted)


def ansible_env():
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='0',
               PATH='%s:%s' % (BASELINE_VENV / 'bin', env.get('PATH', '')))
    return env


def create_bench_user(fleet):
    """Both modules log in as the same account, one that may read everything mysql_info reads."""
    for name in INSTANCES:
        with fleet.admin(name).cursor() as cursor:
            for host in ('127.0.0.1', 'localhost'):
                cursor.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (BENCH_USER, host, BENCH_PASSWORD))
                cursor.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s", (BENCH_USER, host))


def login_args(port):
    return dict(login_host='127.0.0.1', login_port=port, login_user=BENCH_USER, login_password=BENCH_PASSWORD,
                config_file='')


def timed(command, env):
    """(wall seconds, CPU seconds of the command and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise SystemExit('bench: %s failed:\n%s' % (' '.join(command[:4]), (completed.stdout + completed.stderr)[-3000:]))
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def module_cost(rounds):
    """Figure 1: median ad-hoc wall per module minus the median ad-hoc ping wall. CPU seconds
    (client side: ansible and the module) are reported beside it, as they suffer less from a busy machine."""
    env = ansible_env()
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / 'inventory.yml'
        inventory.write_text(json.dumps({'all': {'hosts': {BIG: {
            'ansible_connection': 'local', 'ansible_python_interpreter': str(BASELINE_VENV / 'bin' / 'python')}}}}))
        ansible = str(BASELINE_VENV / 'bin' / 'ansible')

        def adhoc(module, args):
            command = [ansible, BIG, '-i', str(inventory), '-m', module]
            return command + ['-a', json.dumps(args)] if args else command

        commands = {'ping': adhoc('ansible.builtin.ping', {})}
        for case, variants in CASES.items():
            for module, extra in variants:
                args = login_args(INSTANCES[BIG].port)
                args.update(extra)
                commands[(case, module)] = adhoc(module, args)
        walls = dict((key, []) for key in commands)
        cpus = dict((key, []) for key in commands)
        for key, command in commands.items():  # warm-up: page cache, .pyc files
            timed(command, env)
        for round_number in range(rounds):
            for key, command in commands.items():  # interleaved so drift hits every command alike
                wall, cpu = timed(command, env)
                walls[key].append(wall)
                cpus[key].append(cpu)
            print('  round %d/%d done' % (round_number + 1, rounds), flush=True)
    ping = statistics.median(walls['ping'])
    ping_cpu = statistics.median(cpus['ping'])
    rows = []
    for case, ((ours, _), (theirs, _)) in CASES.items():
        our_cost = statistics.median(walls[(case, ours)]) - ping
        their_cost = statistics.median(walls[(case, theirs)]) - ping
        our_cpu = statistics.median(cpus[(case, ours)]) - ping_cpu
        their_cpu = statistics.median(cpus[(case, theirs)]) - ping_cpu
        rows.append(dict(case=case, ping=ping, ours_wall=statistics.median(walls[(case, ours)]),
                         theirs_wall=statistics.median(walls[(case, theirs)]), ours_cost=our_cost,
                         theirs_cost=their_cost, ratio=our_cost / their_cost if their_cost > 0 else float('nan'),
                         ours_cpu=our_cpu, theirs_cpu=their_cpu,
                         cpu_ratio=our_cpu / their_cpu if their_cpu > 0 else float('nan')))
    return rows


def fleet_run(hosts, forks):
    """Figure 2: one play over `hosts` inventory hosts per module; wall and CPU per host."""
    env = ansible_env()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        inventory = write_scale_inventory(Path(tmp) / 'scale.yml', hosts)
        text = inventory.read_text().replace('{{ ansible_playbook_python }}', str(BASELINE_VENV / 'bin' / 'python'))
        inventory.write_text(text)
        for module in ('dbfleet.mysql.mysql_facts', 'community.mysql.mysql_info'):
            play = Path(tmp) / 'play.yml'
            args = dict((key, '{{ %s }}' % key) for key in ('login_host', 'login_port'))
            args.update(login_user=BENCH_USER, login_password=BENCH_PASSWORD, config_file='')
            play.write_text(json.dumps([{'hosts': 'all', 'gather_facts': False,
                                         'tasks': [{'name': 'facts', module: args}]}]))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, _cpu = timed([str(BASELINE_VENV / 'bin' / 'ansible-playbook'), '-i', str(inventory), str(play),
                          '--forks', str(forks)], env)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            results.append(dict(module=module, wall=wall, cpu=cpu, wall_per_host=wall / hosts, cpu_per_host=cpu / hosts))
            print('  %s: %.1f s wall, %.1f s CPU' % (module, wall, cpu), flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=11, help='ad-hoc runs per command (median)')
    parser.add_argument('--hosts', type=int, default=500, help='inventory hosts in the fleet run (0 skips it)')
    parser.add_argument('--forks', type=int, default=20)
    options = parser.parse_args()

    ensure_baseline_venv()
    fleet = Fleet()
    fleet.start()
    create_bench_user(fleet)

    print('module cost on %s (%s), %d rounds' % (BIG, INSTANCES[BIG].port, options.rounds), flush=True)
    cost = module_cost(options.rounds)
    lines = ['Module cost on `%s` (MariaDB, %s): median of %d ad-hoc runs minus the median ad-hoc '
             '`ansible.builtin.ping` (%.2f s).' % (BIG, _table_count(fleet), options.rounds, cost[0]['ping']), '',
             '| subsets | mysql_facts wall | mysql_info wall | mysql_facts cost | mysql_info cost | ratio (goal <= 0.5) '
             '| CPU cost mysql_facts / mysql_info | CPU ratio |',
             '|---|---|---|---|---|---|---|---|']
    for row in cost:
        lines.append('| %s | %.3f s | %.3f s | %.3f s | %.3f s | **%.2f** | %.3f s / %.3f s | %.2f |' % (
            row['case'], row['ours_wall'], row['theirs_wall'], row['ours_cost'], row['theirs_cost'], row['ratio'],
            row['ours_cpu'], row['theirs_cpu'], row['cpu_ratio']))
    if options.hosts:
        print('fleet run: %d hosts, forks %d' % (options.hosts, options.forks), flush=True)
        runs = fleet_run(options.hosts, options.forks)
        lines += ['', 'Fleet run: `ansible-playbook` over %d inventory hosts mapped onto the 3 local instances, '
                      'forks %d, every subset, one run each.' % (options.hosts, options.forks), '',
                  '| module | wall | wall per host | CPU | CPU per host |', '|---|---|---|---|---|']
        for run in runs:
            lines.append('| %s | %.1f s | %.0f ms | %.1f s | %.0f ms |' % (
                run['module'], run['wall'], run['wall_per_host'] * 1000, run['cpu'], run['cpu_per_host'] * 1000))
        ours, theirs = runs
        lines.append('')
        lines.append('Ratios mysql_facts / mysql_info: wall %.2f, CPU %.2f.' % (ours['wall'] / theirs['wall'],
                                                                              ours['cpu'] / theirs['cpu']))
    record('facts', 'Fact collection (bench/facts.py)', ' '.join(['.venv/bin/python', 'bench/facts.py'] + sys.argv[1:]),
           lines)
    print('\n'.join(lines))


def _table_count(fleet):
    with fleet.admin(BIG).cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COUNT(DISTINCT TABLE_SCHEMA) FROM information_schema.TABLES"
                       " WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')")
        tables, schemas = cursor.fetchone()[:2]
    return '%d tables in %d schemas' % (tables, schemas)


if __name__ == '__main__':
    main()
