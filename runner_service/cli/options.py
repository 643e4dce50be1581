"""Options that several `dbfleet` commands share, each declared once, and shared_options, which
gives a command a whole group of them (the command takes them as **options)."""

from __future__ import annotations

import inspect
from typing import Optional

import typer
from typer.models import ArgumentInfo

JSON_OPTION = typer.Option(False, '--json', help='Print JSON instead of a table.')
STORE_OPTION = typer.Option(None, '--store', envvar='DBFLEET_STORE_URL', help='Store URL (default: DBFLEET_STORE_URL).',
                            show_envvar=False)
WAIT_OPTION = typer.Option(False, '--wait', help='Follow the job to its end (exit 0 if successful, else 1).')


def shared_options(*groups: dict, last: bool = False):
    """Give a command options that several commands share, each declared once: a group maps a
    parameter name to (its type, its typer.Option). They come after the command's arguments (after
    its own options too, with `last`: that order is the order of its --help), and the command takes
    them as **options."""
    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        own = [parameter for parameter in signature.parameters.values()
               if parameter.kind is not parameter.VAR_KEYWORD]
        arguments = [parameter for parameter in own if isinstance(parameter.default, ArgumentInfo)]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
                 for group in groups for name, (kind, option) in group.items()]
        rest = [parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY) for parameter in own
                if parameter not in arguments]
        order = [*arguments, *rest, *added] if last else [*arguments, *added, *rest]
        command.__signature__ = signature.replace(parameters=order)
        return command
    return decorate


def optional(kind, *names: str, help: str):
    """An option for shared_options, None when not given."""
    return Optional[kind], typer.Option(None, *names, help=help)


# Options that several commands share (shared_options): what to run on, its variables, its plan.
TARGET_OPTIONS = {
    'inventory': optional(str, '--inventory', '-i', help='An inventory file or directory under the project.'),
    'tags': optional(str, '--tags', help="The store's hosts matching a tag expression, e.g. 'large and not "
                                         "maintenance'."),
    'limit': optional(str, '--limit', '-l', help="ansible's --limit."),
}
VARS_OPTIONS = {
    'extra_vars': optional(list[str], '--extra-vars', '-e', help='key=value (the value read as JSON when it is JSON: '
                           '3, true, [..]) or @file.json / @file.yml; repeat, later ones win.'),
}
PLAN_OPTIONS = {
    'lanes': optional(int, '--lanes', help='Split the hosts into N lanes balanced by estimated duration; each lane '
                                           'runs its hosts one by one.'),
    'rolling': optional(str, '--rolling', help='Rolling batches in order, e.g. 1,5,20% (the last size repeats), '
                                               'instead of lanes.'),
    'max_fail': optional(str, '--max-fail', help='With --rolling: stop when a batch fails more than this percentage '
                                                 'of its hosts.'),
    'pool': optional(str, '--pool', help='Each host run holds a slot of this pool, shared with every other job '
                                         '(dbfleet pools).'),
}
