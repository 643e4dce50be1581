"""`make demo`'s last act: the nightly backup across the SSH fleet, in lanes over both worker hosts.

    python -m devtools.ssh_demo        # after `make fleet` (the namespace fleet 0 is up)

As a platform team would run it: the platform's Redis and MariaDB store on the fleet network
(devtools/netfleet/platform.py), `dbfleet api` on this machine, `dbfleet worker --queue dc1` on
the namespace hosts worker1 and worker2 (their own hostname and state directory; Redis, the
store and the secret key from the platform, nothing else shared), the database hosts prepared
by playbooks/prepare_hosts.yml over SSH. Then, with the CLI: an admin token, the fleet's SSH
key as a credential (passphrase and all), a `nightly-backup-ssh` template over
inventories/ssh_fleet.yml in LANES lanes on queue dc1, launched by an operator token and
followed to its end; its timeline shows which worker host ran each lane. Then restore drills of
the hosts just backed up (`dbfleet backups drill --lanes 2`: each newest backup restored into a
sandbox on its database host over SSH, verified, its RTO recorded), in lanes over both workers.
Everything it started is stopped at the end; the fleet stays up (`make fleet-stop`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from devtools.netfleet.harness import PASSPHRASE, NetFleet
from devtools.netfleet.platform import Platform

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKER_HOSTS = ('worker1', 'worker2')
LANES = int(os.environ.get('LANES', '4'))
TEMPLATE = 'nightly-backup-ssh'
DRILL_LANES = int(os.environ.get('DRILL_LANES', '2'))


def say(text: str) -> None:
    print('==> %s' % text, flush=True)


def dbfleet(env: dict, *args: str, capture: bool = False) -> str:
    run = subprocess.run([str(BIN / 'dbfleet'), *args], env=env, cwd=REPO, check=True, text=True,
                         stdout=subprocess.PIPE if capture else None)
    return (run.stdout or '').strip()


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_for(predicate, what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.5)
    raise SystemExit('ssh demo: timed out waiting for %s' % what)


def main() -> int:
    if os.environ.get('NETFLEET_ID', '0') != '0':
        raise SystemExit('ssh demo: inventories/ssh_fleet.yml describes fleet 0; unset NETFLEET_ID')
    fleet = NetFleet()
    fleet.start()  # `make fleet` started it; this only checks
    directory = REPO / 'var' / 'demo-ssh'
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)

    say('preparing the database hosts over SSH (playbooks/prepare_hosts.yml, idempotent)')
    subprocess.run([str(BIN / 'ansible-playbook'), '-i', 'inventories/ssh_fleet.yml', '--private-key', str(fleet.key),
                    'playbooks/prepare_hosts.yml'], cwd=REPO, check=True, stdout=subprocess.DEVNULL)

    platform = Platform(fleet, directory / 'platform').start()
    processes: list[subprocess.Popen] = []
    workers: dict[str, int] = {}
    try:
        port = int(os.environ.get('DEMO_PORT') or free_port())
        env = {
            'PATH': '%s:/usr/sbin:/usr/bin:/sbin:/bin' % BIN, 'HOME': '/root', 'LANG': 'C.UTF-8',
            'ANSIBLE_CONFIG': str(REPO / 'ansible.cfg'),
            'DBFLEET_REDIS_URL': platform.redis_url, 'DBFLEET_STORE_URL': platform.store_url,
            'DBFLEET_SECRET_KEY': Fernet.generate_key().decode(), 'DBFLEET_PROJECT_DIR': str(REPO),
            'DBFLEET_VAR_DIR': str(directory / 'platform-state'),
            'DBFLEET_API_URL': 'http://127.0.0.1:%d' % port,
        }
        say('the platform: Redis and the MariaDB store on %s, the API on 127.0.0.1:%d' % (platform.address, port))
        processes.append(subprocess.Popen([str(BIN / 'dbfleet'), 'api', '--port', str(port)], env=env, cwd=REPO,
                                          stdout=open(directory / 'api.log', 'ab'), stderr=subprocess.STDOUT))
        for host in WORKER_HOSTS:
            workers[host] = fleet.spawn(host, [sys.executable, '-m', 'runner_service.cli', 'worker', '--queue', 'dc1'],
                                        directory / ('worker-%s.log' % host),
                                        env=dict(env, DBFLEET_VAR_DIR='/var/lib/dbfleet/worker'))
        wait_for(lambda: httpx.get(env['DBFLEET_API_URL'] + '/healthz', timeout=5).json()['workers']['per_queue']
                 .get('dc1') == len(WORKER_HOSTS), 'a worker on worker1 and on worker2 listening to dc1')
        say('workers on %s listen to queue dc1' % ' and '.join(WORKER_HOSTS))

        admin = dict(env, DBFLEET_TOKEN=dbfleet(env, 'tokens', 'create', 'demo-admin', '--role', 'admin',
                                                capture=True))
        passphrase = directory / 'passphrase'
        passphrase.write_text(PASSPHRASE)
        passphrase.chmod(0o600)
        dbfleet(admin, 'credentials', 'create', 'fleet-key', '--kind', 'ssh', '--key-file',
                str(fleet.key_with_passphrase), '--passphrase-file', str(passphrase), '--username', 'root')
        passphrase.unlink()
        dbfleet(admin, 'templates', 'create', TEMPLATE, 'playbooks/backup.yml', '-i', 'inventories/ssh_fleet.yml',
                '--limit', 'mysql', '--queue', 'dc1', '--lanes', str(LANES), '--credential', 'fleet-key',
                '--description', 'the nightly backup of the SSH fleet, in lanes over the dc1 workers')
        operator = dict(env, DBFLEET_TOKEN=dbfleet(admin, 'tokens', 'create', 'demo-operator', '--role', 'operator',
                                                   '--template', TEMPLATE, capture=True))

        viewer = directory / 'portal-token'
        viewer.touch(mode=0o600)
        viewer.write_text(dbfleet(admin, 'tokens', 'create', 'demo-viewer', '--role', 'viewer', capture=True))
        say('the portal: %s/ (log in with the viewer token in %s)' % (env['DBFLEET_API_URL'],
                                                                       viewer.relative_to(REPO)))
        say('the nightly backup across the SSH fleet: %d lanes over the dc1 workers' % LANES)
        launched = json.loads(dbfleet(operator, 'templates', 'launch', TEMPLATE, '--json', capture=True))
        say('its page, where the lanes fill in as the hosts are backed up: %s/jobs/%s'
            % (env['DBFLEET_API_URL'], launched['id']))
        subprocess.run([str(BIN / 'dbfleet'), 'jobs', 'logs', launched['id'], '--follow'], env=operator, cwd=REPO,
                       stdout=subprocess.DEVNULL)
        dbfleet(operator, 'jobs', 'show', launched['id'])
        with httpx.Client(base_url=env['DBFLEET_API_URL'],
                          headers={'Authorization': 'Bearer %s' % operator['DBFLEET_TOKEN']}) as client:
            job = client.get('/api/v1/jobs/%s' % launched['id']).json()
            runs = client.get('/api/v1/jobs/%s/runs' % launched['id']).json()
        lanes_of: dict[str, set[int]] = {}
        for run in runs:
            lanes_of.setdefault((run['worker'] or '?').split('/')[0], set()).add(run['lane'])
        say('the backup ended %s; lanes per worker host: %s' % (job['status'], ', '.join(
            '%s: %s' % (host, ' '.join(map(str, sorted(lanes)))) for host, lanes in sorted(lanes_of.items()))))
        ok = job['status'] == 'successful' and set(lanes_of) == set(WORKER_HOSTS)
        if not ok:
            print('ssh demo: expected a successful backup with lanes on both worker hosts', file=sys.stderr)
        ok = drills(admin, env, launched['id']) and ok
        hold(env['DBFLEET_API_URL'])
        return 0 if ok else 1
    finally:
        for host, pid in workers.items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + 60
        for host, pid in workers.items():
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
            if process.poll() is None:
                process.kill()
        platform.stop()


def drills(admin: dict, env: dict, backup_job: str) -> bool:
    """Restore drills of the hosts the backup job backed up, as an operator would run them: the `drill`
    template made by the admin for the SSH fleet (its inventory, queue dc1, the fleet's key), launched
    with `dbfleet backups drill` in DRILL_LANES lanes; True when every host's drill was restored and verified."""
    dbfleet(admin, 'templates', 'create', 'drill', 'playbooks/drill.yml', '-i', 'inventories/ssh_fleet.yml',
            '--limit', 'mysql', '--allow-limit', '--queue', 'dc1', '--lanes', str(DRILL_LANES), '--credential',
            'fleet-key', '--description', 'restore drills of the SSH fleet: newest backups restored into sandboxes')
    operator = dict(env, DBFLEET_TOKEN=dbfleet(admin, 'tokens', 'create', 'demo-drills', '--role', 'operator',
                                               '--template', 'drill', capture=True))
    say('restore drills of the hosts just backed up: %d lanes over the dc1 workers' % DRILL_LANES)
    launched = json.loads(dbfleet(operator, 'backups', 'drill', '--lanes', str(DRILL_LANES), '--json', capture=True))
    job_id = launched['job']['id']
    say('its page: %s/jobs/%s' % (env['DBFLEET_API_URL'], job_id))
    subprocess.run([str(BIN / 'dbfleet'), 'jobs', 'logs', job_id, '--follow'], env=operator, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    dbfleet(operator, 'backups', 'drills', '--limit', '20')
    with httpx.Client(base_url=env['DBFLEET_API_URL'],
                      headers={'Authorization': 'Bearer %s' % operator['DBFLEET_TOKEN']}) as client:
        job = client.get('/api/v1/jobs/%s' % job_id).json()
        backed_up = {run['host'] for run in client.get('/api/v1/jobs/%s/runs' % backup_job).json()
                     if run['status'] == 'ok'}
        found = [drill for drill in client.get('/api/v1/backups/drills', params={'limit': 100}).json()['drills']
                 if drill['job_id'] == job_id]
    good = {drill['host'] for drill in found if drill['status'] == 'ok' and drill['rto_seconds']}
    say('the drills ended %s: %d of %d hosts restored and verified, RTO %s' % (
        job['status'], len(good), len(backed_up), ', '.join('%s %.1f s' % (drill['host'], drill['rto_seconds'])
                                                            for drill in sorted(found, key=lambda d: d['host'])
                                                            if drill['rto_seconds'])))
    if job['status'] != 'successful' or not backed_up or good != backed_up:
        print('ssh demo: expected a successful drill of every host backed up (%s), got %s'
              % (', '.join(sorted(backed_up)), ', '.join(sorted(good)) or 'none'), file=sys.stderr)
        return False
    return True


def hold(url: str) -> None:
    """With DEMO_HOLD=1 and a terminal, keep the platform (and its portal) up until Enter."""
    if os.environ.get('DEMO_HOLD') == '1' and sys.stdin.isatty():
        input('==> the portal stays at %s/ until you press Enter ' % url)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    return False


if __name__ == '__main__':
    sys.exit(main())
