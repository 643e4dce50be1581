"""Each host's restorable window through the real API (GET /api/v1/backups/windows) and the CLI
(`dbfleet backups show HOST`, `dbfleet backups check`), through the API and from the store alike; every
role; times fixed in the past and the check's instant given, so nothing depends on today's date."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from dbfleet.store import open_store
from devtools.service_harness import Service

pytestmark = pytest.mark.service

T0 = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.timezone.utc)
HEX = '%064x'
GAP = dict(kind='purged', previous='mysql-bin.000002', file='mysql-bin.000004', at='2026-03-01T21:00:00Z',
           detail='1 binary log(s) purged from the server before the archive fetched them: mysql-bin.000003',
           missing=['mysql-bin.000003'])


def hours(number):
    return T0 + dt.timedelta(hours=number)


def seed(store_url):
    """db-w: backups at T0 and T0+24h, binlogs 1..5 with a purged log between 2 and 4 (its window starts at
    the second backup); db-x: one old backup and no archive; db-y: only a failed attempt."""
    with open_store(store_url) as store:
        for number, (day, binlog_file) in enumerate(((0, 'mysql-bin.000001'), (1, 'mysql-bin.000004'))):
            store.backups.record('db-w', method='logical', started_at=hours(24 * day),
                                 finished_at=hours(24 * day) + dt.timedelta(minutes=5), bytes=1000, checksum=HEX % 1,
                                 binlog_file=binlog_file, binlog_position=342, gtid='0-1-%d' % (10 + number))
        for number, (first, last) in enumerate(((0, 10), (10, 21), (23, 30), (30, 40)), start=1):
            name = 'mysql-bin.%06d' % (number if number < 3 else number + 1)
            store.binlogs.record('db-w', name, server_id=1, first_gtid='0-1-%d' % (first * 10 + 1),
                                 last_gtid='0-1-%d' % (last * 10), first_event_at=hours(first),
                                 last_event_at=hours(last), bytes=4096, sha256=HEX % number,
                                 path='/srv/backups/db-w/binlogs/%s' % name, gap=GAP if name == GAP['file'] else None,
                                 archived_at=hours(last) + dt.timedelta(seconds=5))
        store.binlogs.set_state('db-w', 12.5, 'mysql-bin.000006', [GAP], hours(40))
        store.backups.record('db-x', method='physical', started_at=hours(-48), finished_at=hours(-47))
        store.backups.record('db-y', method='logical', status='failed', started_at=hours(1), error='denied')


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('windows'), workers=0).start()
    seed(service.store_url)
    with service.client('admin') as admin:
        made = admin.post('/api/v1/tokens', json={'name': 'agent-w', 'role': 'agent', 'host': 'db-w'})
        assert made.status_code == 201, made.text
        service.tokens['agent'] = made.json()['token']
    yield service
    service.stop()


def test_windows_for_every_reading_role_and_not_for_an_agent(service):
    answers = {}
    for role in ('viewer', 'operator', 'admin'):
        with service.client(role) as client:
            answer = client.get('/api/v1/backups/windows')
        assert answer.status_code == 200, answer.text
        answers[role] = answer.json()
    assert answers['viewer'] == answers['operator'] == answers['admin']
    windows = {window['host']: window for window in answers['viewer']['windows']}
    assert sorted(windows) == ['db-w', 'db-x', 'db-y']
    w = windows['db-w']
    assert (w['start'], w['end'], w['chain'], w['archived']) == ('2026-03-02T01:00:00Z', '2026-03-02T17:00:00Z',
                                                                 True, 4)
    assert w['lag_seconds'] == 12.5 and w['newest_backup']['binlog_file'] == 'mysql-bin.000004'
    assert [(gap['kind'], gap['file'], gap['missing']) for gap in w['gaps']] == [
        ('purged', 'mysql-bin.000004', ['mysql-bin.000003'])]
    assert (windows['db-x']['start'], windows['db-x']['end'], windows['db-x']['chain']) == (
        '2026-02-27T02:00:00Z', '2026-02-27T02:00:00Z', False)
    assert windows['db-y']['start'] is None and windows['db-y']['newest_backup'] is None
    with service.client('agent') as client:
        assert client.get('/api/v1/backups/windows').status_code == 403
    assert httpx.get(service.url + '/api/v1/backups/windows', timeout=60).status_code == 401


def test_one_host_and_hostile_input(service):
    with service.client('viewer') as client:
        one = client.get('/api/v1/backups/windows', params={'host': 'db-w'})
        unknown = client.get('/api/v1/backups/windows', params={'host': 'nobody'})
        too_long = client.get('/api/v1/backups/windows', params={'host': 'x' * 300})
        empty = client.get('/api/v1/backups/windows', params={'host': ''})
    assert [window['host'] for window in one.json()['windows']] == ['db-w']
    assert unknown.status_code == 200 and unknown.json()['windows'][0]['start'] is None
    assert too_long.status_code == 422 and empty.status_code == 422


@pytest.mark.parametrize('args', [('backups', 'show', 'db-w'), ('backups', 'show', 'db-w', '--json'),
                                  ('backups', 'show', 'db-y')], ids=' '.join)
def test_show_prints_the_same_through_the_api_and_from_the_store(service, args):
    api = service.dbfleet(*args, token=service.tokens['viewer'])
    direct = service.dbfleet(*args, '--store', service.store_url)
    assert api.returncode == direct.returncode == 0, (api.stderr, direct.stderr)
    assert api.stdout == direct.stdout
    if args[2] == 'db-w' and '--json' not in args:
        assert 'restorable window: 2026-03-02T01:00:00 .. 2026-03-02T17:00:00 UTC (point in time' in api.stdout
        assert 'gap before mysql-bin.000004 (purged' in api.stdout and 'lag 12 s' in api.stdout


def test_check_is_nagios_style_through_the_api_and_from_the_store(service):
    expected = ['CRITICAL: 3 host(s) checked, 2 critical, 1 warning',
                'WARNING db-w: chain gap before mysql-bin.000004 (purged) shortens the window',
                'CRITICAL db-x: newest backup is 94h00m old (policy 26h00m)',
                'CRITICAL db-y: no successful backup']
    for completed in (service.dbfleet('backups', 'check', '--now', '2026-03-03T00:00:00',
                                      token=service.tokens['viewer']),
                      service.dbfleet('backups', 'check', '--now', '2026-03-03T00:00:00', '--store',
                                      service.store_url)):
        assert completed.returncode == 2, completed.stderr
        assert completed.stdout.splitlines() == expected
    # With a long enough policy only the missing backup and the gap remain; the gap alone is a warning.
    longer = service.dbfleet('backups', 'check', '--now', '2026-03-03T00:00:00', '--max-age', '5d',
                             token=service.tokens['viewer'])
    assert longer.returncode == 2 and 'db-x' not in longer.stdout


def test_check_refuses_a_bad_policy_in_one_line(service):
    completed = service.dbfleet('backups', 'check', '--max-age', 'forever', token=service.tokens['viewer'])
    assert completed.returncode == 2 and completed.stdout == ''
    assert completed.stderr.startswith('dbfleet: --max-age: ') and len(completed.stderr.splitlines()) == 1


def test_the_archive_lag_is_a_metric(service):
    from prometheus_client.parser import text_string_to_metric_families
    answer = httpx.get(service.url + '/metrics', headers={'Authorization': 'Bearer %s' % service.tokens['viewer']},
                       timeout=30)
    assert answer.status_code == 200, answer.text
    samples = [(sample.labels, sample.value) for family in text_string_to_metric_families(answer.text)
               for sample in family.samples if sample.name == 'dbfleet_binlog_archive_lag_seconds']
    assert samples == [({'host': 'db-w'}, 12.5)]


def test_the_archive_lag_is_a_fact_the_tag_rules_read(service):
    """facts.binlog_archive comes from the archive's last pass in the store: archive_lagging fires above
    the rules' archive_lag_seconds (900) and not below."""
    import json
    with open_store(service.store_url) as store:
        for name, lag in (('db-lag', 4000.0), ('db-w', None)):
            store.hosts.upsert(name, address='10.0.0.9', port=3306)
        store.binlogs.set_state('db-lag', 4000.0, 'mysql-bin.000009', [], hours(50))
    explained = {}
    for name in ('db-lag', 'db-w'):
        completed = service.dbfleet('tags', 'explain', name, 'archive_lagging', '--json', '--store',
                                    service.store_url)
        assert completed.returncode == 0, completed.stderr
        explained[name] = json.loads(completed.stdout)[0]
    assert explained['db-lag']['result'] is True
    assert explained['db-lag']['evidence'] == {'facts.binlog_archive.lag_seconds': 4000.0,
                                               'vars.archive_lag_seconds': 900}
    assert explained['db-w']['result'] is False  # 12.5 s behind
