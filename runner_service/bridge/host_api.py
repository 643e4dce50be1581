"""The host side of the crontab bridge and the API: what `dbfleet cron exec|import|sync|diff|watchdog`
read of the configuration on a bridged database host, and the few HTTP calls they make.

A bridged host installs `dbfleet[agent]`: the base package and nothing of the service (no Typer,
Rich, httpx, FastAPI or RQ), so everything here is the standard library (plus python-dotenv for
the config file, as the settings read it). What it reads of the configuration is what
`dbfleet.settings.Settings` reads (DBFLEET_API_URL, DBFLEET_TOKEN, DBFLEET_HOST, DBFLEET_CRON_SPOOL,
DBFLEET_VAR_DIR, DBFLEET_CRON_FALLBACK_SECONDS; the environment first, then the DBFLEET_CONFIG
file); tests/unit/test_cron_exec.py holds the two to the same answers. HTTPS is verified against
the system's CA store (SSL_CERT_FILE overrides it).
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlencode, urlsplit

from dbfleet import __version__
from dbfleet.paths import config_file, state_directory

REPORT_TIMEOUT = 5.0  # seconds the wrapper and the watchdog wait for the API before they go on
IMPORT_TIMEOUT = 30.0  # an import stores every entry of a file before it answers
ANSWER_BYTES = 16 * 1024 * 1024  # the most of an answer read (a host's entries: a few KiB each)
CRON = '/api/v1/cron'
DEFAULT_API_URL = 'http://127.0.0.1:8080'  # as dbfleet.settings.Settings.api_url
DEFAULT_FALLBACK_SECONDS = 300.0  # as dbfleet.settings.Settings.cron_fallback_seconds


class ConfigError(ValueError):
    """A DBFLEET_* value the host side cannot use."""


@dataclass(frozen=True)
class AgentConfig:
    api_url: str
    token: str | None
    host: str
    spool: Path
    fallback_setting: str | None = None  # DBFLEET_CRON_FALLBACK_SECONDS as given

    @property
    def fallback_seconds(self) -> float:
        """Checked when the watchdog needs it, not when the wrapper reads the configuration: a
        wrong value must not stop crontab's command."""
        if self.fallback_setting is None:
            return DEFAULT_FALLBACK_SECONDS
        return positive_seconds(self.fallback_setting, 'DBFLEET_CRON_FALLBACK_SECONDS')


def read_config(environ: Mapping[str, str] | None = None, host: str | None = None) -> AgentConfig:
    """The host side's settings: DBFLEET_* from the environment, else from the config file (names
    in any case, as pydantic-settings reads them), else the defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    path = config_file(environ)
    if path.is_file():
        from dotenv import dotenv_values
        values.update((key.upper(), value) for key, value in dotenv_values(path).items() if value is not None)
    values.update((key.upper(), value) for key, value in environ.items())

    def setting(name: str) -> str | None:
        return values.get('DBFLEET_' + name)

    found_host = setting('HOST')
    spool = setting('CRON_SPOOL') or Path(setting('VAR_DIR') or state_directory()) / 'cron-spool'
    return AgentConfig(api_url=setting('API_URL') or DEFAULT_API_URL, token=setting('TOKEN'),
                       host=host or (found_host if found_host is not None else socket.gethostname()),
                       spool=Path(spool), fallback_setting=setting('CRON_FALLBACK_SECONDS'))


def positive_seconds(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError('%s: not a number of seconds: %.60r' % (name, text)) from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError('%s: must be a number of seconds above 0, not %.60r' % (name, text))
    return value


class HostApiError(Exception):
    """The API did not do what was asked: `status` is its HTTP status, None when it did not
    answer (spool.is_unreachable tells which are worth retrying); `detail` is one line."""

    def __init__(self, status: int | None, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class HostApi:
    """The API as the host side calls it: JSON over http.client, the token as a bearer."""

    def __init__(self, config: AgentConfig, timeout: float = REPORT_TIMEOUT, agent: str = 'dbfleet-agent'):
        self.config = config
        self.timeout = timeout
        self.agent = agent

    def report(self, report: dict) -> dict:
        """POST one cron run report; the API's answer ({'action': 'run' | 'skip', ...})."""
        answer = self.call('POST', CRON + '/runs', report)
        if not isinstance(answer, dict) or answer.get('action') not in ('run', 'skip'):
            raise HostApiError(None, 'the API at %s answered with no report answer' % self.config.api_url)
        return answer

    def entries(self, host: str) -> list[dict]:
        """The host's bridged entries, as the platform has them."""
        answer = self.call('GET', CRON + '/entries', params={'host': host})
        if not isinstance(answer, list) or not all(isinstance(entry, dict) for entry in answer):
            raise HostApiError(None, 'the API at %s answered with no list of entries' % self.config.api_url)
        return answer

    def import_crontab(self, request: dict) -> dict:
        """POST a crontab file's text for import (a CronImport as JSON); what was imported."""
        answer = self.call('POST', CRON + '/import', request)
        if not isinstance(answer, dict) or not isinstance(answer.get('entries'), list):
            raise HostApiError(None, 'the API at %s answered with no import result' % self.config.api_url)
        return answer

    def call(self, method: str, path: str, body: Any = None, params: dict | None = None) -> Any:
        import http.client
        url = urlsplit(self.config.api_url)
        try:
            port = url.port
        except ValueError:
            port = -1
        if url.scheme not in ('http', 'https') or not url.hostname or port == -1:
            raise HostApiError(None, 'DBFLEET_API_URL is not an http(s) URL: %.200s' % self.config.api_url)
        if url.scheme == 'https':
            import ssl
            connection = http.client.HTTPSConnection(url.hostname, port, timeout=self.timeout,
                                                     context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(url.hostname, port, timeout=self.timeout)
        headers = {'Authorization': 'Bearer %s' % self.config.token, 'Accept': 'application/json',
                   'User-Agent': '%s/%s' % (self.agent, __version__)}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers['Content-Type'] = 'application/json'
        target = url.path.rstrip('/') + path + ('?' + urlencode(params) if params else '')
        try:
            connection.request(method, target, payload, headers)
            answer = connection.getresponse()
            raw = answer.read(ANSWER_BYTES)
        except (OSError, http.client.HTTPException) as exc:
            raise HostApiError(None, 'the API at %s did not answer (%s)' % (self.config.api_url,
                                                                           exc or type(exc).__name__)) from None
        except ValueError:  # a control character in the token or the URL's path: kept until they are fixed
            raise HostApiError(None, 'DBFLEET_TOKEN or DBFLEET_API_URL holds a character no HTTP request can '
                                     'carry') from None
        finally:
            connection.close()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if 400 <= answer.status < 600:
            detail = parsed.get('detail') if isinstance(parsed, dict) else None
            detail = str(detail or '%s %s' % (answer.status, answer.reason)).splitlines()[0]
            if answer.status == 401:
                detail = '%s: check DBFLEET_TOKEN' % detail if self.config.token else \
                    'no API token: set DBFLEET_TOKEN (the host\'s agent token)'
            raise HostApiError(answer.status, detail)
        if answer.status not in (200, 201) or parsed is None:
            raise HostApiError(None, 'the API at %s answered %s %s with %s' % (
                self.config.api_url, method, path, answer.status if parsed is not None else 'something not JSON'))
        return parsed
