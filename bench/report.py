"""Write a benchmark's figures into docs/benchmarks.md, one section per script, replaced on each run."""

from __future__ import annotations

import platform
import re
import time
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / 'docs' / 'benchmarks.md'
HEADER = ('# Benchmarks\n\nFigures written by the scripts under `bench/` (`make bench` runs them all). '
          'Each section is replaced when its script runs again; the command reproduces it. '
          'Definitions, baselines and goals: the shared benchmarks page.\n')


def machine():
    import os
    return '%s, %d cores, Python %s' % (platform.machine(), os.cpu_count() or 0, platform.python_version())


def record(key, title, command, lines):
    """Replace (or append) the section `key` of docs/benchmarks.md."""
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    body = '\n'.join([
        '<!-- bench:%s -->' % key,
        '## %s' % title,
        '',
        'Command: `%s` — run %s on %s.' % (command, time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), machine()),
        '',
    ] + list(lines) + ['<!-- /bench:%s -->' % key])
    pattern = re.compile(r'<!-- bench:%s -->.*?<!-- /bench:%s -->' % (re.escape(key), re.escape(key)), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _match: body, text)
    else:
        text = text.rstrip('\n') + '\n\n' + body
    BENCHMARKS_MD.write_text(text.rstrip('\n') + '\n')
