"""The crontab bridge on the namespace fleet's database hosts, over SSH and over the fleet network:
playbooks/cron_import.yml and cron_sync.yml edit a host's real crontab (its own spool, read and
written by Debian's `crontab`), the wrapper on the host reports to the API on the platform's
address, and the host's watchdog gives a taken-over entry back to crontab while the host's link is
down (`ip link set ... down`), then hands it back, with the runs made meanwhile delivered."""

from __future__ import annotations

import json
import shlex

import pytest

from runner_service.bridge.crontab import parse
from tests.conftest import REPO
from tests.netfleet.conftest import VENV, output_of
from devtools.service_harness import PATIENCE, Service

pytestmark = [pytest.mark.netfleet, pytest.mark.service]

DBFLEET = VENV + '/bin/dbfleet'
HOST = 'db1'
LINE = '17 3 * * * echo netfleet-entry ran on $(hostname)'
# crontab's environment: what cron gives a job (the wrapper finds its settings in /etc/dbfleet).
CRON_ENV = ['env', '-i', 'PATH=/usr/bin:/bin', 'HOME=/root', 'SHELL=/bin/sh', 'LOGNAME=root']


@pytest.fixture(scope='module')
def service(netfleet, tmp_path_factory):
    """The API on the platform's address (the fleet bridge), where the hosts reach it."""
    address = netfleet.topology.controller_address
    service = Service(tmp_path_factory.mktemp('cron-ssh-service'), workers=0,
                      variables={'DBFLEET_API_HOST': address})
    service.url = 'http://%s:%d' % (address, service.port)
    service.start()
    yield service
    service.stop()


def api(service, method: str, path: str, **kwargs):
    with service.client('admin') as client:
        response = client.request(method, path, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def crontab_of(netfleet) -> str:
    return netfleet.run_inside(HOST, ['crontab', '-l'], check=False).stdout


def fire(netfleet, entry: dict) -> str:
    """Do what cron does with the entry's line on the host: its command through the shell, in
    crontab's environment; the output."""
    line = parse(crontab_of(netfleet)).find_observed(entry['schedule_id'])
    assert line is not None, crontab_of(netfleet)
    done = netfleet.run_inside(HOST, CRON_ENV + ['/bin/sh', '-c', line.command], timeout=60 * PATIENCE)
    return done.stdout


def watchdog(netfleet) -> dict:
    """One watchdog pass on the host, as crontab runs it every minute; what it printed. The
    threshold is 10 ms: the second pass without the platform falls back, whatever the clock."""
    done = netfleet.run_inside(HOST, CRON_ENV + [DBFLEET, 'cron', 'watchdog', '--threshold', '0.01'],
                               timeout=60 * PATIENCE)
    return json.loads(done.stdout)


def synced(fleet) -> None:
    run = fleet.playbook(REPO / 'playbooks' / 'cron_sync.yml', '--limit', HOST, '-e',
                         'dbfleet_executable=%s' % DBFLEET)
    assert run.returncode == 0, output_of(run)[-4000:]


def test_the_agent_runs_the_command_and_spools_its_reports_when_the_api_is_away(prepared, netfleet):
    assert 'usage: dbfleet cron exec' in netfleet.ssh('db4', '%s cron exec --help' % DBFLEET).stdout.lower()
    spool = '/var/lib/dbfleet/cron-spool'
    # An API address on the host's own network where nothing listens: refused at once.
    api_url = 'http://%s:9' % netfleet.host('db4').address
    environment = 'DBFLEET_API_URL=%s DBFLEET_TOKEN=not-a-real-token' % api_url
    netfleet.ssh('db4', 'rm -rf %s' % spool)
    for command, status in (('true', 0), ('exit 3', 3)):
        run = netfleet.ssh('db4', '%s %s cron exec sched-netfleet -- %s' % (environment, DBFLEET, shlex.quote(command)),
                           check=False)
        assert run.returncode == status, run.stderr
    names = netfleet.ssh('db4', 'ls %s' % spool).stdout.split()
    reports = [json.loads(netfleet.ssh('db4', 'cat %s/%s' % (spool, name)).stdout) for name in sorted(names)]
    assert [(report['phase'], report.get('exit_code')) for report in reports] == [
        ('start', None), ('end', 0), ('start', None), ('end', 3)]
    assert {(report['schedule_id'], report['host']) for report in reports} == {('sched-netfleet', 'db4')}
    assert netfleet.ssh('db4', 'stat -c %%a %s' % spool).stdout.strip() == '700'


def test_a_hosts_crontab_is_bridged_over_ssh_and_falls_back_while_its_link_is_down(prepared, fleet, netfleet,
                                                                                     service):
    netfleet.run_inside(HOST, ['rm', '-rf', '/etc/dbfleet/dbfleet.env', '/var/lib/dbfleet/cron-spool'])
    netfleet.run_inside(HOST, ['crontab', '-'], input='# root on %s\nSHELL=/bin/sh\n%s\n' % (HOST, LINE))
    original = crontab_of(netfleet)
    try:
        # Import over SSH: the entry is wrapped on the host and the host gets an agent token.
        variables = fleet.directory / 'cron-import.json'
        variables.write_text(json.dumps({'dbfleet_api_url': service.url, 'dbfleet_token': service.tokens['admin'],
                                         'dbfleet_executable': DBFLEET, 'cron_source': '--user root'}))
        run = fleet.playbook(REPO / 'playbooks' / 'cron_import.yml', '--limit', HOST, '-e', '@%s' % variables)
        assert run.returncode == 0, output_of(run)[-4000:]
        assert service.tokens['admin'] not in output_of(run)
        [entry] = api(service, 'GET', '/api/v1/cron/entries', params={'host': HOST})
        assert entry['original'] == LINE and entry['mode'] == 'observe'
        assert 'cron exec %s -- ' % entry['schedule_id'] in crontab_of(netfleet)
        config = netfleet.run_inside(HOST, ['cat', '/etc/dbfleet/dbfleet.env']).stdout
        assert 'DBFLEET_API_URL=%s\n' % service.url in config and 'DBFLEET_HOST=%s\n' % HOST in config
        assert service.tokens['admin'] not in config
        assert netfleet.run_inside(HOST, ['stat', '-c', '%a', '/etc/dbfleet/dbfleet.env']).stdout.strip() == '600'

        # Cron runs the wrapped line on the host: the run reaches the API over the fleet network.
        assert fire(netfleet, entry) == 'netfleet-entry ran on %s\n' % HOST
        [observed] = api(service, 'GET', '/api/v1/cron/runs', params={'host': HOST})
        assert (observed['via'], observed['exit_code'], observed['output_tail']) == \
            ('observe', 0, 'netfleet-entry ran on %s\n' % HOST)

        # Taken over: cron_sync.yml comments the line out, naming the schedule.
        api(service, 'POST', '/api/v1/cron/entries/%s/mode' % entry['schedule_id'], json={'mode': 'takeover'})
        synced(fleet)
        [line] = [text for text in crontab_of(netfleet).splitlines() if entry['schedule_id'] in text]
        assert line.startswith('#'), crontab_of(netfleet)
        assert watchdog(netfleet)['platform'] == 'ok'

        # The host's link goes down: the watchdog gives the entry back to crontab (wrapped), and
        # a run made meanwhile is spooled on the host.
        netfleet.cut(HOST)
        try:
            first = watchdog(netfleet)
            assert first['platform'] == 'unreachable' and first['fallback'] is False, first
            second = watchdog(netfleet)
            assert second['fallback_started'] is True and second['fallback_entries'] == [entry['schedule_id']], second
            assert fire(netfleet, entry) == 'netfleet-entry ran on %s\n' % HOST
            spooled = netfleet.run_inside(HOST, ['ls', '/var/lib/dbfleet/cron-spool']).stdout.split()
            assert sorted(name.rsplit('-', 1)[1] for name in spooled if name.endswith('.json')) == \
                ['end.json', 'start.json']
        finally:
            netfleet.restore(HOST)

        # Back: the watchdog hands the entry back to the platform and delivers the spooled run.
        back = watchdog(netfleet)
        assert back['platform'] == 'ok' and back['handed_back'] is True and back['reports_delivered'] == 2, back
        [line] = [text for text in crontab_of(netfleet).splitlines() if entry['schedule_id'] in text]
        assert line.startswith('#'), crontab_of(netfleet)
        runs = api(service, 'GET', '/api/v1/cron/runs', params={'host': HOST})
        assert [(run['via'], run['exit_code']) for run in runs] == [('fallback', 0), ('observe', 0)]

        # Reverted: the line is back exactly as it was.
        api(service, 'POST', '/api/v1/cron/entries/%s/mode' % entry['schedule_id'], json={'mode': 'reverted'})
        synced(fleet)
        assert crontab_of(netfleet) == original
    finally:
        netfleet.restore(HOST)
        netfleet.run_inside(HOST, ['crontab', '-r'], check=False)
        netfleet.run_inside(HOST, ['rm', '-rf', '/etc/dbfleet/dbfleet.env', '/var/lib/dbfleet/cron-spool'])
