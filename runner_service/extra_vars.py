"""Extra vars stay data: the one check every value bound for Ansible passes at the boundary.

ansible-core 2.19 reads extra vars (`-e @file`, JSON) with a decoder that turns any mapping
holding one of its marker keys into something else, whatever the sibling keys:
`__ansible_unsafe` (a string not to template), `__ansible_vault` (vaulted ciphertext) and
`__ansible_type` (a serialized Ansible object). dbfleet marks every string of the extra vars it
writes `__ansible_unsafe` itself (runner_service.worker.run.untemplated); a caller's own marker
would be read as Ansible's, so such a key is refused here, at any depth, in mappings and lists.
Any key starting `__ansible` is refused, for markers later versions add.

The same walk refuses what JSON can carry but Ansible should never see: NUL characters,
non-finite numbers, nesting beyond MAX_DEPTH. `allow_connection_vars=False` (template
launches) also refuses `ansible_*` names: connection and interpreter variables belong in
inventories, set by admins; a bare admin job may still set them.
"""

from __future__ import annotations

import math
from typing import Any

MARKER_PREFIX = '__ansible'
# The marker keys ansible-core 2.19 recognises when loading JSON (all start with MARKER_PREFIX).
ANSIBLE_MARKER_KEYS = ('__ansible_unsafe', '__ansible_vault', '__ansible_type')
CONNECTION_PREFIX = 'ansible_'
MAX_DEPTH = 32
EXCERPT = 60


class ExtraVarsError(ValueError):
    """A value that must not reach Ansible; the message names where it is, never the whole value."""


def check_extra_vars(values: Any, *, allow_connection_vars: bool) -> dict:
    """`values` unchanged when every name and value in it is plain data Ansible uses as written;
    else ExtraVarsError saying where (e.g. `extra_vars.db.hosts[2]`) and why."""
    if not isinstance(values, dict):
        raise ExtraVarsError('extra_vars must be a mapping of variable names to values')
    if not allow_connection_vars:
        for name in values:
            if isinstance(name, str) and name.lower().startswith(CONNECTION_PREFIX):
                raise ExtraVarsError('extra_vars.%s: connection and interpreter variables (ansible_*) cannot be '
                                     'set here; an admin sets them in the inventory' % excerpt(name))
    # Iterative, so that no nesting depth can exhaust Python's stack.
    pending: list[tuple[Any, str, int]] = [(values, 'extra_vars', 0)]
    while pending:
        value, where, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise ExtraVarsError('%s: nested more than %d levels deep' % (where, MAX_DEPTH))
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ExtraVarsError('%s: keys must be strings' % where)
                _check_text(key, '%s: a key' % where)
                if key.lower().startswith(MARKER_PREFIX):
                    raise ExtraVarsError('%s.%s: keys starting %r are Ansible\'s own markers (unsafe, vaulted or '
                                         'typed values) and are refused: rename the key'
                                         % (where, excerpt(key), MARKER_PREFIX))
                pending.append((item, _path(where, '.' + excerpt(key, 40)), depth + 1))
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                pending.append((item, _path(where, '[%d]' % index), depth + 1))
        elif isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ExtraVarsError('%s: NaN and infinite numbers are refused' % where)
        elif value is not None and not isinstance(value, (bool, int)):
            raise ExtraVarsError('%s: %s is not a JSON value' % (where, type(value).__name__))
    return values


def _path(where: str, step: str) -> str:
    """Where a value is, as errors name it: its last steps when the path is long."""
    path = where + step
    return path if len(path) <= 120 else '...' + path[-117:]


def _check_text(text: str, where: str) -> None:
    if '\x00' in text:
        raise ExtraVarsError('%s: NUL characters are refused' % where)


def excerpt(text: Any, limit: int = EXCERPT) -> str:
    """`text` as an error message may show it: at most `limit` characters (and a mark if cut)."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + '...'
