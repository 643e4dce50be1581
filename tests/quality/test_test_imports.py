"""Tests share code through conftest.py and helper modules, never by importing another test module: a
test module is collected by pytest and may be moved, split or skipped on its own."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update('%s.%s' % (node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_test_module_imports_another_test_module():
    offending = {}
    for path in sorted(TESTS.rglob('*.py')):
        wrong = sorted(name for name in imported_modules(path)
                       if name.startswith('tests.') and name.rsplit('.', 1)[-1].startswith('test_'))
        if wrong:
            offending[str(path.relative_to(TESTS.parent))] = wrong
    assert offending == {}


def test_the_check_sees_such_an_import(tmp_path):
    module = tmp_path / 'test_other.py'
    module.write_text('from tests.collection.test_backup import playbook\nimport tests.unit.test_x\n')
    assert {'tests.collection.test_backup', 'tests.unit.test_x'} <= imported_modules(module)
