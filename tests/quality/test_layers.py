"""Imports point down: the layers of the code, checked from the source with `ast` (every import
statement counts, also one inside a function: a lazy import is still a dependency).

The packages, top to bottom:

    plugins/ (the collection)      dbfleet.mysql's plugins: action and inventory plugins may import
                                   the base `dbfleet`, plugin_utils and module_utils (never
                                   runner_service, which the collection does not declare); modules and module_utils run
                                   on a database host and import only module_utils
    runner_service (the service)   see LAYERS below
    dbfleet (the base)             store, tags, inspection, profiles, settings, clock; never the service

Inside runner_service, top to bottom (a module may import its own layer's modules and any layer
below, never one above):

    console                        the `dbfleet` executable: a host's `cron exec|import|sync|diff|watchdog`
                                   to bridge/host_cli, the rest to cli
    cli                            the `dbfleet` command: one module per command group
    processes                      starts each long-running process (API, workers, scheduler, `up`)
    api                            the HTTP layer: app, deps, routes; nothing outside cli/, api/ and
                                   processes.py imports it, and processes.py only its entry point
                                   (api.server), to start the API process
    portal                         the web pages the API serves at `/`: pages call the services below
    metrics                        the figures /metrics exposes, read from every part below
    fleet                          hosts, tags, rules and the backup catalog, as the API and the
                                   CLI's store path both serve them (fleet.schemas sits with schemas)
    bridge, notify.watch/loop      the crontab bridge: platform side, host agent, crontab files; what
                                   notices events for notifications (reads windows and schedules)
    schedules                      schedules, windows, crontab provenance, the scheduler loop
    templates                      job templates and surveys
    jobs, worker, credentials,     the job service, lifecycle, reconciler and planner; the worker's run,
    notify, archive                event writer and lanes runner; credentials and what a run gets of them;
                                   notifiers and the notification outbox (templates check their names);
                                   the binlog archive's streams (`dbfleet archive run`)
    runtime, job_queue, ...        what every service shares: the process runtime, the RQ queue,
                                   secrets, tokens, the API client (the host agent's), bounded
                                   subprocesses, and schedules.triggers: cron expressions and time
                                   zones, pure time rules that templates use to check a plan's zone
    schemas, errors                request/response models (notify_schemas: notifiers') and service errors, below every service,
                                   with the input checks the models run (extra_vars, host_patterns)
    dbfleet                        the base package

Besides the layers, no import cycle may exist among runner_service's modules, whatever their layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

COLLECTION = 'ansible_collections.dbfleet.mysql'
MODULE_UTILS = COLLECTION + '.plugins.module_utils'

# Top to bottom; a module is in the layer that names it or, failing that, the package nearest above it.
LAYERS: list[tuple[str, ...]] = [
    ('runner_service.console',),  # the executable: sends `cron exec` to the wrapper, the rest to cli
    ('runner_service.cli',),
    ('runner_service.processes',),
    ('runner_service.api',),
    ('runner_service.portal',),  # the web pages the API serves; they call the services as the routes do
    ('runner_service.metrics',),
    ('runner_service.fleet',),
    ('runner_service.bridge', 'runner_service.notify.watch', 'runner_service.notify.loop'),
    ('runner_service.schedules',),
    ('runner_service.templates',),
    ('runner_service.jobs', 'runner_service.worker', 'runner_service.execution', 'runner_service.credentials',
     'runner_service.notify', 'runner_service.archive'),
    ('runner_service.runtime', 'runner_service.job_queue', 'runner_service.secret_box', 'runner_service.tokens',
     'runner_service.bounded', 'runner_service.client', 'runner_service.schedules.triggers'),
    ('runner_service.schemas', 'runner_service.errors', 'runner_service.extra_vars', 'runner_service.host_patterns',
     'runner_service.redis_urls', 'runner_service.fleet.schemas', 'runner_service.notify_schemas'),
    ('runner_service',),  # the package itself: __version__
]
# The one import of the HTTP layer from below it: the process that serves the API starts it there;
# and the executable's import of the command line, which it runs for every command but the wrapper.
API_ENTRY = {'runner_service.processes': {'runner_service.api.server'}, 'runner_service.console': {'runner_service.cli'}}


def module_name(path: Path) -> str:
    relative = path.relative_to(REPO).with_suffix('')
    parts = list(relative.parts)
    if parts[0] == 'plugins':
        parts = COLLECTION.split('.') + parts
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def source_files() -> dict[str, Path]:
    files = {}
    for top in ('dbfleet', 'runner_service', 'plugins'):
        for path in sorted((REPO / top).rglob('*.py')):
            files[module_name(path)] = path
    return files


def bound_names(name: str, path: Path) -> set[str]:
    """The names a package binds at its top level (what `from package import name` finds first),
    but for its own submodules it imports (`from package import submodule`, `from . import submodule`)."""
    names = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.ImportFrom) and (node.module == name or (node.level == 1 and not node.module)):
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split('.')[0] for alias in node.names)
    return names


def imports_of(name: str, path: Path, files: dict[str, Path]) -> set[str]:
    """The modules `name` imports: `from package import module` names the module (unless the
    package binds that name itself: `from runner_service.cli import app` may be an object of the
    package), `from module import thing` the module; relative imports resolved against `name`'s
    package."""
    is_package = path.name == '__init__.py'
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name.split('.') if is_package else name.split('.')[:-1]
                base = '.'.join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            package_binds = bound_names(base, files[base]) if base in files else set()
            for alias in node.names:
                candidate = '%s.%s' % (base, alias.name)
                found.add(candidate if candidate in files and alias.name not in package_binds else base)
    return found


@pytest.fixture(scope='module')
def graph() -> dict[str, set[str]]:
    files = source_files()
    return {name: imports_of(name, path, files) for name, path in files.items()}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + '.')


def project_imports(graph, name: str) -> set[str]:
    return {target for target in graph[name]
            if any(within(target, top) for top in ('dbfleet', 'runner_service', COLLECTION))}


def layer_of(name: str) -> int:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if within(name, prefix) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    assert best is not None, '%s is in no layer: add it to LAYERS in %s' % (name, __file__)
    return best[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def service(graph) -> dict[str, set[str]]:
    return {name: {target for target in targets if within(target, 'runner_service')}
            for name, targets in graph.items() if within(name, 'runner_service')}


def test_no_import_cycle_in_the_service(graph):
    assert cycles(service(graph)) == []


def test_the_base_never_imports_the_service(graph):
    wrong = {name: sorted(target for target in project_imports(graph, name) if within(target, 'runner_service'))
             for name in graph if within(name, 'dbfleet')}
    assert {name: targets for name, targets in wrong.items() if targets} == {}


def test_the_collection_imports_only_the_base_and_its_module_utils(graph):
    wrong = {}
    for name in graph:
        if not within(name, COLLECTION):
            continue
        on_the_host = within(name, MODULE_UTILS) or within(name, COLLECTION + '.plugins.modules')
        allowed = (MODULE_UTILS,) if on_the_host else (MODULE_UTILS, COLLECTION + '.plugins.plugin_utils', 'dbfleet')
        bad = sorted(target for target in project_imports(graph, name)
                     if not any(within(target, prefix) for prefix in allowed))
        if bad:
            wrong[name] = bad
    assert wrong == {}


def test_only_the_cli_and_the_api_import_the_http_and_command_layers(graph):
    wrong = {}
    for name, targets in service(graph).items():
        if within(name, 'runner_service.api') or within(name, 'runner_service.cli'):
            continue
        bad = sorted(target for target in targets
                     if (within(target, 'runner_service.api') or within(target, 'runner_service.cli'))
                     and target not in API_ENTRY.get(name, ()))
        if bad:
            wrong[name] = bad
    assert wrong == {}


def test_imports_point_down_the_layers(graph):
    wrong = {}
    for name, targets in service(graph).items():
        upward = sorted(target for target in targets if layer_of(target) < layer_of(name))
        if upward:
            wrong[name] = upward
    assert wrong == {}


def test_the_checks_see_what_they_check(graph):
    """The import graph is read as intended: relative imports and `from package import module`
    resolve to modules, a lazy import inside a function counts, and a cycle is found."""
    assert 'runner_service.jobs.service' in graph['runner_service.api.deps']
    assert 'dbfleet.tags' in graph[COLLECTION + '.plugins.inventory.fleet']  # imported inside a method
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert layer_of('runner_service.cli.jobs') < layer_of('runner_service.api.deps') < layer_of('runner_service.errors')


def test_from_a_package_import_names_its_submodule_unless_the_package_binds_the_name(tmp_path):
    package = tmp_path / 'pkg'
    package.mkdir()
    (package / '__init__.py').write_text('from pkg import sub\napp = object()\n')
    (package / 'sub.py').write_text('from pkg import app\n')
    (package / 'app.py').write_text('')
    files = {'pkg': package / '__init__.py', 'pkg.sub': package / 'sub.py', 'pkg.app': package / 'app.py'}
    assert imports_of('pkg', files['pkg'], files) == {'pkg.sub'}
    assert imports_of('pkg.sub', files['pkg.sub'], files) == {'pkg'}  # the package's `app`, not pkg/app.py
