"""Quality gates of the collection: it builds, its docs render, ansible-test sanity and
ansible-lint are clean. Every test here runs the real tool."""

from __future__ import annotations

import subprocess
import tarfile

import pytest

from tests.conftest import REPO, VENV_BIN, ansible_env

pytestmark = pytest.mark.sanity

PLUGIN_DIRS = {'modules': 'module', 'action': 'module', 'inventory': 'inventory'}
NOT_SHIPPED = ('tests/', 'var/', '.venv', 'bench/', 'runner_service/', 'collections/', '.git/')


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
