"""Reading and writing crontab files and the current user's crontab for real."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from runner_service.bridge.crontab import Conflict, parse, read, replace_line, source_for, write
from runner_service.bridge.crontab.files import _current_user

TEXT = 'SHELL=/bin/sh\r\n# keep me\n*/5 * * * * root echo "\\%s" \xe9\udcff\n0 0 * * * root last'


def test_source_for_kinds():
    assert source_for(user='alice').describe() == 'crontab of alice'
    system = source_for(system=True)
    assert (system.kind, system.name, system.system, system.describe()) == ('system', '/etc/crontab', True,
                                                                            '/etc/crontab')
    assert source_for(crond='php').name == '/etc/cron.d/php'
    assert source_for(path='/etc/cron.d/x').system
    assert not source_for(path='/tmp/mytab').system
    assert source_for(path='/tmp/mytab', path_system=True).system
    assert not source_for(path='/etc/crontab', path_system=False).system


@pytest.mark.parametrize('kwargs', [{}, {'user': 'a', 'system': True}, {'crond': '../passwd'},
                                    {'crond': 'a/b'}, {'crond': 'php.dpkg-old'}, {'user': 'a b'}])
def test_source_for_refuses(kwargs):
    with pytest.raises(ValueError):
        source_for(**kwargs)


def test_write_read_conflict_and_idempotence(tmp_path):
    path = tmp_path / 'dbtab'
    source = source_for(path=str(path), path_system=True)
    assert read(source) == ''
    assert write(source, TEXT) is True
    assert path.stat().st_mode & 0o777 == 0o644
    assert read(source) == TEXT and path.read_bytes() == TEXT.encode('utf-8', 'surrogateescape')

    path.chmod(0o600)
    tab = parse(read(source), source.describe(), source.system)
    assert len(tab.entries) == 2
    new = replace_line(tab, 3, '*/10 * * * * root echo changed')
    assert write(source, new, expected=TEXT) is True
    assert path.stat().st_mode & 0o777 == 0o600  # mode kept
    assert read(source) == new
    assert write(source, new, expected=new) is False  # nothing to do
    with pytest.raises(Conflict, match='changed since it was read'):
        write(source, TEXT, expected=TEXT)
    assert read(source) == new
    assert [name for name in os.listdir(tmp_path)] == ['dbtab']  # no temp files left


@pytest.fixture
def own_crontab():
    """The current user's crontab, put back exactly afterwards."""
    if not shutil.which('crontab'):
        pytest.skip('no crontab command')
    user = _current_user()
    before = subprocess.run(['crontab', '-l'], capture_output=True)
    if before.returncode and b'no crontab for' not in before.stderr:
        pytest.skip('crontab -l does not work here: %s' % before.stderr.decode(errors='replace'))
    yield source_for(user=user)
    if before.returncode:
        subprocess.run(['crontab', '-r'], capture_output=True)
    else:
        subprocess.run(['crontab', '-'], input=before.stdout, check=True)
    after = subprocess.run(['crontab', '-l'], capture_output=True)
    assert (after.returncode, after.stdout) == (before.returncode, before.stdout)


def test_user_crontab_via_crontab_command(own_crontab):
    original = read(own_crontab)
    text = original + '# dbfleet test\n17 3 * * * /bin/true\n'
    assert write(own_crontab, text, expected=original) is True
    assert read(own_crontab) == text
    assert write(own_crontab, text) is False
    with pytest.raises(Conflict):
        write(own_crontab, original, expected=original)


def test_a_rewrite_within_the_same_second_still_moves_the_mtime_on(tmp_path):
    # Cron keeps a loaded crontab while its mtime, in whole seconds, is unchanged.
    path = tmp_path / 'dbfleet-test'
    path.write_text('* * * * * root echo one\n')
    before = os.stat(path).st_mtime
    os.utime(path, (before, float(int(before) + 5)))  # as if written later this very second
    source = source_for(path=str(path), path_system=True)
    assert write(source, '* * * * * root echo two\n')
    assert int(os.stat(path).st_mtime) == int(before) + 6
    assert path.read_text() == '* * * * * root echo two\n'
