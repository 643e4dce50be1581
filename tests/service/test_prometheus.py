"""A real Prometheus (Debian's `prometheus`, started here on a free loopback port with its own
storage) scrapes the service's /metrics with a viewer token and answers a query with the jobs
just run; it loads the shipped alert rules, which `promtool` checks and unit-tests; and the
Grafana dashboard and the rules name only metrics the service exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from devtools.service_harness import PATIENCE, REPO, Service, free_port

pytestmark = [pytest.mark.service,
              pytest.mark.skipif(shutil.which('prometheus') is None or shutil.which('promtool') is None,
                                 reason='needs Debian\'s prometheus package (scripts/bootstrap.sh installs it)')]

MONITORING = REPO / 'docs' / 'monitoring'
ALERTS = MONITORING / 'alerts.yml'
DASHBOARD = MONITORING / 'grafana-dashboard.json'
METRIC = re.compile(r'\bdbfleet_[a-z0-9_]+')


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('prometheus-service'), workers=2).start()
    yield service
    service.stop()


class Prometheus:
    """One prometheus process scraping the service every second, stopped when done."""

    def __init__(self, directory: Path, target: str, token: str):
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        token_file = directory / 'token'
        token_file.write_text(token)
        token_file.chmod(0o600)
        self.config = directory / 'prometheus.yml'
        self.config.write_text(json.dumps({  # JSON is YAML
            'global': {'scrape_interval': '1s', 'scrape_timeout': '1s', 'evaluation_interval': '1s'},
            'rule_files': [str(ALERTS)],
            'scrape_configs': [{'job_name': 'dbfleet', 'static_configs': [{'targets': [target]}],
                                'authorization': {'type': 'Bearer', 'credentials_file': str(token_file)}}]}))
        self.directory = directory
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> 'Prometheus':
        log = open(self.directory / 'prometheus.log', 'ab')
        self.process = subprocess.Popen(['prometheus', '--config.file=%s' % self.config,
                                         '--storage.tsdb.path=%s' % (self.directory / 'data'),
                                         '--web.listen-address=127.0.0.1:%d' % self.port],
                                        stdout=log, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def get(self, path: str, **params) -> dict | None:
        """The `data` of an API answer, or None while prometheus is not answering yet."""
        assert self.process.poll() is None, (self.directory / 'prometheus.log').read_text()[-3000:]
        try:
            response = httpx.get(self.url + path, params=params, timeout=10)
        except httpx.HTTPError:
            return None
        return response.json()['data'] if response.status_code == 200 else None

    def query(self, expression: str) -> float | None:
        data = self.get('/api/v1/query', query=expression)
        return float(data['result'][0]['value'][1]) if data and data['result'] else None

    def wait_for(self, expression: str, expected: float, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout * PATIENCE
        while (found := self.query(expression)) != expected:
            assert time.monotonic() < deadline, '%s is %s, not %s' % (expression, found, expected)
            time.sleep(0.3)


def exposed_names(service) -> set[str]:
    """Every sample name /metrics may carry: its families (HELP lines) and their histograms' buckets."""
    response = httpx.get(service.url + '/metrics', timeout=30,
                         headers={'Authorization': 'Bearer %s' % service.tokens['viewer']})
    assert response.status_code == 200, response.text
    names = set(re.findall(r'^# HELP (\S+)', response.text, re.M))
    return names | {name + '_bucket' for name in re.findall(r'^# TYPE (\S+) histogram$', response.text, re.M)}


def test_prometheus_scrapes_the_jobs_just_run_and_loads_the_alert_rules(service, tmp_path):
    jobs = [service.launch('hello.yml') for _ in range(3)]
    assert {service.wait(job['id'])['status'] for job in jobs} == {'successful'}
    with Prometheus(tmp_path, '127.0.0.1:%d' % service.port, service.tokens['viewer']) as prometheus:
        prometheus.wait_for('sum(dbfleet_jobs{job="dbfleet",status="successful"})', 3)
        prometheus.wait_for('sum(dbfleet_job_duration_seconds_gcount)', 3)
        prometheus.wait_for('dbfleet_queue_workers{queue="default"}', 2)
        assert prometheus.query('up{job="dbfleet"}') == 1
        assert prometheus.query('dbfleet_job_events_stored_total') >= sum(len(service.events(job['id']))
                                                                          for job in jobs)
        groups = prometheus.get('/api/v1/rules')['groups']
        assert sorted(rule['name'] for group in groups for rule in group['rules']) == [
            'DbfleetBackupTooOld', 'DbfleetBackupUntested', 'DbfleetBinlogArchiveLagging', 'DbfleetMetricsSourceDown',
            'DbfleetNotificationsFailing', 'DbfleetQueueWithoutWorker', 'DbfleetRestoreDrillFailed',
            'DbfleetScheduleMissedSlots']
        assert all(rule['health'] != 'err' for group in groups for rule in group['rules'])


def test_the_alert_rules_pass_promtool():
    checked = subprocess.run(['promtool', 'check', 'rules', str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(['promtool', 'test', 'rules', 'alerts.test.yml'], cwd=MONITORING, capture_output=True,
                            text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_dashboard_and_the_rules_name_only_metrics_that_exist(service):
    exposed = exposed_names(service)
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target['expr'] for panel in dashboard['panels'] for target in panel['targets']]
    used = {name for expression in expressions for name in METRIC.findall(expression)}
    used_by_rules = set(METRIC.findall(ALERTS.read_text()))
    assert used and used_by_rules
    assert used - exposed == set(), 'the dashboard names metrics /metrics does not have'
    assert used_by_rules - exposed == set(), 'the alert rules name metrics /metrics does not have'
    families = {name for name in exposed if not name.endswith(('_bucket', '_gcount', '_gsum'))}
    assert families - {name.removesuffix('_bucket') for name in used} == set(), 'a metric the dashboard does not show'
