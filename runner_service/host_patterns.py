"""Ansible host patterns (`--limit`): a limit is a host pattern, never a file, and a template
launch's limit is narrowed to the template's own so that it never reaches a host the template
would not.

Ansible reads `--limit @path` (any comma- or colon-separated part starting with `@`) as a file
of host names, and its errors quote that file: through the API that would read files on the
controller. Such a part is refused wherever a limit enters (jobs, templates, schedules, plan
previews), with NUL and line breaks, which no host pattern has.

    narrow('dbs:!db3', 'db1,db2')      # 'db1,db2,&dbs,!db3'

Ansible reads a pattern as terms (split on ',' or else ':'), then evaluates
(union of the plain terms, or `all`) ∩ each `&term` minus each `!term` (inventory.manager's
split_host_pattern and order_patterns, used here so both sides split alike). The intersection
of two patterns is then a pattern again when one side's union has a single term: it becomes an
`&` term of the other. When both list several plain terms, the launch is refused.
"""

from __future__ import annotations

import re

from runner_service.extra_vars import excerpt

# The separators Ansible splits a pattern on (besides whitespace).
_PARTS = re.compile(r'[,:]')
MAX_QUOTE = 200


class HostPatternError(ValueError):
    """A limit that is not an acceptable host pattern; the text says why (no more than 200
    characters of it quoted)."""


def check_host_pattern(pattern: str) -> str:
    """`pattern` when it is a plain host pattern; else HostPatternError saying why. Ansible
    splits a pattern on more than ',' and ':' (whitespace, Unicode spaces it strips), so an `@`
    anywhere is refused: no host or group name has one."""
    if any(char in pattern for char in '\x00\r\n'):
        raise HostPatternError('a host pattern has no NUL or line break')
    if '@' in pattern:
        parts = [part for part in _PARTS.split(pattern) if '@' in part]
        raise HostPatternError('%r: a limit is a host pattern; @file (reading host names from a file) is '
                               'refused' % excerpt(parts[0].strip(), 40))
    return pattern


def _quote(text: str) -> str:
    return repr(text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + '...')


def terms(pattern: str, what: str = 'limit') -> list[str]:
    """The pattern's terms as Ansible orders them: plain, then &, then !. HostPatternError for a
    file (`@path`, in any position), control characters, or no term at all."""
    from ansible.inventory.manager import order_patterns, split_host_pattern
    if not isinstance(pattern, str) or not pattern.strip():
        raise HostPatternError('%s: give a host pattern (host, group, pattern,...)' % what)
    if '@' in pattern:
        raise HostPatternError('%s %s: a limit is a host pattern, never a file (@path is refused)'
                               % (what, _quote(pattern)))
    if any(not character.isprintable() for character in pattern):
        raise HostPatternError('%s %s: control characters are refused' % (what, _quote(pattern)))
    split = split_host_pattern(pattern)
    if not split or any(term in ('&', '!') for term in split):
        raise HostPatternError('%s %s: an empty host pattern term' % (what, _quote(pattern)))
    return order_patterns(split)


def _parts(ordered: list[str]) -> tuple[list[str], list[str], list[str]]:
    plain = [term for term in ordered if term[0] not in '&!']
    return plain, [term for term in ordered if term[0] == '&'], [term for term in ordered if term[0] == '!']


def narrow(scope: str | None, requested: str | None) -> str | None:
    """The limit a launch runs with: `requested` within `scope` (the template's limit; None: the
    whole inventory, which a limit can only narrow anyway). HostPatternError when the two cannot
    be intersected in one pattern."""
    if requested is None:
        return scope
    launch = terms(requested)
    if scope is None:
        return ','.join(launch)
    own = terms(scope, 'template limit')
    launch_plain, launch_and, launch_not = _parts(launch)
    own_plain, own_and, own_not = _parts(own)
    if len(own_plain) == 1:
        plain, joined = launch_plain, '&' + own_plain[0]
    elif len(launch_plain) == 1:
        plain, joined = own_plain, '&' + launch_plain[0]
    else:
        raise HostPatternError('limit %s: the template runs on %s, and a launch limit listing several hosts or '
                               'groups cannot be narrowed to it; give one host, group or pattern per launch'
                               % (_quote(requested), _quote(scope)))
    return ','.join([*plain, joined, *own_and, *launch_and, *own_not, *launch_not])
