"""The light paths of the `dbfleet` command stay light.

`dbfleet cron exec` is the wrapper crontab runs every minute on a bridged database host, where
only dbfleet[agent] is installed; `dbfleet version` is what a bug report asks for first. Neither
may load the service's servers or the store's engine: each check runs in a fresh interpreter
and reads its sys.modules once the command has been resolved, or has run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ('fastapi', 'rq', 'ansible_runner', 'sqlalchemy', 'uvicorn')

# Prints the heavy modules loaded after running the command given in argv, and its exit code.
RUN_AND_REPORT = '''
import json, sys
from runner_service.cli import main
sys.argv = ['dbfleet', *sys.argv[1:]]
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
heavy = %r
sys.stdout.flush()
print('\\nMODULES ' + json.dumps({'code': code, 'loaded': sorted(name for name in heavy if name in sys.modules)}))
''' % (HEAVY,)


def run_reporting(*args: str, env: dict | None = None) -> dict:
    completed = subprocess.run([sys.executable, '-c', RUN_AND_REPORT, *args], cwd=REPO, capture_output=True,
                               text=True, env=env, check=False, timeout=60)
    line = [text for text in completed.stdout.splitlines() if text.startswith('MODULES ')]
    assert line, completed.stdout + completed.stderr
    return json.loads(line[-1].removeprefix('MODULES '))


def test_resolving_cron_exec_loads_none_of_the_service():
    script = '''
import json, sys
from typer.main import get_command
from runner_service.cli import app
root = get_command(app)
context = root.make_context('dbfleet', ['cron', 'exec', 'ID', '--', 'true'], resilient_parsing=True)
cron = root.get_command(context, 'cron')
wrapper = cron.get_command(cron.make_context('cron', ['exec'], parent=context, resilient_parsing=True), 'exec')
assert wrapper is not None and wrapper.name == 'exec', wrapper
print(json.dumps(sorted(name for name in %r if name in sys.modules)))
''' % (HEAVY,)
    completed = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True, text=True,
                               check=False, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == []


@pytest.mark.parametrize('args', [('cron', 'exec', '--help'), ('version',)], ids=' '.join)
def test_light_commands_load_none_of_the_service(args):
    report = run_reporting(*args)
    assert report == {'code': 0, 'loaded': []}


def test_the_wrapper_runs_its_command_without_the_service(tmp_path):
    # The API is away (nothing listens on port 9 of loopback): the wrapper runs the command
    # anyway and spools its reports, the path a host takes when the platform is down.
    env = dict(os.environ, DBFLEET_API_URL='http://127.0.0.1:9', DBFLEET_TOKEN='agent-token',
               DBFLEET_VAR_DIR=str(tmp_path), DBFLEET_HOST='db1')
    env.pop('DBFLEET_CRON_SPOOL', None)
    report = run_reporting('cron', 'exec', 'nightly', '--', 'exit 3', env=env)
    assert report == {'code': 3, 'loaded': []}
    assert list((tmp_path / 'cron-spool').iterdir()), 'the reports were not spooled'


def test_the_check_sees_a_heavy_import():
    # The same check on a command that needs the store: it must see SQLAlchemy, or it proves nothing.
    report = run_reporting('store', 'current', '--store', 'sqlite://')
    assert 'sqlalchemy' in report['loaded']


# What `dbfleet cron exec` (the executable, runner_service.console) must not load either: the
# command line's libraries and the API client's. It starts in a few hundredths of a second on
# the standard library (bench/agent.py measures it).
CLI_LIBRARIES = ('typer', 'click', 'rich', 'pydantic', 'pydantic_settings', 'httpx', 'yaml', 'jinja2')


def test_the_executable_runs_the_wrapper_on_the_standard_library(tmp_path):
    script = '''
import json, sys
from runner_service.console import main
sys.argv = ['dbfleet', 'cron', 'exec', 'nightly', '--', 'exit 4']
try:
    main()
except SystemExit as exc:
    code = exc.code
print('\\nMODULES ' + json.dumps({'code': code, 'loaded': sorted(name for name in %r if name in sys.modules)}))
''' % (HEAVY + CLI_LIBRARIES,)
    env = dict(os.environ, DBFLEET_API_URL='http://127.0.0.1:9', DBFLEET_TOKEN='agent-token',
               DBFLEET_VAR_DIR=str(tmp_path), DBFLEET_HOST='db1')
    completed = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, capture_output=True, text=True, env=env,
                               check=False, timeout=60)
    line = [text for text in completed.stdout.splitlines() if text.startswith('MODULES ')]
    assert line, completed.stdout + completed.stderr
    assert json.loads(line[-1].removeprefix('MODULES ')) == {'code': 4, 'loaded': []}
    assert len(list((tmp_path / 'cron-spool').glob('*.json'))) == 2


def test_the_check_sees_a_cli_library():
    # Everything else goes through the Typer application: the same check must see it load.
    script = ('import sys\nfrom runner_service.console import main\nsys.argv = ["dbfleet", "version"]\n'
              'try:\n    main()\nexcept SystemExit:\n    pass\nprint("typer" in sys.modules)')
    completed = subprocess.run([sys.executable, '-c', script],
                               cwd=REPO, capture_output=True, text=True, check=False, timeout=60)
    assert completed.stdout.strip().splitlines()[-1] == 'True', completed.stderr
