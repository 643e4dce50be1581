"""Fleet data for the portal's fleet pages, put in the way it arrives in production: crontab
files imported and runs reported through the real API; what only the scheduler writes (a slot
it found missed) straight into the service's store. Times are fixed: no test reads today's date."""

from __future__ import annotations

import datetime as dt
import uuid

from dbfleet.store import open_store

UTC = dt.timezone.utc
# A night some time ago; every seeded time is relative to it.
NIGHT = dt.datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def import_crontab(service, host: str, text: str) -> list[dict]:
    """The host's root crontab imported by an admin; its entries (mode observe)."""
    with service.client('admin') as admin:
        answer = admin.post('/api/v1/cron/import', json={
            'host': host, 'file': {'kind': 'user', 'name': 'root', 'system': False}, 'text': text})
    assert answer.status_code == 201, answer.text
    return [item['entry'] for item in answer.json()['entries']]


def report_run(service, entry: dict, started: dt.datetime, exit_code: int, output: str = '') -> dict:
    """A run of the entry as its wrapper reports it: start, then end."""
    run_id = uuid.uuid4().hex
    finished = started + dt.timedelta(seconds=42)
    with service.client('admin') as admin:
        for phase in ('start', 'end'):
            body = {'id': run_id, 'schedule_id': entry['schedule_id'], 'host': entry['host'], 'phase': phase,
                    'started_at': started.isoformat()}
            if phase == 'end':
                body.update(finished_at=finished.isoformat(), exit_code=exit_code, duration_seconds=42.0,
                            output_tail=output)
            answer = admin.post('/api/v1/cron/runs', json=body)
            assert answer.status_code == 200, answer.text
    return answer.json()['run']


def mark_missed(service, entry: dict, slot: dt.datetime) -> None:
    """What the scheduler records when no report came by the slot plus the grace."""
    store = open_store(service.store_url, migrate=False)
    try:
        store.schedules.record_slot(entry['schedule_id'], slot, 'missed', claimed_by=None,
                                    reason='no report from crontab by the slot plus 60s')
    finally:
        store.close()


def record_backups(service, host: str, nights: list[tuple[dt.datetime, int | None, str | None]]) -> None:
    """Backup attempts of `host` as mysql_backup records them: (started, bytes, error); an error
    makes the attempt a failed one."""
    store = open_store(service.store_url, migrate=False)
    try:
        for started, size, error in nights:
            finished = started + dt.timedelta(minutes=12)
            if error:
                store.backups.record(host, method='logical', status='failed', started_at=started,
                                     finished_at=finished, error=error)
            else:
                store.backups.record(host, method='logical', started_at=started, finished_at=finished, bytes=size,
                                     path='/var/backups/mysql/%s-%s.sql.gz' % (host, started.strftime('%Y%m%d')),
                                     binlog_file='mysql-bin.000042', binlog_position=1024)
    finally:
        store.close()


def tag_hosts(service, tag: str, hosts: list[str]) -> None:
    """Hosts known to the store (facts recorded) with a manual tag."""
    store = open_store(service.store_url, migrate=False)
    try:
        for host in hosts:
            store.facts.record(host, {})
            store.tags.add(host, tag, who='test')
    finally:
        store.close()


def api(service, method: str, path: str, body: dict, role: str = 'admin') -> dict:
    """A call the seeding needs to succeed (201 or 200)."""
    with service.client(role) as client:
        answer = client.request(method, path, json=body)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()
