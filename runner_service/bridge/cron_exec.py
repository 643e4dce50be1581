"""The wrapper crontab runs on a bridged host: `dbfleet cron exec ID -- COMMAND`.

It runs the command exactly as crontab would have (its shell, stdin, output, exit code) and
reports the start and the end of the run to the API. When the API cannot be reached it runs the
command anyway and spools the reports; they are delivered, in order, by the next wrapper or
watchdog run. The run id travels with the report, so a report delivered twice is stored once.

Crontab starts it for every entry it runs, so it is built to start fast and small: the standard
library only (runner_service.bridge.host_api: the configuration and the HTTP call), no Typer,
Rich, pydantic or httpx; `runner_service.console` sends `dbfleet cron exec ...` here through
runner_service.bridge.host_cli before anything else is imported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque

from dbfleet.clock import utcnow
from runner_service.bridge.host_api import AgentConfig, HostApi, HostApiError
from runner_service.bridge.spool import Spool, WatchdogState, is_unreachable

TAIL_BYTES = 8192  # the end of the output that goes into the report


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
            api = HostApi(config, agent='dbfleet-cron-exec')
            spool.deliver(api.report)
            return api.report(report)['action']
        except HostApiError as exc:
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
