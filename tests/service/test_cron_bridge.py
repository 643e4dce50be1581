"""The crontab bridge end to end, as a user runs it: `dbfleet cron import|sync|diff|takeover|revert|
watchdog` and the wrapper `dbfleet cron exec` as real processes, against a real service (API,
workers, a scheduler, a private Redis) and real crontab files; at the end the real cron daemon
fires an observed entry from /etc/cron.d."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from runner_service.bridge.crontab import parse
from devtools.service_harness import PATIENCE, Service

pytestmark = pytest.mark.service



@pytest.fixture(scope='module')
def service(tmp_path_factory):
    """API, 2 workers and a scheduler (takeover jobs fire) on a private Redis."""
    service = Service(tmp_path_factory.mktemp('cron-service'), schedulers=1).start()
    yield service
    service.stop()


@pytest.fixture
def host(service, tmp_path):
    """This machine as a bridged host: its config file (what crontab's processes read, with the
    host's own agent token), its spool, and the dbfleet command run with only that config, as
    crontab would run it."""
    config = tmp_path / 'dbfleet.env'
    spool = tmp_path / 'spool'
    name = 'cronhost-%s' % uuid.uuid4().hex[:6]  # each test its own host: syncs touch only its files
    with service.client('admin') as admin:
        created = admin.post('/api/v1/tokens', json={'name': 'agent-%s' % name, 'role': 'agent', 'host': name})
    assert created.status_code == 201, created.text
    config.write_text('DBFLEET_API_URL=%s\nDBFLEET_TOKEN=%s\nDBFLEET_HOST=%s\nDBFLEET_CRON_SPOOL=%s\n'
                      % (service.url, created.json()['token'], name, spool))
    config.chmod(0o600)
    return Host(service, config, spool, tmp_path, name)


# What people run on a bridged host, each in a shell with their own token (which the
# environment gives, over the config file's agent token): an admin imports (the commands),
# an operator moves entries between modes. Everything else runs as crontab runs it.
PEOPLE = {'import': 'admin', 'takeover': 'operator', 'revert': 'operator', 'observe': 'operator'}


class Host:
    def __init__(self, service: Service, config: Path, spool: Path, directory: Path, name: str):
        self.service, self.config, self.spool, self.directory, self.name = service, config, spool, directory, name

    @property
    def env(self) -> dict:
        """crontab's environment (no DBFLEET_* but the config file's path)."""
        env = {'PATH': '/usr/bin:/bin', 'HOME': str(self.directory), 'SHELL': '/bin/sh', 'LOGNAME': 'root',
               'DBFLEET_CONFIG': str(self.config)}
        return env

    def dbfleet(self, *args, check=True, **kwargs) -> subprocess.CompletedProcess:
        env = dict(self.service.env, DBFLEET_CONFIG=str(self.config))
        for name in ('DBFLEET_API_URL', 'DBFLEET_TOKEN'):
            env.pop(name, None)
        if args[0] == 'cron' and args[1] in PEOPLE:
            env['DBFLEET_TOKEN'] = self.service.tokens[PEOPLE[args[1]]]
        done = subprocess.run([str(Path(sys.executable).parent / 'dbfleet'), *args], env=env,
                              capture_output=True, text=True, timeout=120 * PATIENCE, **kwargs)
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def fire(self, crontab_file: Path, line: int, system: bool = False) -> subprocess.CompletedProcess:
        """Do what cron does with a line: its command through the shell, the %-part on stdin."""
        entry = parse(crontab_file.read_bytes().decode(), system=system).entry(line)
        return subprocess.run([entry.env.get('SHELL', '/bin/sh'), '-c', entry.command], input=entry.stdin,
                              env=dict(self.env, **{k: v for k, v in entry.env.items() if k != 'CRON_TZ'}),
                              capture_output=True, text=True, timeout=120 * PATIENCE)

    def import_one(self, crontab: Path, *options: str) -> dict:
        """Import a crontab file of one entry (user format) and return that entry."""
        [item] = json.loads(self.dbfleet('cron', 'import', '--path', str(crontab), '--path-user', *options,
                                         '--json').stdout)['entries']
        return item['entry']

    @contextmanager
    def api_down(self):
        """The API stopped for the block (workers, scheduler and Redis go on), then started again."""
        self.service.api.terminate()
        self.service.api.wait(20)
        try:
            yield
        finally:
            self.service.start_api()
            self.service.wait_healthy()

    def api(self, method: str, path: str, role: str = 'admin', **kwargs):
        with self.service.client(role) as client:
            answer = client.request(method, path, **kwargs)
        assert answer.status_code < 300, answer.text
        return answer.json()


AWKWARD = ('SHELL=/bin/bash\n'
           'MAILTO=""\n'
           '# the DBA team\'s jobs; do not edit by hand\r\n'
           '\n'
           '*/5 * * * *\techo "it\'s $HOME; `echo tick`" \\% done ; exit 3\n'
           '0 2 * * 7 cat | tr a-z A-Z%first line%second 50\\% line\n'
           '  # indented comment\n'
           '15 3 1 JAN * printf \'%s\\n\' "quoted \'single\' and \\"double\\"" > /dev/null\n'
           'not a valid line\n')


def test_import_wraps_entries_and_the_wrapper_reports_and_passes_everything_through(host):
    crontab = host.directory / 'crontab'
    crontab.write_text(AWKWARD)
    original = {number: host.fire(crontab, number) for number in (5, 6)}
    assert original[5].returncode == 3 and original[6].stdout == 'FIRST LINE\nSECOND 50% LINE\n'

    imported = json.loads(host.dbfleet('cron', 'import', '--path', str(crontab), '--path-user', '--json').stdout)
    assert [item['line'] for item in imported['entries']] == [5, 6, 8]
    assert imported['errors'][0]['line'] == 9 and imported['files_written'] == [str(crontab)]
    after = crontab.read_bytes().decode()
    before_lines, after_lines = AWKWARD.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(before_lines) == len(after_lines)
    for number, (old, new) in enumerate(zip(before_lines, after_lines), start=1):
        if number in (5, 6, 8):
            entry = imported['entries'][[5, 6, 8].index(number)]['entry']
            assert 'cron exec %s -- ' % entry['schedule_id'] in new and entry['original'] == old.rstrip('\n')
        else:
            assert new == old  # comments, environment, blank and bad lines: byte for byte

    for number in (5, 6):
        wrapped = host.fire(crontab, number)
        assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == \
            (original[number].returncode, original[number].stdout, original[number].stderr)
    entry = imported['entries'][0]['entry']
    [run] = host.api('GET', '/api/v1/cron/runs', params={'entry': entry['schedule_id']})
    assert run['status'] == 'failed' and run['exit_code'] == 3 and run['host'] == host.name
    assert 'tick' in run['output_tail'] and run['duration_seconds'] is not None
    assert not list(host.spool.glob('*.json'))

    # Importing again finds the same entries (wrapped lines included) and changes nothing.
    again = json.loads(host.dbfleet('cron', 'import', '--path', str(crontab), '--path-user', '--json').stdout)
    assert [item['created'] for item in again['entries']] == [False] * 3 and again['files_written'] == []
    assert crontab.read_bytes().decode() == after

    # Revert every entry: the file is exactly what it was.
    for item in imported['entries']:
        host.dbfleet('cron', 'revert', item['entry']['schedule_id'])
    assert crontab.read_bytes() == AWKWARD.encode()


def test_the_wrapper_runs_and_spools_while_the_api_is_down_and_delivers_once(host):
    crontab = host.directory / 'crontab'
    crontab.write_text('* * * * * echo spooled; exit 7\n')
    schedule_id = host.import_one(crontab)['schedule_id']
    with host.api_down():
        fired = host.fire(crontab, 1)
        assert (fired.returncode, fired.stdout) == (7, 'spooled\n')
        assert len(list(host.spool.glob('*.json'))) == 2  # its start and its end
    outcome = json.loads(host.dbfleet('cron', 'watchdog').stdout)
    assert outcome['platform'] == 'ok' and outcome['reports_delivered'] == 2
    assert not list(host.spool.glob('*.json'))
    host.dbfleet('cron', 'watchdog')
    [run] = host.api('GET', '/api/v1/cron/runs', params={'entry': schedule_id})
    assert run['status'] == 'failed' and run['exit_code'] == 7 and run['output_tail'] == 'spooled\n'


def test_takeover_runs_on_the_platform_and_revert_brings_the_line_back(host):
    crontab = host.directory / 'crontab'
    marker = host.directory / 'ran-by-platform'
    text = 'MAILTO=dba@example.com\n0 4 * * * echo "$0 \'x\' 100\\%%" >> %s%%%%ignored\n# end\n' % marker
    crontab.write_text(text)
    entry = host.import_one(crontab, '--inventory', 'tests/service/inventory.yml', '--inventory-host', 'node1')
    schedule_id = entry['schedule_id']
    host.dbfleet('cron', 'takeover', schedule_id)
    lines = crontab.read_bytes().decode().splitlines()
    assert lines[1] == '#dbfleet:takeover:%s %s' % (schedule_id, entry['original'])
    assert lines[0] == 'MAILTO=dba@example.com' and lines[2] == '# end'
    # On the platform it may run with second precision: every 2 s.
    host.api('PATCH', '/api/v1/schedules/%s' % schedule_id, json={'expression': '*/2 * * * * *'})
    deadline = time.monotonic() + 120 * PATIENCE
    while time.monotonic() < deadline and not marker.exists():
        time.sleep(0.5)
    assert marker.read_bytes().decode().splitlines()[0] == "/bin/sh 'x' 100%"
    slots = host.api('GET', '/api/v1/schedules/%s/slots' % schedule_id, role='viewer')
    job = host.service.wait(next(slot['job_id'] for slot in slots if slot['job_id']))
    assert job['status'] == 'successful' and job['playbook'] == 'dbfleet.mysql.run_command', \
        host.api('GET', '/api/v1/jobs/%s/stdout' % job['id'], params={'format': 'json'})['stdout'][-3000:]
    host.dbfleet('cron', 'revert', schedule_id)
    assert crontab.read_bytes().decode() == text


def test_an_edit_on_the_platform_is_synced_back_and_sync_is_idempotent(host):
    crontab = host.directory / 'crontab'
    text = '# keep\nPATH=/usr/local/bin:/usr/bin:/bin\n30 1 * * * mysqldump --all-databases | gzip > /b/$(date +\\%F).gz\n'
    crontab.write_text(text)
    schedule_id = host.import_one(crontab)['schedule_id']
    assert host.dbfleet('cron', 'diff', check=False).returncode == 0
    host.api('PATCH', '/api/v1/schedules/%s' % schedule_id, json={'expression': '45 2 * * 1-5'})
    shown = host.dbfleet('cron', 'diff', check=False)
    assert shown.returncode == 1 and '+45 2 * * 1-5 ' in shown.stdout and '-30 1 * * * ' in shown.stdout
    host.dbfleet('cron', 'sync')
    lines = crontab.read_bytes().decode().splitlines(keepends=True)
    assert lines[:2] == text.splitlines(keepends=True)[:2]
    entry = parse(crontab.read_bytes().decode()).entry(3)
    assert entry.timing == '45 2 * * 1-5' and entry.observed == schedule_id
    assert host.dbfleet('cron', 'diff', check=False).returncode == 0
    assert '0 file(s) rewritten' in host.dbfleet('cron', 'sync').stdout
    host.dbfleet('cron', 'revert', schedule_id)
    assert crontab.read_bytes().decode() == text.replace('30 1 * * *', '45 2 * * 1-5')


def test_the_watchdog_gives_entries_back_to_crontab_and_takes_them_back(host):
    crontab = host.directory / 'crontab'
    text = '*/10 * * * * echo fallback-run\n'
    crontab.write_text(text)
    schedule_id = host.import_one(crontab)['schedule_id']
    host.dbfleet('cron', 'takeover', schedule_id)
    host.dbfleet('cron', 'watchdog')  # remembers the entries while the platform answers
    taken = crontab.read_bytes().decode()
    assert taken.startswith('#dbfleet:takeover:')
    with host.api_down():
        outcome = json.loads(host.dbfleet('cron', 'watchdog', '--threshold', '1').stdout)
        assert outcome['platform'] == 'unreachable' and not outcome['fallback']  # the clock starts now
        assert crontab.read_bytes().decode() == taken
        time.sleep(1.2)
        outcome = json.loads(host.dbfleet('cron', 'watchdog', '--threshold', '1').stdout)
        assert outcome['platform'] == 'unreachable' and outcome['fallback'] and outcome['fallback_started']
        assert outcome['fallback_entries'] == [schedule_id]
        entry = parse(crontab.read_bytes().decode()).entry(1)
        assert entry.observed == schedule_id  # crontab runs it again, wrapped
        fired = host.fire(crontab, 1)
        assert fired.returncode == 0 and fired.stdout == 'fallback-run\n'
        assert json.loads(host.dbfleet('cron', 'watchdog', '--threshold', '1').stdout)['files_written'] == 0
    outcome = json.loads(host.dbfleet('cron', 'watchdog').stdout)
    assert outcome['handed_back'] and outcome['reports_delivered'] == 2
    assert crontab.read_bytes().decode() == taken
    [run] = host.api('GET', '/api/v1/cron/runs', params={'entry': schedule_id})
    assert run['via'] == 'fallback' and run['status'] == 'ok'


def machine_crons() -> set[int]:
    """The cron daemons that read this machine's /etc/cron.d: those in our own mount namespace (the
    namespace fleet's hosts each run a cron of their own, reading their own files)."""
    found = subprocess.run(['pgrep', '-x', 'cron'], capture_output=True, text=True).stdout.split()
    own = os.stat('/proc/self/ns/mnt').st_ino
    crons = set()
    for pid in found:
        try:
            if os.stat('/proc/%s/ns/mnt' % pid).st_ino == own:
                crons.add(int(pid))
        except OSError:
            pass
    return crons


@pytest.fixture
def machine_cron():
    """This machine's cron daemon: the one running, else one started for the test and stopped after it."""
    cron = shutil.which('cron', path='/usr/sbin:/usr/bin:/sbin:/bin')
    assert cron, 'the cron daemon is not installed: `make setup` installs Debian\'s cron package'
    running = machine_crons()
    if running:
        yield
        return
    subprocess.run([cron], check=True)  # it forks and the parent returns: find the daemon by name
    try:
        yield
    finally:
        for pid in machine_crons():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


@pytest.mark.skipif(os.geteuid() != 0, reason='writes /etc/cron.d and needs the cron daemon: run as root')
def test_the_real_cron_daemon_fires_an_observed_entry(host, machine_cron):
    name = 'dbfleet-test-%s' % uuid.uuid4().hex[:8]
    path = Path('/etc/cron.d') / name
    out = host.directory / 'fired-by-cron'
    text = ('# written by the dbfleet test suite; removed at its end\nDBFLEET_CONFIG=%s\n'
            '* * * * * root echo "fired by cron" >> %s\n' % (host.config, out))
    path.write_text(text)
    path.chmod(0o644)
    try:
        [item] = json.loads(host.dbfleet('cron', 'import', '--crond', name, '--json').stdout)['entries']
        schedule_id = item['entry']['schedule_id']
        assert parse(path.read_bytes().decode(), system=True).entry(3).observed == schedule_id
        deadline = time.monotonic() + 150 * PATIENCE  # cron reads the file at its next minute, fires at the one after
        runs = []
        while time.monotonic() < deadline:
            runs = [run for run in host.api('GET', '/api/v1/cron/runs', role='viewer',
                                            params={'entry': schedule_id}) if run['status'] == 'ok']
            if runs:
                break
            time.sleep(2)
        assert runs, 'cron did not fire the wrapped entry within 150 s'
        assert runs[0]['via'] == 'observe' and runs[0]['slot_at'] is not None
        assert 'fired by cron' in out.read_bytes().decode()
        host.dbfleet('cron', 'revert', schedule_id)
        assert path.read_bytes().decode() == text
    finally:
        path.unlink(missing_ok=True)


def test_import_and_sync_through_the_playbooks(host):
    """What a fleet does: playbooks/cron_import.yml and cron_sync.yml run dbfleet on each host. The
    admin token imports and is never written to the host; each host gets its own agent token,
    rotated on each import run (the one it replaces is revoked)."""
    crontab = host.directory / 'crontab'
    text = '# from the playbook\n5 4 * * * echo "imported remotely"\n'
    crontab.write_text(text)
    config = host.directory / 'playbook.env'
    env = dict(host.service.env, ANSIBLE_CONFIG=str(Path(host.service.env['DBFLEET_PROJECT_DIR']) / 'ansible.cfg'))
    for name in ('DBFLEET_API_URL', 'DBFLEET_TOKEN'):
        env.pop(name, None)
    binary = Path(sys.executable).parent
    common = ['-i', 'inventories/localhost.yml', '-e', 'dbfleet_executable=%s' % (binary / 'dbfleet'),
              '-e', 'dbfleet_config=%s' % config]
    extra = host.directory / 'vars.json'
    admin_token = host.service.tokens['admin']
    extra.write_text(json.dumps({'dbfleet_api_url': host.service.url, 'dbfleet_token': admin_token,
                                 'cron_source': '--path %s --path-user' % crontab}))

    def import_run() -> dict:
        """Run the import playbook; the host's config file as it left it."""
        done = subprocess.run([str(binary / 'ansible-playbook'), *common, '-e', '@%s' % extra,
                               'playbooks/cron_import.yml'], cwd=host.service.env['DBFLEET_PROJECT_DIR'], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        written = dict(line.split('=', 1) for line in config.read_text().splitlines())
        assert admin_token not in done.stdout + done.stderr and written['DBFLEET_TOKEN'] not in done.stdout
        assert admin_token not in config.read_text(), 'the admin token never reaches the host'
        assert oct(config.stat().st_mode & 0o777) == '0o600'
        return written

    first = import_run()
    agents = {token['name']: token for token in host.api('GET', '/api/v1/tokens', params={'all': True})
              if token['role'] == 'agent' and token['host'] == 'localhost'}
    assert first['DBFLEET_TOKEN_NAME'] in agents and agents[first['DBFLEET_TOKEN_NAME']]['revoked_at'] is None
    [entry] = host.api('GET', '/api/v1/cron/entries', params={'host': 'localhost'}, role='viewer')
    assert entry['original'] == '5 4 * * * echo "imported remotely"' and entry['file']['name'] == str(crontab)
    assert parse(crontab.read_bytes().decode()).entry(2).observed == entry['schedule_id']
    with httpx.Client(base_url=host.service.url, headers={'Authorization': 'Bearer ' + first['DBFLEET_TOKEN']}) as agent:
        assert agent.get('/api/v1/cron/entries', params={'host': 'localhost'}).status_code == 200
        assert agent.get('/api/v1/cron/entries', params={'host': host.name}).status_code == 403
        assert agent.get('/api/v1/jobs').status_code == 403

    second = import_run()  # again: nothing new is imported, the agent token is rotated
    assert second['DBFLEET_TOKEN'] != first['DBFLEET_TOKEN']
    tokens = {token['name']: token for token in host.api('GET', '/api/v1/tokens', params={'all': True})}
    assert tokens[first['DBFLEET_TOKEN_NAME']]['revoked_at'] is not None
    assert tokens[second['DBFLEET_TOKEN_NAME']]['revoked_at'] is None
    assert len(host.api('GET', '/api/v1/cron/entries', params={'host': 'localhost'}, role='viewer')) == 1

    host.api('POST', '/api/v1/cron/entries/%s/mode' % entry['schedule_id'], json={'mode': 'reverted'})
    done = subprocess.run([str(binary / 'ansible-playbook'), *common, 'playbooks/cron_sync.yml'],
                          cwd=host.service.env['DBFLEET_PROJECT_DIR'], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert crontab.read_bytes().decode() == text
