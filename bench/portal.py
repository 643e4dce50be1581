#!/usr/bin/env python3
"""The portal on a large job (issue 15): time to open a job page of 100,000 events / 20 MB of
output in headless Chromium, and the browser's memory over --follow-seconds (default 600) of live
follow while the job keeps writing output.

A service (devtools/service_harness.py: private Redis, SQLite store, `dbfleet api`, no worker) holds
one job that stays queued on a queue no worker reads, so its page keeps following; its events are
written into the store directly. The page is opened --opens times (a fresh browser context each:
no cache), timed from navigation to the load event, with the figure the test asserts nothing about
(tests/portal/test_large_job.py checks what the page holds). Then one page follows while --rate
events a second are added; every --sample seconds the JS heap (after a forced garbage collection)
and the DOM's node count are read through the Chrome DevTools Protocol. Bounded means the last
sample is within 1.5x of the sample taken after the first minute.

    .venv/bin/python bench/portal.py [--events 100000] [--opens 5] [--follow-seconds 600] [--rate 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect  # noqa: E402

from bench.report import record  # noqa: E402
from dbfleet.store import open_store  # noqa: E402
from runner_service.portal.job_log import MAX_LINES  # noqa: E402
from tests.portal.browser import launch_chromium  # noqa: E402
from devtools.service_harness import Service  # noqa: E402

COMMAND = '.venv/bin/python bench/portal.py'
GOAL_SECONDS = 2.0
BOUND = 1.5
BATCH = 10_000
LINE = 'ok: [node%d] => {"msg": "line %09d %s"}'


def event(seq: int) -> dict:
    # about 200 bytes each: 100,000 of them make 20 MB of output
    return {'seq': seq, 'event': 'runner_on_ok', 'host': 'node%d' % (seq % 3 + 1), 'task': 'Work',
            'stdout': LINE % (seq % 3 + 1, seq, 'x' * 160)}


def large_job(store, events: int) -> tuple[str, int]:
    job, _ = store.jobs.create({'playbook': 'tests/service/playbooks/hello.yml', 'inventory':
                                'tests/service/inventory.yml', 'inventory_kind': 'file', 'queue': 'bench-nowhere'},
                               created_by='bench')
    size = 0
    for first in range(1, events + 1, BATCH):
        batch = [event(seq) for seq in range(first, min(first + BATCH, events + 1))]
        size += sum(len(item['stdout']) + 1 for item in batch)
        store.events.add(job['id'], batch)
    return job['id'], size


def login(context, service) -> object:
    page = context.new_page()
    page.goto('/login')
    page.fill('#token', service.tokens['viewer'])
    page.click('button[type=submit]')
    page.wait_for_url('**/jobs')
    return page


def time_opens(browser, service, job_id: str, opens: int) -> list[tuple[float, float]]:
    """(seconds from goto to its return, navigation-to-load-event ms) per open."""
    timings = []
    for _ in range(opens):
        context = browser.new_context(base_url=service.url)
        try:
            page = login(context, service)
            started = time.monotonic()
            page.goto('/jobs/%s' % job_id)
            opened = time.monotonic() - started
            page.locator('#log .line').last.wait_for()
            timings.append((opened, page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")))
        finally:
            context.close()
    return timings


def follow(browser, service, store, job_id: str, first_seq: int, seconds: float, rate: int,
           sample: float) -> list[tuple[float, float, int, int]]:
    """(elapsed s, JS heap MB, DOM nodes, lines in the log) every `sample` seconds while following."""
    context = browser.new_context(base_url=service.url)
    samples = []
    try:
        page = login(context, service)
        page.goto('/jobs/%s' % job_id)
        cdp = context.new_cdp_session(page)
        cdp.send('Performance.enable')
        seq = first_seq
        started = time.monotonic()
        next_sample = started
        while True:
            now = time.monotonic()
            if now >= next_sample:
                cdp.send('HeapProfiler.collectGarbage')
                metrics = {item['name']: item['value'] for item in cdp.send('Performance.getMetrics')['metrics']}
                samples.append((now - started, metrics['JSHeapUsedSize'] / 2 ** 20, int(metrics['Nodes']),
                                page.locator('#log .line').count()))
                next_sample += sample
            if now - started >= seconds:
                break
            store.events.add(job_id, [event(number) for number in range(seq, seq + rate)])
            seq += rate
            time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
        # The page polls: give it time to show the last event written.
        expect(page.locator('#log .line').last).to_contain_text('line %09d' % (seq - 1), timeout=60_000)
    finally:
        context.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--events', type=int, default=100_000)
    parser.add_argument('--opens', type=int, default=5)
    parser.add_argument('--follow-seconds', type=float, default=600)
    parser.add_argument('--rate', type=int, default=50, help='events a second while following')
    parser.add_argument('--sample', type=float, default=30, help='seconds between memory samples')
    parser.add_argument('--no-record', action='store_true', help='print only; leave docs/benchmarks.md alone')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='dbfleet-bench-portal-') as directory:
        service = Service(Path(directory), workers=0).start()
        store = open_store(service.store_url, migrate=False)
        try:
            job_id, size = large_job(store, args.events)
            print('a job of %d events, %.1f MB of output' % (args.events, size / 1e6))
            with launch_chromium() as browser:
                opens = time_opens(browser, service, job_id, args.opens)
                samples = follow(browser, service, store, job_id, args.events + 1, args.follow_seconds, args.rate,
                                 args.sample)
        finally:
            store.close()
            service.stop()
    open_p50 = statistics.median(seconds for seconds, _ in opens)
    load_p50 = statistics.median(load for _, load in opens)
    minute = next((item for item in samples if item[0] >= 60), samples[0])
    last = samples[-1]
    growth = last[1] / minute[1]
    lines = [
        'A job of %d events (%.1f MB of output) in a SQLite store; headless Chromium (Debian), a fresh context '
        'per open.' % (args.events, size / 1e6), '',
        '| What | Figure |', '|---|---|',
        '| job page opened, p50 of %d (navigation to the load event) | %.3f s (%.0f ms); goal < %.0f s |'
        % (args.opens, open_p50, load_p50, GOAL_SECONDS),
        '| slowest open | %.3f s |' % max(seconds for seconds, _ in opens),
        '| live follow | %.0f s at %d events/s (%d events more) |' % (last[0], args.rate, int(last[0]) * args.rate),
        '| JS heap after 1 min / at the end (after GC) | %.1f MB / %.1f MB: %.2fx (bounded: < %.1fx) |'
        % (minute[1], last[1], growth, BOUND),
        '| DOM nodes after 1 min / at the end | %d / %d |' % (minute[2], last[2]),
        '| lines in the log at the end | %d (the page keeps %d at most) |' % (last[3], MAX_LINES),
        '', 'Samples (s, heap MB, DOM nodes, lines): ' + '; '.join(
            '%.0f, %.1f, %d, %d' % sample for sample in samples),
    ]
    print('\n'.join(lines))
    if not args.no_record:
        record('portal', 'Portal: a job page of 100,000 events, opened and followed', COMMAND, lines)
    if open_p50 >= GOAL_SECONDS or growth >= BOUND or last[3] > MAX_LINES:
        raise SystemExit('portal: outside the goal (open %.3f s, heap growth %.2fx, %d lines)'
                         % (open_p50, growth, last[3]))


if __name__ == '__main__':
    main()
