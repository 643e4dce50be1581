# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller plugins' one dependency, the dbfleet base package, as the collection declares it
(meta/requirements.txt): what a plugin tells the user to install when the import fails."""

from __future__ import annotations

import os

REQUIREMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            'meta', 'requirements.txt')


def requirement():
    """The requirement line for dbfleet in meta/requirements.txt (the version written once there)."""
    try:
        with open(REQUIREMENTS, encoding='utf-8') as handle:
            for line in handle:
                line = line.split('#', 1)[0].strip()
                if line.startswith('dbfleet'):
                    return line
    except OSError:
        pass
    return 'dbfleet'


def needs_base(what, exc):
    """The message for a controller without the base package: what needs it, the exact pip command."""
    return ("%s needs the Python package %s on the Ansible controller (pip install '%s'), in the Python "
            "that runs ansible: %s" % (what, requirement(), requirement(), exc))
