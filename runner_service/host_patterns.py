"""A limit is a host pattern, never a file.

Ansible reads `--limit @path` (any comma- or colon-separated part starting with `@`) as a file
of host names, and its errors quote that file: through the API that would read files on the
controller. Such a part is refused wherever a limit enters (jobs, templates, schedules, plan
previews), with NUL and line breaks, which no host pattern has.
"""

from __future__ import annotations

import re

from runner_service.extra_vars import excerpt

# The separators Ansible splits a pattern on, then the operators a part may start with.
_PARTS = re.compile(r'[,:]')
_OPERATORS = ' \t!&'


class HostPatternError(ValueError):
    pass


def check_host_pattern(pattern: str) -> str:
    """`pattern` when it is a plain host pattern; else HostPatternError saying why."""
    if any(char in pattern for char in '\x00\r\n'):
        raise HostPatternError('a host pattern has no NUL or line break')
    for part in _PARTS.split(pattern):
        if part.lstrip(_OPERATORS).startswith('@'):
            raise HostPatternError('%r: a limit is a host pattern; @file (reading host names from a file) is '
                                   'refused' % excerpt(part.strip(), 40))
    return pattern
