#!/usr/bin/env python3
"""The host agent: what `pip install 'dbfleet[agent]'` puts on a bridged database host, and what
the cron wrapper costs each time crontab runs an entry through it.

A wheel is built from this tree and installed with the [agent] extra into a fresh virtualenv under
var/bench/agent (dependencies from the configured package index, at the versions of
requirements.txt). Measured there:

- install size: the virtualenv (`du`), what an empty one already holds, and the largest packages;
- `dbfleet cron exec ID -- true` as crontab runs it (the console script; the API away, so the
  report is spooled: what every run costs before any network wait), wall time, CPU time and
  peak memory from /usr/bin/time -v, median of --runs; beside it `python -c pass` (the
  interpreter's floor) and `true` (the job itself).

Figures are printed and written to docs/benchmarks.md.

    .venv/bin/python bench/agent.py [--runs 9] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.report import record  # noqa: E402

WORK = REPO / 'var' / 'bench' / 'agent'
COMMAND = '.venv/bin/python bench/agent.py'
WHEEL_SOURCES = ('pyproject.toml', 'README.md', 'dbfleet', 'runner_service')
# What the wrapper must never load: the controller's packages (and the store's, it has no store),
# nor the command line's and the API client's libraries (it starts on the standard library).
SERVICE_ONLY = ('fastapi', 'rq', 'ansible_runner', 'ansible', 'sqlalchemy', 'alembic', 'uvicorn', 'redis',
                'typer', 'rich', 'pydantic', 'httpx')


def build_wheel(out: Path) -> Path:
    with tempfile.TemporaryDirectory() as source:
        for name in WHEEL_SOURCES:
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, Path(source) / name,
                                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copy2(REPO / name, Path(source) / name)
        subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', str(out), source], check=True)
    return max(out.glob('dbfleet-*.whl'), key=lambda path: path.stat().st_mtime)


def du(path: Path) -> int:
    return int(subprocess.run(['du', '-sb', str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def make_venv(path: Path, requirement: str | None) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, '-m', 'venv', str(path)], check=True)
    if requirement:
        installed = subprocess.run([str(path / 'bin' / 'python'), '-m', 'pip', 'install', '-q', '-c',
                                    str(REPO / 'requirements.txt'), requirement], capture_output=True, text=True)
        if installed.returncode != 0:
            sys.exit('bench/agent.py: pip install %s failed:\n%s' % (requirement, installed.stderr[-4000:]))
    return path


def site_packages(venv: Path) -> Path:
    (found,) = (venv / 'lib').glob('python3*/site-packages')
    return found


def timed(command: list[str], env: dict, runs: int) -> tuple[float, float, float, int]:
    """Medians over `runs` runs of wall seconds, CPU seconds (user + system: on a shared machine,
    the cost the command itself adds) and peak RSS (MiB); and the exit code."""
    walls, cpus, peaks, code = [], [], [], None
    for _ in range(runs):
        completed = subprocess.run(['/usr/bin/time', '-v'] + command, env=env, capture_output=True, text=True)
        report = completed.stderr
        wall = re.search(r'Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)', report)
        hours, minutes, seconds = int(wall.group(1) or 0), int(wall.group(2)), float(wall.group(3))
        walls.append(hours * 3600 + minutes * 60 + seconds)
        cpus.append(sum(float(re.search(r'%s time \(seconds\): ([\d.]+)' % kind, report).group(1))
                        for kind in ('User', 'System')))
        peaks.append(int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', report).group(1)) / 1024)
        code = completed.returncode
    return statistics.median(walls), statistics.median(cpus), statistics.median(peaks), code


def loaded_by_wrapper(venv: Path, env: dict) -> list[str]:
    probe = ('import sys\nfrom runner_service.console import main\n'
             "sys.argv = ['dbfleet', 'cron', 'exec', 'bench-entry', '--', 'true']\n"
             'try:\n    main()\nexcept SystemExit:\n    pass\n'
             'print(",".join(sorted(n for n in %r if n in sys.modules)))' % (SERVICE_ONLY,))
    completed = subprocess.run([str(venv / 'bin' / 'python'), '-c', probe], env=env, capture_output=True, text=True)
    return [name for name in completed.stdout.strip().split(',') if name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=9)
    parser.add_argument('--keep', action='store_true', help='keep var/bench/agent (the virtualenvs) afterwards')
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(WORK / 'wheel')
    empty = make_venv(WORK / 'empty', None)
    agent = make_venv(WORK / 'venv', '%s[agent]' % wheel)
    total, floor = du(agent), du(empty)
    packages = sorted(((du(path), path.name) for path in site_packages(agent).iterdir()
                       if path.is_dir() and not path.name.endswith(('.dist-info', '__pycache__'))), reverse=True)
    freeze = subprocess.run([str(agent / 'bin' / 'python'), '-m', 'pip', 'list', '--format', 'freeze'],
                            capture_output=True, text=True, check=True).stdout.split()

    home = WORK / 'home'
    env = {'PATH': '%s:/usr/bin:/bin' % (agent / 'bin'), 'HOME': str(home), 'LANG': 'C.UTF-8',
           'DBFLEET_CONFIG': str(home / 'no.env'), 'DBFLEET_VAR_DIR': str(home / 'state'),
           'DBFLEET_TOKEN': 'bench', 'DBFLEET_API_URL': 'http://127.0.0.1:9'}  # nothing listens on port 9
    wrapper = [str(agent / 'bin' / 'dbfleet'), 'cron', 'exec', 'bench-entry', '--', 'true']
    rows = [('`dbfleet cron exec ID -- true` (the console script)', timed(wrapper, env, args.runs)),
            ('`python -c pass` in the same virtualenv', timed([str(agent / 'bin' / 'python'), '-c', 'pass'], env,
                                                              args.runs)),
            ('`true`', timed(['true'], env, args.runs))]
    heavy = loaded_by_wrapper(agent, env)
    spooled = len(list((home / 'state' / 'cron-spool').glob('*'))) if (home / 'state' / 'cron-spool').is_dir() else 0

    mib = 1024 * 1024
    (_, cpu, peak, _), _, (_, true_cpu, true_peak, _) = (figures for _, figures in rows)
    added_cpu, added_peak = cpu - true_cpu, peak - true_peak
    met = added_cpu < 0.15 and added_peak * mib < 30e6
    lines = [
        '| Install (`pip install \'dbfleet[agent]\'`, fresh virtualenv) | Size |',
        '|---|---|',
        '| the virtualenv | %.1f MiB |' % (total / mib),
        '| of which an empty virtualenv (pip, setuptools) | %.1f MiB |' % (floor / mib),
        '| dbfleet[agent] and its dependencies | %.1f MiB (%d distributions) |' % ((total - floor) / mib, len(freeze)),
        '',
        'Largest packages: %s.' % ', '.join('%s %.1f MiB' % (name, size / mib) for size, name in packages[:8]),
        '',
        '| Command (median of %d runs, /usr/bin/time -v) | Wall | CPU (user + sys) | Peak RSS | Exit |' % args.runs,
        '|---|---|---|---|---|',
    ] + ['| %s | %.2f s | %.2f s | %.1f MiB | %s |' % (label, wall, cpu, peak, code)
         for label, (wall, cpu, peak, code) in rows] + [
        '',
        'Against the bare command (`true`), the wrapper adds %.2f s of CPU and %.1f MiB of peak memory: goal '
        '< 0.15 s and < 30 MB, %s.' % (added_cpu, added_peak, 'met' if met else 'NOT met'),
        '',
        'The API is away (port 9), so each run spools its reports (%d files after the runs) and no network wait '
        'is counted. Service packages the wrapper loaded: %s. Load average when it ran: %s (the machine is shared).'
        % (spooled, ', '.join(heavy) or 'none', ' '.join('%.1f' % value for value in os.getloadavg())),
    ]
    print('\n'.join(lines))
    record(key='agent', title='Host agent: install size and the cron wrapper (bench/agent.py)', command=COMMAND,
           lines=lines)
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == '__main__':
    main()
