"""runner_service/systemd/dbfleet.env.example documents every DBFLEET_* setting the code reads,
and only those; what it shows loads as settings, and its values read the same to systemd's
EnvironmentFile= and to python-dotenv (what dbfleet's settings use)."""

from __future__ import annotations

import ast
import re

from dbfleet.settings import Settings
from tests.conftest import REPO

EXAMPLE = REPO / 'runner_service' / 'systemd' / 'dbfleet.env.example'
ASSIGNMENT = re.compile(r'^#?(DBFLEET_[A-Z0-9_]+)=(.*)$')
NAME = re.compile(r'^DBFLEET_[A-Z0-9_]+$')
# Names the code uses that are not settings of the file: DBFLEET_CONFIG names the file itself
# (the header says so); DBFLEET_JOB_ID marks each play's processes (the worker sets it).
NOT_IN_THE_FILE = {'DBFLEET_CONFIG', 'DBFLEET_JOB_ID'}
# A value both readers take literally: plain characters, or single-quoted without a quote inside.
PLAIN = re.compile(r"^[A-Za-z0-9./:@,%+=_-]*$|^'[^'\\]*'$")


def assignments() -> dict[str, str]:
    found = {}
    for line in EXAMPLE.read_text().splitlines():
        match = ASSIGNMENT.match(line)
        if match:
            assert match.group(1) not in found, 'shown twice: %s' % match.group(1)
            found[match.group(1)] = match.group(2)
    return found


def names_in_code() -> set[str]:
    """Every setting of dbfleet.settings.Settings, and every DBFLEET_* name written out in the
    code (read from os.environ, an option's envvar, an Ansible plugin's env)."""
    names = {'DBFLEET_' + field.upper() for field in Settings.model_fields}
    for top in ('dbfleet', 'runner_service', 'plugins'):
        for path in (REPO / top).rglob('*.py'):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.match(node.value):
                    names.add(node.value)
    return names


def test_every_setting_the_code_reads_is_in_the_example_and_nothing_else():
    code = names_in_code() - NOT_IN_THE_FILE
    shown = set(assignments())
    assert code - shown == set(), 'read by the code, missing from %s' % EXAMPLE.name
    assert shown - code == set(), 'in %s, read by nothing' % EXAMPLE.name


def test_the_names_that_are_not_settings_are_still_what_the_code_uses():
    assert NOT_IN_THE_FILE <= names_in_code()
    assert 'DBFLEET_CONFIG' in EXAMPLE.read_text()


def test_every_value_reads_the_same_to_systemd_and_to_dotenv():
    unreadable = {name: value for name, value in assignments().items() if not PLAIN.match(value)}
    assert unreadable == {}


def test_the_example_loads_as_settings_with_every_line_uncommented(tmp_path, monkeypatch):
    """The documented defaults and examples are valid values, set all at once."""
    for name in list(__import__('os').environ):
        if name.startswith('DBFLEET_'):
            monkeypatch.delenv(name)
    shown = assignments()
    uncommented = tmp_path / 'dbfleet.env'
    uncommented.write_text(''.join('%s=%s\n' % item for item in shown.items() if item[1]))
    settings = Settings(_env_file=uncommented)
    assert settings.store_url == shown['DBFLEET_STORE_URL']
    assert settings.inventory_dirs == ['inventories']
    assert settings.api_forwarded_allow_ips == '127.0.0.1,::1' and settings.api_proxy_headers is False
    assert settings.keep_runs == 200 and settings.keep_runs_days == 14
    assert settings.worker_stop_seconds == 60
