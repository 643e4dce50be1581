"""Reading and writing crontabs: users' through the `crontab` command (the only supported
way: it validates, sets ownership and tells the daemon), /etc/crontab and /etc/cron.d files
directly. Writes are atomic, refuse to clobber a concurrent edit, and skip no-op syncs.

Text is decoded with surrogateescape so bytes that are not UTF-8 survive a round trip.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
import tempfile
from dataclasses import dataclass

SYSTEM_CRONTAB = '/etc/crontab'
CROND = '/etc/cron.d'
# Debian's cron reads /etc/cron.d files whose names are made of these only (no dots), which
# also keeps the temporary files written next to them invisible to it.
_CROND_NAME = re.compile(r'[A-Za-z0-9_-]+\Z')
_ENCODING = dict(encoding='utf-8', errors='surrogateescape')

# Where cron keeps users' crontabs: Debian's cron, then cronie's.
USER_SPOOLS = ('/var/spool/cron/crontabs', '/var/spool/cron')


@dataclass(frozen=True)
class Source:
    kind: str     # 'user' | 'system' (/etc/crontab) | 'crond' (/etc/cron.d/NAME) | 'path'
    name: str     # user name, or the file path
    system: bool  # lines carry a user field

    def describe(self) -> str:
        return 'crontab of %s' % self.name if self.kind == 'user' else self.name


class Conflict(Exception):
    """The crontab changed since it was read; read it again and redo the edit."""


class CrontabError(RuntimeError):
    """The `crontab` command failed; the message carries its own explanation."""


def source_for(user: str | None = None, system: bool = False, crond: str | None = None,
               path: str | None = None, path_system: bool | None = None) -> Source:
    given = [name for name, value in (('user', user), ('system', system), ('crond', crond), ('path', path))
             if value]
    if len(given) != 1:
        raise ValueError('give exactly one crontab: a user, the system crontab, a /etc/cron.d name or a '
                         'path (got %s)' % (', '.join(given) or 'none'))
    if user:
        if not re.match(r'[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?\Z', user):
            raise ValueError('user %r is not a valid user name' % user)
        return Source('user', user, False)
    if system:
        return Source('system', SYSTEM_CRONTAB, True)
    if crond:
        if not _CROND_NAME.match(crond):
            raise ValueError('cron.d name %r: use letters, digits, - and _ only (no /, no dots: cron '
                             'ignores such files)' % crond)
        return Source('crond', os.path.join(CROND, crond), True)
    full = os.path.abspath(path)
    if path_system is None:
        path_system = full == SYSTEM_CRONTAB or os.path.dirname(full) == CROND
    return Source('path', full, path_system)


def read(source: Source) -> str:
    """The crontab's text; '' when the user has no crontab or the file does not exist."""
    if source.kind == 'user':
        done = _crontab(source, '-l')
        if done.returncode:
            if b'no crontab for' in done.stderr:
                return ''
            raise CrontabError('crontab -l for %s failed: %s' % (source.name, _message(done)))
        return done.stdout.decode(**_ENCODING)
    try:
        with open(source.name, newline='', **_ENCODING) as handle:
            return handle.read()
    except FileNotFoundError:
        return ''


def write(source: Source, text: str, expected: str | None = None) -> bool:
    """Install `text`; False (nothing written) when it is already the content. With
    `expected`, raise Conflict when the current content differs from it."""
    current = read(source)
    if expected is not None and current != expected:
        raise Conflict('%s changed since it was read; read it again and redo the change' % source.describe())
    if text == current:
        return False
    if source.kind == 'user':
        spool = next((path for path in (os.path.join(directory, source.name) for directory in USER_SPOOLS)
                      if os.path.isfile(path)), None)
        before = os.stat(spool).st_mtime if spool else None
        done = _crontab(source, '-', text.encode(**_ENCODING))
        if done.returncode:
            raise CrontabError('crontab refused the new crontab of %s: %s' % (source.name, _message(done)))
        if spool and os.path.isfile(spool):
            _newer_second(spool, before)
    else:
        _replace_file(source.name, text)
    return True


def _replace_file(path: str, text: str) -> None:
    """Temp file in the same directory, fsync, same mode and owner, rename, fsync the dir."""
    directory, name = os.path.split(path)
    try:
        info = os.stat(path)
        mode, owner, before = stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid), info.st_mtime
    except FileNotFoundError:
        mode, owner, before = 0o644, None, None  # cron refuses group- or world-writable system crontabs
    fd, temp = tempfile.mkstemp(prefix='.%s.' % name, suffix='.dbfleet', dir=directory or '.')
    try:
        with os.fdopen(fd, 'w', newline='', **_ENCODING) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(temp, *owner)
        _newer_second(temp, before)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
    dir_fd = os.open(directory or '.', os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _newer_second(path: str, before: float | None) -> None:
    """Cron keeps a crontab it has loaded while the file's mtime, in whole seconds, is the one it
    saw: a rewrite within the same second as the last one would go unnoticed. Move the new
    file's mtime to the next second then (at most a second ahead of the clock)."""
    if before is None:
        return
    now = os.stat(path).st_mtime
    if int(now) <= int(before):
        os.utime(path, (now, float(int(before) + 1)))


def _crontab(source: Source, action: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    command = ['crontab'] if source.name == _current_user() else ['crontab', '-u', source.name]
    return subprocess.run(command + [action], input=data, capture_output=True, timeout=60)


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _message(done: subprocess.CompletedProcess) -> str:
    return ' '.join(done.stderr.decode(errors='replace').split()) or 'exit code %d' % done.returncode
