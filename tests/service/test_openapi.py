"""A bounded schemathesis run against the live API: no input makes it answer 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.service
SCHEMATHESIS = str(Path(sys.executable).parent / 'schemathesis')


def test_the_openapi_document_describes_errors(service):
    document = httpx.get(service.url + '/openapi.json').json()
    launch = document['paths']['/api/v1/jobs']['post']
    assert {'201', '400', '401', '403', '413', '422'} <= set(launch['responses'])
    assert launch['responses']['400']['content']['application/json']['schema']['$ref'].endswith('/Problem')
    assert '/healthz' in document['paths']


def test_no_input_gives_a_server_error(service):
    """schemathesis's CLI, as a user would run it: every operation, bounded examples, one check."""
    completed = subprocess.run(
        [SCHEMATHESIS, 'run', service.url + '/openapi.json', '--checks', 'not_a_server_error',
         '--max-examples', '25', '--phases', 'examples,coverage,fuzzing', '--workers', '2',
         '--header', 'Authorization: Bearer %s' % service.tokens['admin'], '--request-timeout', '30',
         '--seed', '4711', '--no-color'],
        capture_output=True, text=True, timeout=600, cwd=service.directory)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    print(completed.stdout[-1500:])
    assert ' passed' in completed.stdout
