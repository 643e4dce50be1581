"""How `dbfleet api` listens, through real sockets: HTTPS with a certificate from a test CA (and
nothing in plain HTTP), and behind a reverse proxy, the access log naming the client that an
allowed proxy forwards for while anyone else's X-Forwarded-For is ignored."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devtools.fleet.tls import ensure_tls_files, write_ca
from runner_service.processes import PrivateRedis
from devtools.service_harness import PATIENCE, REPO, free_port

pytestmark = pytest.mark.service


@pytest.fixture
def environment(tmp_path):
    """What `dbfleet api` needs to start: a store, a state directory and a Redis of its own."""
    redis = PrivateRedis(tmp_path / 'redis').start()
    env = dict(os.environ, DBFLEET_STORE_URL='sqlite:///%s' % (tmp_path / 'store.db'),
               DBFLEET_VAR_DIR=str(tmp_path / 'var'), DBFLEET_REDIS_URL=redis.url, DBFLEET_PROJECT_DIR=str(REPO),
               DBFLEET_CONFIG=str(tmp_path / 'no.env'))
    yield env
    redis.stop()


class Api:
    """`dbfleet api` as a process, its log in a file."""

    def __init__(self, directory: Path, env: dict, *args: str):
        self.port = free_port()
        self.log = directory / ('api-%d.log' % self.port)
        with open(self.log, 'wb') as log:
            self.process = subprocess.Popen([sys.executable, '-m', 'runner_service.cli', 'api', '--port',
                                             str(self.port), *args], env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_answering(self, get) -> httpx.Response:
        """get() answered; while the API starts it fails to connect."""
        deadline = time.monotonic() + 60 * PATIENCE
        while True:
            assert self.process.poll() is None, 'the API exited: %s' % self.log.read_text()
            try:
                return get()
            except httpx.ConnectError:
                assert time.monotonic() < deadline, 'the API did not answer: %s' % self.log.read_text()
                time.sleep(0.2)

    def log_line(self, text: str) -> str:
        """The log line holding `text`, once it is written."""
        deadline = time.monotonic() + 30 * PATIENCE
        while True:
            found = [line for line in self.log.read_text().splitlines() if text in line]
            if found:
                return found[0]
            assert time.monotonic() < deadline, 'no log line with %r in %s' % (text, self.log.read_text())
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def test_tls_serves_https_verified_by_its_ca_and_nothing_in_plain_http(tmp_path, environment):
    tls = ensure_tls_files(tmp_path / 'tls')  # a CA and a server certificate for 127.0.0.1 / localhost
    api = Api(tmp_path, environment, '--tls-cert', str(tls.server_cert), '--tls-key', str(tls.server_key))
    trusted = ssl.create_default_context(cafile=str(tls.ca))
    try:
        answer = api.wait_answering(lambda: httpx.get('https://127.0.0.1:%d/healthz' % api.port, verify=trusted,
                                                      timeout=10))
        assert answer.status_code in (200, 503) and 'status' in answer.json()
        answer = httpx.get('https://localhost:%d/openapi.json' % api.port, verify=trusted, timeout=10)
        assert answer.status_code == 200 and answer.json()['info']['title'] == 'dbfleet'

        stranger = ssl.create_default_context(cafile=str(write_ca(tmp_path / 'other-ca.pem')))
        with pytest.raises(httpx.ConnectError, match='CERTIFICATE_VERIFY_FAILED'):
            httpx.get('https://127.0.0.1:%d/healthz' % api.port, verify=stranger, timeout=10)
        with pytest.raises(httpx.HTTPError):  # uvicorn reads the request as a broken TLS handshake
            httpx.get('http://127.0.0.1:%d/healthz' % api.port, timeout=10)
    finally:
        api.stop()


def test_behind_a_proxy_the_access_log_names_the_client_only_an_allowed_proxy_forwards_for(tmp_path, environment):
    """Set in the settings file (what /etc/dbfleet/dbfleet.env is, here through DBFLEET_CONFIG) rather
    than options: the proxy is 127.0.0.1; a request from 127.0.0.2 (loopback too, another peer)
    carries a forged header."""
    settings_file = tmp_path / 'dbfleet.env'
    settings_file.write_text("DBFLEET_API_PROXY_HEADERS=true\nDBFLEET_API_FORWARDED_ALLOW_IPS='127.0.0.1'\n"
                             'DBFLEET_API_ACCESS_LOG=true\n')
    api = Api(tmp_path, dict(environment, DBFLEET_CONFIG=str(settings_file)))
    url = 'http://127.0.0.1:%d' % api.port
    forged = httpx.Client(transport=httpx.HTTPTransport(local_address='127.0.0.2'), timeout=10)
    try:
        api.wait_answering(lambda: httpx.get(url + '/healthz?from=start', timeout=10))
        httpx.get(url + '/healthz?from=proxy', headers={'X-Forwarded-For': '203.0.113.7'}, timeout=10)
        forged.get(url + '/healthz?from=stranger', headers={'X-Forwarded-For': '198.51.100.9'})

        from_proxy = api.log_line('/healthz?from=proxy')
        assert '203.0.113.7:' in from_proxy and '127.0.0.1:' not in from_proxy, from_proxy
        from_stranger = api.log_line('/healthz?from=stranger')
        assert '127.0.0.2:' in from_stranger and '198.51.100.9' not in from_stranger, from_stranger
        assert '127.0.0.1:' in api.log_line('/healthz?from=start')
    finally:
        forged.close()
        api.stop()


def test_without_proxy_headers_a_forwarded_for_header_is_ignored(tmp_path, environment):
    api = Api(tmp_path, environment, '--access-log')
    url = 'http://127.0.0.1:%d' % api.port
    try:
        api.wait_answering(lambda: httpx.get(url + '/healthz?from=start', timeout=10))
        httpx.get(url + '/healthz?from=proxy', headers={'X-Forwarded-For': '203.0.113.7'}, timeout=10)
        line = api.log_line('/healthz?from=proxy')
        assert '127.0.0.1:' in line and '203.0.113.7' not in line, line
    finally:
        api.stop()


@pytest.mark.parametrize('args, message', [
    (['--tls-cert', 'cert.pem'], 'TLS needs both a certificate and its key'),
    (['--tls-key', 'key.pem'], 'TLS needs both a certificate and its key'),
    (['--tls-cert', 'missing.pem', '--tls-key', 'missing.key'], 'cannot serve TLS with certificate missing.pem'),
    (['--forwarded-allow-ips', '10.0.0.0/8,proxy one'], "'proxy one' is not an address or network"),
])
def test_bad_serving_options_are_one_line_and_exit_2(tmp_path, environment, args, message):
    done = subprocess.run([sys.executable, '-m', 'runner_service.cli', 'api', *args], env=environment, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60 * PATIENCE)
    assert done.returncode == 2 and done.stderr.count('\n') == 1 and message in done.stderr, done.stderr


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path, environment):
    tls = ensure_tls_files(tmp_path / 'tls')
    done = subprocess.run([sys.executable, '-m', 'runner_service.cli', 'api', '--tls-cert', str(tls.server_cert),
                           '--tls-key', str(tls.client_key)], env=environment, capture_output=True, text=True,
                          timeout=60 * PATIENCE)
    assert done.returncode == 2 and 'cannot serve TLS with certificate' in done.stderr, done.stderr
    assert 'PRIVATE KEY' not in done.stderr
