"""SIGTERM to `dbfleet api` ends its open event streams cleanly and the process exits promptly;
a client reconnects with Last-Event-ID and misses nothing."""

from __future__ import annotations

import signal
import subprocess

import httpx
import pytest

from devtools.service_harness import Service

pytestmark = pytest.mark.service


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    service = Service(tmp_path_factory.mktemp('api-service'), workers=1).start()
    yield service
    service.stop()


def read_stream(service, job_id: str, last_event_id: int | None = None, on_first=None) -> list[tuple]:
    """(event id, event name) of each SSE event until the stream ends (httpx raises on a stream cut
    mid-chunk: an unclean end fails the test)."""
    headers = {'Accept': 'text/event-stream', 'Authorization': 'Bearer %s' % service.tokens['viewer']}
    if last_event_id is not None:
        headers['Last-Event-ID'] = str(last_event_id)
    seen, current = [], {}
    with httpx.stream('GET', service.url + '/api/v1/jobs/%s/events' % job_id, headers=headers,
                      timeout=httpx.Timeout(30)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                key, _, value = line.partition(': ')
                current[key] = value
                continue
            seen.append((int(current['id']) if 'id' in current else None, current.get('event')))
            current = {}
            if len(seen) == 1 and on_first:
                on_first()
    return seen


def test_sigterm_ends_live_streams_and_the_api_exits(service):
    job = service.launch('sleep.yml', role='admin', limit='node1', extra_vars={'sleep_seconds': 300})
    service.wait(job['id'], statuses={'running'})
    api = service.api
    seen = read_stream(service, job['id'], on_first=lambda: api.send_signal(signal.SIGTERM))
    assert seen and 'end' not in [name for _, name in seen], seen
    try:
        api.wait(10)  # without its streams ended, uvicorn waits for them: the play sleeps 300 s
    except subprocess.TimeoutExpired:
        api.kill()
        raise AssertionError('the API did not exit after SIGTERM with a stream open')

    service.start_api()
    service.wait_healthy()
    last = max(seq for seq, _ in seen)
    with service.client('admin') as client:
        assert client.post('/api/v1/jobs/%s/cancel' % job['id']).status_code == 202
    rest = read_stream(service, job['id'], last_event_id=last)
    assert rest[-1][1] == 'end'
    assert [seq for seq, _ in rest[:-1]] == list(range(last + 1, last + len(rest)))
