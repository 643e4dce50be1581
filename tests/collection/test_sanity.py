"""Quality gates of the collection: it builds, its docs render, ansible-test sanity and
ansible-lint are clean. Every test here runs the real tool."""

from __future__ import annotations

import re
import subprocess
import tarfile

import pytest
import yaml

from dbfleet import __version__
from tests.conftest import REPO, VENV_BIN, ansible_env

pytestmark = pytest.mark.sanity

PLUGIN_DIRS = {'modules': 'module', 'action': 'module', 'inventory': 'inventory'}
# The Python packages are pip's to install (meta/requirements.txt), not the collection's to carry.
NOT_SHIPPED = ('tests/', 'var/', '.venv', 'bench/', 'runner_service/', 'dbfleet/', 'devtools/', 'collections/', '.git/',
               'requirements.txt', 'pyproject.toml')


def controller_plugins() -> dict[str, str]:
    """Every controller-side plugin that imports the base package, with the module (or itself) whose
    DOCUMENTATION must declare it: an action plugin's module of the same name, an inventory plugin itself."""
    found = {}
    for kind in ('action', 'inventory'):
        for path in sorted((REPO / 'plugins' / kind).glob('*.py')):
            if re.search(r'^\s*(from dbfleet[ .]|import dbfleet)', path.read_text(), re.M):
                documented = path if kind == 'inventory' else REPO / 'plugins' / 'modules' / path.name
                found[str(path.relative_to(REPO))] = str(documented.relative_to(REPO))
    return found


CONTROLLER_PLUGINS = controller_plugins()


def run(args, cwd=REPO, timeout=900):
    completed = subprocess.run(args, cwd=cwd, env=ansible_env(), capture_output=True, text=True, timeout=timeout,
                               check=False)
    return completed, completed.stdout + completed.stderr


def plugins():
    """(fqcn, ansible-doc type) of every plugin in the collection."""
    found = []
    for directory, doc_type in PLUGIN_DIRS.items():
        for path in sorted((REPO / 'plugins' / directory).glob('*.py')):
            if path.name != '__init__.py':
                # action plugins are documented by the module of the same name
                found.append(('dbfleet.mysql.' + path.stem, doc_type))
    return found


@pytest.fixture(scope='module')
def tarball(tmp_path_factory):
    """The collection as `ansible-galaxy collection build` ships it."""
    out = tmp_path_factory.mktemp('build')
    completed, output = run([str(VENV_BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(out)])
    assert completed.returncode == 0, output
    (built,) = out.glob('dbfleet-mysql-*.tar.gz')
    return built


def test_collection_builds_without_development_files(tarball):
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert 'plugins/modules/mysql_facts.py' in names and 'MANIFEST.json' in names
    assert 'playbooks/collect_facts.yml' in names
    assert 'meta/requirements.txt' in names and 'meta/execution-environment.yml' in names
    leaked = [name for name in names if name.startswith(NOT_SHIPPED) or '/__pycache__' in name]
    assert leaked == []


@pytest.mark.parametrize('fqcn,doc_type', plugins(), ids=[name for name, _ in plugins()])
def test_ansible_doc_renders(fqcn, doc_type):
    completed, output = run([str(VENV_BIN / 'ansible-doc'), '-t', doc_type, fqcn])
    assert completed.returncode == 0, output
    assert 'OPTIONS' in completed.stdout and 'RETURN' in completed.stdout or doc_type != 'module'
    assert '[WARNING]' not in output, output


def test_ansible_test_sanity(tarball, tmp_path):
    """Sanity of what the collection ships, laid out as ansible-test wants: ansible_collections/<ns>/<name>."""
    target = tmp_path / 'ansible_collections' / 'dbfleet' / 'mysql'
    target.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(target, filter='data')
    # pslint checks PowerShell, which the collection has none of.
    completed, output = run([str(VENV_BIN / 'ansible-test'), 'sanity', '--venv', '--python', '3.11',
                             '--skip-test', 'pslint', '--color', 'no'], cwd=target, timeout=1500)
    assert completed.returncode == 0, output[-6000:]


def test_ansible_lint_playbooks():
    completed, output = run([str(VENV_BIN / 'ansible-lint'), '--nocolor', 'playbooks/'])
    assert completed.returncode == 0, output
    assert 'Passed' in output


def base_requirement() -> str:
    lines = [line.split('#', 1)[0].strip() for line in (REPO / 'meta' / 'requirements.txt').read_text().splitlines()]
    (requirement,) = [line for line in lines if line.startswith('dbfleet')]
    return requirement


def test_the_collection_and_the_package_carry_one_version():
    """dbfleet/__init__.py holds the version; galaxy.yml and the collection's requirement follow it."""
    galaxy = yaml.safe_load((REPO / 'galaxy.yml').read_text())
    assert galaxy['version'] == __version__
    assert base_requirement() == 'dbfleet>=%s' % __version__


def test_execution_environment_installs_the_declared_requirements():
    environment = yaml.safe_load((REPO / 'meta' / 'execution-environment.yml').read_text())
    assert (REPO / environment['dependencies']['python']).resolve() == (REPO / 'meta' / 'requirements.txt').resolve()


@pytest.mark.parametrize('plugin,documented_in', sorted(CONTROLLER_PLUGINS.items()))
def test_controller_plugins_declare_the_base_package(plugin, documented_in):
    source = (REPO / documented_in).read_text()
    documentation = yaml.safe_load(re.search(r"DOCUMENTATION = r\'\'\'(.*?)\'\'\'", source, re.S).group(1))
    assert any(base_requirement() in line and "pip install '%s'" % base_requirement() in line
               for line in documentation['requirements'])
    assert 'base_package import needs_base' in (REPO / plugin).read_text()


def test_a_missing_base_package_names_the_exact_requirement():
    from ansible_collections.dbfleet.mysql.plugins.plugin_utils.base_package import needs_base

    message = needs_base('the fleet inventory plugin', ImportError("No module named 'dbfleet'"))
    assert "pip install '%s'" % base_requirement() in message
