"""The systemd units in runner_service/systemd/ pass `systemd-analyze verify` with nothing to say,
keep their sandbox (`systemd-analyze security --offline`), start commands the CLI has, and give
a stopping worker more time than it gives its job.

systemd-analyze verify wants ExecStart's program to exist: each test verifies a copy whose
/opt/dbfleet/bin/dbfleet is a stub in a temporary directory. It exits 0 on an unknown key or a
value it cannot parse (it only warns), so any output at all is a failure here; a planted typo
shows that it is."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dbfleet.settings import Settings
from runner_service.cli import app
from runner_service.worker.fleet_worker import HEARTBEAT_SECONDS
from tests.conftest import REPO

UNITS = REPO / 'runner_service' / 'systemd'
SERVICES = ('dbfleet-api.service', 'dbfleet-archive@.service', 'dbfleet-scheduler.service', 'dbfleet-worker@.service')
INSTALLED = '/opt/dbfleet/bin/dbfleet'
# systemd-analyze security's scale: 0 is locked down, 10 is a unit with no sandbox at all.
MOST_EXPOSURE = 2.5

pytestmark = pytest.mark.skipif(shutil.which('systemd-analyze') is None, reason='systemd-analyze is not installed')


def units_to_verify(directory: Path, change=lambda name, text: text) -> list[Path]:
    """Copies of every unit in `directory`, ExecStart pointing at a stub, changed by `change`."""
    stub = directory / 'bin' / 'dbfleet'
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nexit 0\n')
    stub.chmod(0o755)
    copies = []
    for unit in sorted(UNITS.glob('dbfleet*.service')) + sorted(UNITS.glob('*.target')):
        copy = directory / unit.name
        copy.write_text(change(unit.name, unit.read_text().replace(INSTALLED, str(stub))))
        copies.append(copy)
    return copies


def verify(units: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(['systemd-analyze', 'verify', '--man=no', *map(str, units)], capture_output=True,
                          text=True, timeout=120)


def service_section(name: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read(UNITS / name)
    return dict(parser['Service'])


def seconds(value: str) -> float:
    match = re.fullmatch(r'(\d+)(s|min)', value)
    assert match, 'a time systemd reads, in s or min: %r' % value
    return int(match.group(1)) * (60 if match.group(2) == 'min' else 1)


def test_the_units_are_the_five_expected():
    assert sorted(path.name for path in UNITS.iterdir() if path.suffix in ('.service', '.target')) == sorted(
        SERVICES + ('dbfleet.target',))


def test_every_unit_verifies_without_a_word(tmp_path):
    checked = verify(units_to_verify(tmp_path))
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, '')


@pytest.mark.parametrize('unit, old, new, said', [
    ('dbfleet-api.service', 'Restart=on-failure', 'Restart=on-failuer', 'Failed to parse service restart specifier'),
    ('dbfleet-worker@.service', 'KillMode=mixed', 'KillMode=mixd', 'Failed to parse kill mode specification'),
    ('dbfleet-worker@.service', 'TimeoutStopSec=', 'TimeoutStopSecs=', "Unknown key 'TimeoutStopSecs'"),
    ('dbfleet-scheduler.service', 'ProtectSystem=strict', 'ProtectSystem=strikt', 'Failed to parse protect system value'),
    ('dbfleet.target', 'WantedBy=multi-user.target', 'WanteBy=multi-user.target', "Unknown key 'WanteBy'"),
])
def test_a_planted_mistake_fails_the_check(tmp_path, unit, old, new, said):
    """systemd-analyze exits 0 on each of these: the check is that it said something."""

    def plant(name, text):
        if name != unit:
            return text
        assert old in text
        return text.replace(old, new)

    checked = verify(units_to_verify(tmp_path, plant))
    said_all = checked.stdout + checked.stderr
    assert '%s:' % unit in said_all and said in said_all, said_all


def test_a_missing_program_fails_the_verification(tmp_path):
    units = units_to_verify(tmp_path)
    (tmp_path / 'bin' / 'dbfleet').unlink()
    checked = verify(units)
    assert checked.returncode != 0 and 'is not executable' in checked.stderr


@pytest.mark.parametrize('name', SERVICES)
def test_each_service_keeps_its_sandbox(tmp_path, name):
    unit = next(path for path in units_to_verify(tmp_path) if path.name == name)
    checked = subprocess.run(['systemd-analyze', 'security', '--offline=yes', '--threshold=%g' % (MOST_EXPOSURE * 10),
                              str(unit)], capture_output=True, text=True, timeout=120)
    exposure = re.search(r'Overall exposure level for \S+: (\d+\.\d+)', checked.stdout)
    assert exposure, checked.stdout + checked.stderr
    assert float(exposure.group(1)) <= MOST_EXPOSURE, checked.stdout


@pytest.mark.parametrize('name', SERVICES)
def test_each_service_runs_as_dbfleet_from_the_env_file_and_restarts_on_failure(name):
    service = service_section(name)
    assert service['User'] == 'dbfleet' and service['EnvironmentFile'] == '/etc/dbfleet/dbfleet.env'
    assert service['Restart'] == 'on-failure' and seconds(service['RestartSec']) >= 5
    assert service['KillMode'] == 'mixed'  # SIGTERM to the main process alone; it stops what it started
    assert service['StateDirectory'] == 'dbfleet' and service['ProtectSystem'] == 'strict'


@pytest.mark.parametrize('name', SERVICES)
def test_each_service_starts_a_command_the_cli_has(name):
    command = service_section(name)['ExecStart'].split()
    assert command[0] == INSTALLED
    arguments = [argument.replace('%i', 'dc1') for argument in command[1:]]
    result = CliRunner().invoke(app, arguments + ['--help'])
    assert result.exit_code == 0, result.output


def test_a_stopping_worker_is_given_more_than_it_gives_its_job():
    """DBFLEET_WORKER_STOP_SECONDS for the job, a heartbeat until the worker notices, and the
    play's end recorded: only then may systemd SIGKILL what is left."""
    stop = seconds(service_section('dbfleet-worker@.service')['TimeoutStopSec'])
    assert stop >= Settings.model_fields['worker_stop_seconds'].default + HEARTBEAT_SECONDS + 30
