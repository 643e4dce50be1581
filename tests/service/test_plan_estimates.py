"""Plan estimates that learn each host's start-up cost from its real runs, and a preview that says
how past estimates held: a real backup plan on the local fleet, twice."""

from __future__ import annotations

import datetime as dt

import pytest

from devtools.service_harness import runs

pytestmark = pytest.mark.service
HOSTS = ['primary', 'replica']


def _backup(service, dest) -> dict:
    with service.client() as client:
        response = client.post('/api/v1/jobs', json={
            'playbook': 'playbooks/backup.yml', 'inventory': 'inventories/local_fleet.yml', 'limit': ','.join(HOSTS),
            'extra_vars': {'dbfleet_backup_dest': str(dest), 'dbfleet_backup_databases': ['crm'],
                           'dbfleet_backup_retention_count': 2}, 'plan': {'lanes': 1}})
    assert response.status_code == 201, response.text
    done = service.wait(response.json()['id'], timeout=300)
    assert done['status'] == 'successful', done['status_reason']
    return done


def _preview(service) -> dict:
    with service.client('viewer') as viewer:
        response = viewer.post('/api/v1/plans/preview', json={'playbook': 'playbooks/backup.yml', 'lanes': 1,
                                                              'inventory': 'inventories/local_fleet.yml',
                                                              'limit': ','.join(HOSTS)})
    assert response.status_code == 200, response.text
    return response.json()


def _wall(run: dict) -> float:
    return (dt.datetime.fromisoformat(run['finished_at']) - dt.datetime.fromisoformat(run['started_at'])).total_seconds()


def test_the_second_run_is_estimated_with_the_first_runs_start_up(service, fleet, tmp_path):
    first = _backup(service, tmp_path)
    first_runs = {run['host']: run for run in runs(service, first['id'])}
    with service.client('viewer') as viewer:
        backups = {host: viewer.get('/api/v1/backups', params={'host': host}).json()['backups'][0] for host in HOSTS}
    preview = _preview(service)
    planned = {host['host']: host for lane in preview['lanes'] for host in lane['hosts']}
    for host in HOSTS:
        # Start-up measured = the run's wall time minus its backup's own duration, and added to it.
        overhead = _wall(first_runs[host]) - backups[host]['duration_seconds']
        assert planned[host]['overhead_source'] == 'host'
        assert planned[host]['overhead_seconds'] == pytest.approx(overhead, abs=0.01)
        assert planned[host]['estimate_seconds'] == pytest.approx(_wall(first_runs[host]), abs=0.01)
        assert planned[host]['overhead_seconds'] > 0.5  # ansible-playbook's start alone is more
    accuracy = preview['accuracy']
    assert accuracy['of'] == 'jobs of playbooks/backup.yml over inventories/local_fleet.yml'
    assert [run['job_id'] for run in accuracy['runs']] == [first['id']]

    second = _backup(service, tmp_path)
    second_runs = {run['host']: run for run in runs(service, second['id'])}
    for host in HOSTS:  # the estimate made at launch, stored with the job, is the one previewed
        assert second_runs[host]['estimate_seconds'] == pytest.approx(planned[host]['estimate_seconds'], abs=0.01)
    accuracy = _preview(service)['accuracy']
    assert [run['job_id'] for run in accuracy['runs']] == [second['id'], first['id']]
    newest = accuracy['runs'][0]
    estimated = sum(second_runs[host]['estimate_seconds'] for host in HOSTS)
    assert newest['estimated_seconds'] == pytest.approx(estimated, abs=0.01)
    assert newest['actual_seconds'] == pytest.approx(second['timings']['run_seconds'], abs=0.01)
    assert newest['ratio'] == pytest.approx(newest['actual_seconds'] / newest['estimated_seconds'], abs=0.01)
    (lane,) = newest['lanes']
    assert lane['hosts'] == 2 and lane['ratio'] > 0
    assert accuracy['median_ratio'] is not None
