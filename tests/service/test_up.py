"""`dbfleet up`: API, workers and a private Redis on one machine, supervised, stopped cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devtools.service_harness import INVENTORY, INVENTORY_DIRS, PLAYBOOKS, REPO, free_port

pytestmark = pytest.mark.service
BIN = Path(sys.executable).parent


def children(pid: int) -> list[int]:
    found = []
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / 'stat').read_text().rsplit(')', 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def healthy(url: str, workers: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        try:
            body = httpx.get(url + '/healthz', timeout=5).json()
            if body['status'] == 'ok' and body['workers']['count'] == workers:
                return body
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    raise AssertionError('not healthy: %s' % body)


def test_up_runs_api_workers_and_a_private_redis_and_stops_them_all(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != 'DBFLEET_REDIS_URL'}
    env.update(DBFLEET_STORE_URL='sqlite:///%s' % (tmp_path / 'store.db'), DBFLEET_VAR_DIR=str(tmp_path / 'var'),
               DBFLEET_PROJECT_DIR=str(REPO), DBFLEET_INVENTORY_DIRS=INVENTORY_DIRS,
               PATH='%s:%s' % (BIN, env.get('PATH', '')))
    (tmp_path / 'var').mkdir()
    created = subprocess.run([BIN / 'dbfleet', 'tokens', 'create', 'ops', '--role', 'admin', '--json'], env=env,
                             capture_output=True, text=True, check=True)
    token = json.loads(created.stdout)['token']
    port = free_port()
    url = 'http://127.0.0.1:%d' % port
    up = subprocess.Popen([BIN / 'dbfleet', 'up', '--port', str(port), '--workers', '2'], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = up.stdout.readline()
        assert first.startswith('dbfleet up: private Redis at unix://'), first
        redis_url = first.split(' at ', 1)[1].strip()
        socket_path = Path(redis_url[len('unix://'):])
        assert socket_path.is_relative_to(tmp_path / 'var') and socket_path.exists()
        deadline = time.monotonic() + 120  # up reports what it waits for every 30 s: a line comes
        while not (line := up.stdout.readline()).startswith('dbfleet up: ready'):
            assert line and time.monotonic() < deadline, 'up not ready: %r' % line
        assert line.startswith('dbfleet up: ready: API on %s, 2 worker(s), scheduler passing' % url), line
        # It said so only once all three were up: healthy at the first look.
        health = httpx.get(url + '/healthz', timeout=60).json()
        assert health['status'] == 'ok' and health['workers']['count'] == 2 and health['scheduler']['alive'] == 1
        health = healthy(url, workers=2)
        assert health['workers']['queues'] == ['dbfleet-default']
        info = subprocess.run([BIN / 'rq', 'info', '-u', redis_url], capture_output=True, text=True, timeout=60)
        assert 'dbfleet-default' in info.stdout and '2 workers' in info.stdout, info.stdout + info.stderr

        response = httpx.post(url + '/api/v1/jobs', headers={'Authorization': 'Bearer ' + token},
                              json={'playbook': PLAYBOOKS + '/hello.yml', 'inventory': INVENTORY}, timeout=60)
        assert response.status_code == 201, response.text
        job_url = url + '/api/v1/jobs/' + response.json()['id']
        deadline = time.monotonic() + 120
        while (status := httpx.get(job_url, headers={'Authorization': 'Bearer ' + token}, timeout=60).json()['status']) in (
                'queued', 'running'):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert status == 'successful'

        workers = [pid for pid in children(up.pid) if b' worker' in Path('/proc/%d/cmdline' % pid).read_bytes()
                   .replace(b'\0', b' ')]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len([pid for pid in children(up.pid) if pid not in workers]) < 2:  # the API and a new worker
            assert time.monotonic() < deadline, 'up did not restart the killed worker'
            time.sleep(0.2)
        supervised = children(up.pid)
        grandchildren = [pid for child in supervised for pid in children(child)]
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(60)
    assert up.returncode == 0
    time.sleep(0.5)
    assert [pid for pid in supervised + grandchildren if Path('/proc/%d' % pid).exists()] == []
    assert not socket_path.exists()
