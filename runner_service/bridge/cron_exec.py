"""The wrapper crontab runs on a bridged host: `dbfleet cron exec ID -- COMMAND`.

It runs the command exactly as crontab would have (its shell, stdin, output, exit code) and
reports the start and the end of the run to the API. When the API cannot be reached it runs the
command anyway and spools the reports; they are delivered, in order, by the next wrapper or
watchdog run. The run id travels with the report, so a report delivered twice is stored once.

Crontab starts it for every entry it runs, so it is built to start fast and small: the standard
library only (plus python-dotenv for the config file, as the settings read it), no Typer, Rich,
pydantic or httpx. `runner_service.console` sends `dbfleet cron exec ...` here before anything
else is imported. What it reads of the configuration is what `dbfleet.settings.Settings` reads
(DBFLEET_API_URL, DBFLEET_TOKEN, DBFLEET_HOST, DBFLEET_CRON_SPOOL, DBFLEET_VAR_DIR; the
environment first, then the DBFLEET_CONFIG file); tests/unit/test_cron_exec.py holds the two to
the same answers. HTTPS is verified against the system's CA store (SSL_CERT_FILE overrides it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from dbfleet import __version__
from dbfleet.clock import utcnow
from dbfleet.paths import config_file, state_directory
from runner_service.bridge.spool import Spool, WatchdogState, is_unreachable

REPORT_TIMEOUT = 5.0  # seconds the wrapper waits for the API before it spools and goes on
TAIL_BYTES = 8192  # the end of the output that goes into the report
ANSWER_BYTES = 65536  # the most of an answer read: a report's answer is a few hundred bytes
REPORTS_PATH = '/api/v1/cron/runs'
DEFAULT_API_URL = 'http://127.0.0.1:8080'  # as dbfleet.settings.Settings.api_url


@dataclass(frozen=True)
class AgentConfig:
    api_url: str
    token: str | None
    host: str
    spool: Path


def read_config(environ: Mapping[str, str] | None = None, host: str | None = None) -> AgentConfig:
    """The wrapper's settings: DBFLEET_* from the environment, else from the config file (names
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
                       spool=Path(spool))


class ReportError(Exception):
    """The API did not take a report: `status` is its HTTP status, None when it did not answer."""

    def __init__(self, status: int | None, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def send_report(config: AgentConfig, report: dict, timeout: float = REPORT_TIMEOUT) -> dict:
    """POST one report; the API's answer ({'action': 'run' | 'skip', ...})."""
    import http.client
    url = urlsplit(config.api_url)
    try:
        port = url.port
    except ValueError:
        port = -1
    if url.scheme not in ('http', 'https') or not url.hostname or port == -1:
        raise ReportError(None, 'DBFLEET_API_URL is not an http(s) URL: %s' % config.api_url)
    if url.scheme == 'https':
        import ssl
        connection = http.client.HTTPSConnection(url.hostname, port, timeout=timeout,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(url.hostname, port, timeout=timeout)
    headers = {'Authorization': 'Bearer %s' % config.token, 'Content-Type': 'application/json',
               'Accept': 'application/json', 'User-Agent': 'dbfleet-cron-exec/%s' % __version__}
    try:
        connection.request('POST', url.path.rstrip('/') + REPORTS_PATH, json.dumps(report).encode(), headers)
        answer = connection.getresponse()
        body = answer.read(ANSWER_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        raise ReportError(None, 'the API at %s did not answer (%s)' % (config.api_url, exc or type(exc).__name__)) \
            from None
    except ValueError:  # a control character in the token or the URL's path: kept until they are fixed
        raise ReportError(None, 'DBFLEET_TOKEN or DBFLEET_API_URL holds a character no HTTP request can carry') \
            from None
    finally:
        connection.close()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if 400 <= answer.status < 600:
        detail = parsed.get('detail') if isinstance(parsed, dict) else None
        raise ReportError(answer.status, str(detail or '%s %s' % (answer.status, answer.reason)).splitlines()[0])
    if answer.status != 200 and answer.status != 201 or not isinstance(parsed, dict) \
            or parsed.get('action') not in ('run', 'skip'):
        raise ReportError(None, 'the API at %s answered %s with no report answer' % (config.api_url, answer.status))
    return parsed


def run_wrapped(schedule_id: str, command: list[str], config: AgentConfig) -> int:
    """Run `command` for crontab entry `schedule_id`, reporting to the API; the command's exit
    code (128 + N when a signal N ended it)."""
    spool = Spool(config.spool)
    fallback = schedule_id in WatchdogState.load(spool.directory).fallback_ids
    report = {'id': uuid.uuid4().hex, 'schedule_id': schedule_id, 'host': config.host, 'phase': 'start',
              'fallback': fallback, 'started_at': utcnow().isoformat()}
    if _report(config, spool, report) == 'skip':
        return 0  # the platform runs this slot itself
    started = time.monotonic()
    code, tail = _run(command)
    report.update(phase='end', finished_at=utcnow().isoformat(), exit_code=max(-255, min(255, code)),
                  duration_seconds=round(time.monotonic() - started, 3), output_tail=tail.decode('utf-8', 'replace'))
    _report(config, spool, report)
    return code


def _report(config: AgentConfig, spool: Spool, report: dict) -> str:
    """'run' or 'skip' as the API says; 'run' (and the report spooled) when it cannot say.
    Nothing here stops crontab's command: a report that can be neither sent nor spooled (a
    token or URL no HTTP request can carry, a spool that cannot be written) is one line on
    stderr, and the command runs."""
    try:
        if not config.token:
            spool.put(report)
            return 'run'
        try:
            spool.deliver(lambda spooled: send_report(config, spooled))
            return send_report(config, report)['action']
        except ReportError as exc:
            if is_unreachable(exc):
                spool.put(report)
            else:  # refused for good (the entry was deleted on the platform): crontab still runs it
                print('dbfleet cron exec: report refused: %s' % exc.detail, file=sys.stderr)
            return 'run'
    except Exception as exc:  # noqa: BLE001 - see above
        print('dbfleet cron exec: report of the %s not sent: %s' % (report['phase'], exc), file=sys.stderr)
        return 'run'


def _run(command: list[str]) -> tuple[int, bytes]:
    """Run it with our stdin, passing its output through as it comes; (exit code, output tail)."""
    argv = [os.environ.get('SHELL') or '/bin/sh', '-c', command[0]] if len(command) == 1 else command
    try:
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        message = ('dbfleet cron exec: cannot run %s: %s\n' % (argv[0], exc)).encode()
        sys.stderr.buffer.write(message)
        return 127, message
    tail: deque[bytes] = deque()
    size = [0]
    lock = threading.Lock()

    def pump(source, target) -> None:
        for chunk in iter(lambda: source.read1(65536), b''):
            target.write(chunk)
            target.flush()
            with lock:
                tail.append(chunk)
                size[0] += len(chunk)
                while size[0] - len(tail[0]) >= TAIL_BYTES:
                    size[0] -= len(tail.popleft())

    pumps = [threading.Thread(target=pump, args=(child.stdout, sys.stdout.buffer), daemon=True),
             threading.Thread(target=pump, args=(child.stderr, sys.stderr.buffer), daemon=True)]
    for thread in pumps:
        thread.start()
    previous = {number: signal.signal(number, lambda received, frame: child.send_signal(received))
                for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        code = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    for thread in pumps:
        thread.join()
    return (128 - code if code < 0 else code), b''.join(tail)[-TAIL_BYTES:]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, as every dbfleet command
        print('dbfleet cron exec: %s' % message, file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str]) -> int:
    """`dbfleet cron exec [--host HOST] ID -- COMMAND...` (argv: what follows `cron exec`)."""
    parser = _Parser(prog='dbfleet cron exec', description='The wrapper crontab runs: runs COMMAND as crontab '
                     'would (output passed through, same exit code) and reports the run to the API; when the API '
                     'is away the report is spooled and sent later.')
    parser.add_argument('--host', help='the host\'s name on the platform (default: DBFLEET_HOST, else this '
                        'machine\'s hostname)')
    parser.add_argument('schedule_id', metavar='ID', help='the entry\'s schedule id')
    parser.add_argument('command', nargs=argparse.REMAINDER, metavar='-- COMMAND',
                        help='one shell command (run with $SHELL -c, as crontab does), or a program and its arguments')
    arguments = parser.parse_args(argv)
    command = arguments.command[1:] if arguments.command[:1] == ['--'] else arguments.command
    if not command:
        parser.error('no command after --')
    return run_wrapped(arguments.schedule_id, command, read_config(host=arguments.host))
