"""Batch plans run by real workers: lanes never run more than N hosts at once, rolling batches
stop on failure, pools hold across concurrent jobs; checked from the recorded start and end times."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from runner_service.jobs import planner
from runner_service.worker.lanes import _list_hosts
from devtools.service_harness import PLAYBOOKS, intervals, most_at_once, runs

pytestmark = pytest.mark.service
MANY = 'tests/service/inventory_many.yml'
HOSTS = ['host%d' % index for index in range(1, 9)]


def test_lanes_run_each_lane_host_after_host_and_never_more_than_n_at_once(service):
    job = service.launch('sleep.yml', inventory=MANY, extra_vars={'sleep_seconds': 1}, plan={'lanes': 3})
    done = service.wait(job['id'], timeout=300)
    assert done['status'] == 'successful', done['status_reason']
    assert done['plan']['lanes'] == 3 and sorted(done['hosts']) == HOSTS
    timeline = runs(service, job['id'])
    assert sorted(run['host'] for run in timeline) == HOSTS
    assert {run['status'] for run in timeline} == {'ok'} and {run['lane'] for run in timeline} == {0, 1, 2}
    assert most_at_once(intervals(timeline)) <= 3
    for lane in (0, 1, 2):
        assert most_at_once(intervals([run for run in timeline if run['lane'] == lane])) == 1
    events = service.events(job['id'])
    assert len({event['seq'] for event in events}) == len(events), 'concurrent runs get distinct seqs'


def test_rolling_batches_stop_when_a_batch_fails_too_much(service):
    job = service.launch('fail_on.yml', inventory=MANY, extra_vars={'fail_hosts': ['host3']},
                         plan={'rolling': [1, 2, '50%'], 'max_fail_percentage': 0})
    done = service.wait(job['id'], timeout=300)
    assert done['status'] == 'failed'
    timeline = {run['host']: run for run in runs(service, job['id'])}
    batches = {}
    for host in HOSTS:
        batches.setdefault(timeline[host]['batch'], []).append(host)
    # As Ansible's serial: in inventory order (batch 3 is the rest: 50% of 8 is 4).
    assert batches == {0: ['host1'], 1: ['host2', 'host3'], 2: ['host4', 'host5', 'host6', 'host7'], 3: ['host8']}
    assert timeline['host3']['status'] == 'failed' and timeline['host2']['status'] == 'ok'
    assert timeline['host1']['status'] == 'ok'
    for host in HOSTS[3:]:
        assert timeline[host]['status'] == 'not_run' and 'max_fail_percentage' in timeline[host]['detail']
    assert 'host3' in done['status_reason']


def test_hosts_are_listed_in_inventory_order_as_ansible_batches_them(tmp_path):
    """`ansible-playbook --list-hosts` prints a play's hosts from a set; plans use the inventory's order."""
    names = ['zeta', 'alpha', 'mid', 'beta', 'omega', 'gamma', 'kappa', 'delta']
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(yaml.safe_dump({'all': {'vars': {'ansible_connection': 'local'},
                                                 'hosts': dict((name, None) for name in names)}}, sort_keys=False))
    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump([{'hosts': 'all', 'gather_facts': False, 'tasks': []},
                                        {'hosts': 'localhost', 'gather_facts': False, 'tasks': []}]))
    for _ in range(3):  # a set's order changes from run to run
        assert _list_hosts(str(tmp_path), str(playbook), str(inventory), None, {}) == names + ['localhost']
    assert _list_hosts(str(tmp_path), str(playbook), str(inventory), 'omega,alpha,kappa', {}) == [
        'alpha', 'omega', 'kappa']


def test_a_pool_holds_across_two_concurrent_jobs(service):
    with service.client('admin') as admin:
        assert admin.put('/api/v1/pools/backup', json={'slots': 2}).status_code == 200
    first = service.launch('sleep.yml', inventory=MANY, limit='host1,host2,host3,host4',
                           extra_vars={'sleep_seconds': 2}, plan={'lanes': 4, 'pool': 'backup'})
    second = service.launch('sleep.yml', inventory=MANY, limit='host5,host6,host7,host8',
                            extra_vars={'sleep_seconds': 2}, plan={'lanes': 4, 'pool': 'backup'})
    done = [service.wait(job['id'], timeout=300) for job in (first, second)]
    assert [job['status'] for job in done] == ['successful', 'successful']
    spans = intervals(runs(service, first['id']) + runs(service, second['id']))
    assert len(spans) == 8 and most_at_once(spans) <= 2
    with service.client('viewer') as viewer:
        assert viewer.get('/api/v1/pools/backup').json()['in_use'] == 0
    with service.client() as client:
        unknown = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml', 'inventory': MANY,
                                                    'plan': {'lanes': 2, 'pool': 'nope'}})
    assert unknown.status_code == 400 and "no pool 'nope'" in unknown.json()['detail']


def test_plan_preview_predicts_the_finish_against_a_window(service):
    start = dt.datetime(2026, 11, 28, 1, tzinfo=dt.timezone.utc)
    body = {'hosts': HOSTS, 'lanes': 3, 'start': start.isoformat(),
            'window_end': (start + dt.timedelta(seconds=30)).isoformat()}
    with service.client('viewer') as viewer:
        preview = viewer.post('/api/v1/plans/preview', json=body).json()
        by_playbook = viewer.post('/api/v1/plans/preview', json={
            'playbook': PLAYBOOKS + '/hello.yml', 'inventory': MANY, 'limit': 'host1,host2', 'lanes': 2}).json()
        bad = viewer.post('/api/v1/plans/preview', json={'lanes': 2})
    assert sorted(host['host'] for lane in preview['lanes'] for host in lane['hosts']) == HOSTS
    assert len(preview['lanes']) == 3
    # Nothing known about these hosts: 60 s each by default and the default start-up, 3 lanes of 8
    # hosts: 3 x 63 s > 30 s.
    each = 60 + planner.DEFAULT_OVERHEAD_SECONDS
    assert preview['fits'] is False and 'overrun the window' in preview['warning']
    assert dt.datetime.fromisoformat(preview['finish']) == start + dt.timedelta(seconds=3 * each)
    assert preview['lower_bound_seconds'] == pytest.approx(8 * each / 3, abs=0.001)
    assert {host['overhead_source'] for lane in preview['lanes'] for host in lane['hosts']} == {'default'}
    assert preview['accuracy'] is None  # a list of hosts has no past runs to compare with
    assert sorted(host['host'] for lane in by_playbook['lanes'] for host in lane['hosts']) == ['host1', 'host2']
    assert bad.status_code == 422


def test_bad_plans_are_refused(service):
    with service.client() as client:
        both = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml', 'inventory': MANY,
                                                 'plan': {'lanes': 2, 'rolling': [1]}})
        percent = client.post('/api/v1/jobs', json={'playbook': PLAYBOOKS + '/hello.yml', 'inventory': MANY,
                                                    'plan': {'rolling': ['abc']}})
    assert both.status_code == 422 and 'not both' in both.json()['detail']
    assert percent.status_code == 422 and 'percentage' in percent.json()['detail']


def test_a_job_whose_window_has_ended_starts_no_host_and_says_so(service):
    """The window end is not a deadline: the job runs, starts no host after it, and fails naming
    the hosts it skipped (tests/service/test_window_end.py passes the end while hosts run)."""
    job = service.launch('hello.yml', inventory=MANY, limit='host1,host2',
                         plan={'lanes': 2, 'window_end': '2026-01-01T02:00:00Z'})
    done = service.wait(job['id'], timeout=300)
    assert done['status'] == 'failed'
    assert done['status_reason'] == ('the window ended at 2026-01-01T02:00:00Z: 2 host(s) not started (skipped): '
                                     'host1, host2')
    timeline = runs(service, job['id'])
    assert {run['status'] for run in timeline} == {'skipped'}
    assert all('window ended' in run['detail'] and run['started_at'] is None for run in timeline)
