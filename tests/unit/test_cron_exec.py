"""The wrapper crontab runs (runner_service.bridge.cron_exec): it reads the configuration as the
settings do (runner_service.bridge.host_api), talks to a real HTTP server, and spools exactly the
reports worth sending later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dbfleet.settings import Settings
from runner_service.bridge import cron_exec
from runner_service.bridge.host_api import AgentConfig, read_config
from runner_service.bridge.spool import Spool

CLEAN = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'HOME': '/root'}


def settings_answer(environ: dict) -> tuple:
    """What dbfleet.settings makes of `environ` (and its config file)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        settings = Settings(_env_file=environ.get('DBFLEET_CONFIG') or '/etc/dbfleet/dbfleet.env')
        return (settings.api_url, settings.token, settings.host, Path(settings.cron_spool),
                settings.cron_fallback_seconds)
    finally:
        os.environ.clear()
        os.environ.update(saved)


CASES = {
    'defaults': ({}, None),
    'environment': ({'DBFLEET_API_URL': 'https://api.example:8443/dbfleet', 'DBFLEET_TOKEN': 'tok-env',
                     'DBFLEET_HOST': 'db7', 'DBFLEET_VAR_DIR': '/srv/state'}, None),
    'file only': ({}, 'DBFLEET_API_URL=http://10.0.0.5:8080\nDBFLEET_TOKEN="tok file"\nDBFLEET_HOST=db9\n'
                      'DBFLEET_CRON_SPOOL=/var/spool/x\n'),
    'environment wins over the file': ({'DBFLEET_TOKEN': 'tok-env', 'DBFLEET_VAR_DIR': '/srv/state'},
                                       'DBFLEET_TOKEN=tok-file\nDBFLEET_API_URL=http://10.0.0.5:8080\n'
                                       'DBFLEET_VAR_DIR=/srv/other\nDBFLEET_CRON_FALLBACK_SECONDS=90\n'),
    'fallback from the environment': ({'DBFLEET_CRON_FALLBACK_SECONDS': '12.5'}, None),
    'names in any case, export, comments': ({}, '# the agent\nexport dbfleet_api_url=http://10.0.0.6:80\n'
                                                "dbfleet_token='tok'   # inline\nOTHER=1\n"),
    'empty token': ({'DBFLEET_TOKEN': ''}, 'DBFLEET_TOKEN=tok-file\n'),
}


@pytest.mark.parametrize('case', CASES, ids=list(CASES))
def test_the_wrapper_reads_the_configuration_as_the_settings_do(case, tmp_path):
    environ, file_text = CASES[case]
    environ = dict(CLEAN, DBFLEET_CONFIG=str(tmp_path / 'dbfleet.env'), **environ)
    if file_text is not None:
        (tmp_path / 'dbfleet.env').write_text(file_text)
    config = read_config(environ)
    assert (config.api_url, config.token, config.host, config.spool, config.fallback_seconds) == \
        settings_answer(environ)
    assert read_config(environ, host='given').host == 'given'


class Api:
    """A real HTTP server on loopback that answers reports as it is told, and keeps them."""

    def __init__(self):
        self.status, self.body, self.reports, self.headers = 200, {'action': 'run'}, [], []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers['Content-Length'])
                api.reports.append((self.path, json.loads(self.rfile.read(length))))
                api.headers.append(dict(self.headers))
                payload = api.body if isinstance(api.body, bytes) else json.dumps(api.body).encode()
                self.send_response(api.status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = 'http://127.0.0.1:%d/prefix' % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    server = Api()
    yield server
    server.close()


def config_for(url: str, spool: Path, token: str | None = 'agent-token') -> AgentConfig:
    return AgentConfig(api_url=url, token=token, host='db1', spool=spool)


def test_reports_reach_the_api_with_the_token_under_the_url_s_path(api, tmp_path):
    code = cron_exec.run_wrapped('entry-1', ['exit 3'], config_for(api.url, tmp_path))
    assert code == 3
    assert [(path, report['phase']) for path, report in api.reports] == [('/prefix/api/v1/cron/runs', 'start'),
                                                                         ('/prefix/api/v1/cron/runs', 'end')]
    start, end = (report for _, report in api.reports)
    assert start['id'] == end['id'] and start['schedule_id'] == 'entry-1' and start['host'] == 'db1'
    assert end['exit_code'] == 3 and start['fallback'] is False
    assert api.headers[0]['Authorization'] == 'Bearer agent-token'
    assert Spool(tmp_path).pending() == []


def test_a_slot_the_platform_runs_itself_is_skipped(api, tmp_path):
    api.body = {'action': 'skip'}
    marker = tmp_path / 'ran'
    assert cron_exec.run_wrapped('entry-1', ['touch %s' % marker], config_for(api.url, tmp_path)) == 0
    assert not marker.exists() and len(api.reports) == 1


@pytest.mark.parametrize('status, body', [(503, {'detail': 'store unavailable'}), (401, {'detail': 'bad token'}),
                                          (429, {'detail': 'slow down'}), (200, b'not json'),
                                          (200, {'unexpected': True}), (302, b'')],
                         ids=['503', '401', '429', 'not json', 'no action', 'redirect'])
def test_an_answer_worth_retrying_spools_the_report_and_the_command_still_runs(api, tmp_path, status, body):
    api.status, api.body = status, body
    marker = tmp_path / 'ran'
    assert cron_exec.run_wrapped('entry-1', ['touch %s' % marker], config_for(api.url, tmp_path / 'spool')) == 0
    assert marker.exists()
    assert [path.name.rsplit('-', 1)[1] for path in Spool(tmp_path / 'spool').pending()] == ['start.json', 'end.json']


def test_a_report_refused_for_good_is_not_spooled(api, tmp_path, capsys):
    api.status, api.body = 404, {'detail': 'no crontab entry entry-1'}
    assert cron_exec.run_wrapped('entry-1', ['true'], config_for(api.url, tmp_path)) == 0
    assert Spool(tmp_path).pending() == []
    assert 'report refused: no crontab entry entry-1' in capsys.readouterr().err


def test_spooled_reports_go_first_in_order_once_the_api_answers(api, tmp_path):
    api.status = 503
    cron_exec.run_wrapped('entry-1', ['true'], config_for(api.url, tmp_path))
    first = [report['id'] for _, report in api.reports]
    api.status, api.reports = 200, []
    cron_exec.run_wrapped('entry-2', ['true'], config_for(api.url, tmp_path))
    assert [(report['schedule_id'], report['phase']) for _, report in api.reports] == [
        ('entry-1', 'start'), ('entry-1', 'end'), ('entry-2', 'start'), ('entry-2', 'end')]
    assert api.reports[0][1]['id'] == first[0]
    assert Spool(tmp_path).pending() == []


@pytest.mark.parametrize('url', ['http://127.0.0.1:9', 'https://127.0.0.1:9', 'ftp://127.0.0.1/', 'not a url',
                                 'http://127.0.0.1:99999'])
def test_an_api_out_of_reach_or_misconfigured_spools(url, tmp_path):
    assert cron_exec.run_wrapped('entry-1', ['exit 5'], config_for(url, tmp_path)) == 5
    assert len(Spool(tmp_path).pending()) == 2


@pytest.mark.parametrize('trusted', [False, True], ids=['untrusted CA: spooled', 'CA in SSL_CERT_FILE: sent'])
def test_an_https_api_is_verified_against_the_system_s_trust(tmp_path, monkeypatch, trusted):
    import ssl
    from devtools.fleet.tls import ensure_tls_files
    files = ensure_tls_files(tmp_path / 'tls')
    if trusted:
        monkeypatch.setenv('SSL_CERT_FILE', str(files.ca))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(files.server_cert, files.server_key)
    api = Api()
    api.server.socket = server_context.wrap_socket(api.server.socket, server_side=True)
    try:
        cron_exec.run_wrapped('entry-1', ['true'], config_for(api.url.replace('http://', 'https://'), tmp_path))
        assert len(Spool(tmp_path).pending()) == (0 if trusted else 2)
        assert len(api.reports) == (2 if trusted else 0)
    finally:
        api.close()


def test_without_a_token_nothing_is_sent(api, tmp_path):
    cron_exec.run_wrapped('entry-1', ['true'], config_for(api.url, tmp_path, token=None))
    assert api.reports == [] and len(Spool(tmp_path).pending()) == 2


@pytest.mark.parametrize('argv, message', [([], 'the following arguments are required: ID'),
                                           (['entry-1'], 'no command after --'),
                                           (['entry-1', '--'], 'no command after --'),
                                           (['--bogus', 'entry-1', '--', 'true'], 'unrecognized arguments')])
def test_bad_usage_is_one_line_and_exit_2(argv, message):
    done = subprocess.run([str(Path(sys.executable).parent / 'dbfleet'), 'cron', 'exec', *argv], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr and done.stderr.startswith('dbfleet cron exec:')


def test_a_token_no_request_can_carry_spools_the_reports(api, tmp_path):
    marker = tmp_path / 'ran'
    code = cron_exec.run_wrapped('entry-1', ['touch %s; exit 6' % marker],
                                 config_for(api.url, tmp_path / 'spool', token='bad\r\ntoken'))
    assert code == 6 and marker.exists() and api.reports == []
    assert len(Spool(tmp_path / 'spool').pending()) == 2


def test_a_report_that_cannot_be_kept_never_stops_the_command(api, tmp_path, capsys):
    spool = tmp_path / 'spool'
    spool.write_text('not a directory')
    api.status = 503
    marker = tmp_path / 'ran'
    code = cron_exec.run_wrapped('entry-1', ['touch %s; exit 6' % marker], config_for(api.url, spool))
    assert code == 6 and marker.exists()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith('dbfleet cron exec: report of the ') for line in lines), lines
