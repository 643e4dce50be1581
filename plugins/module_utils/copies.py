# -*- coding: utf-8 -*-
# Copyright: dbfleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Off-host copies of backups and archived binlog files, for the backup_copy module.

A repository is a directory on a backup host reached over SSH (`rsync -e ssh`, host key checking
always on against a given known_hosts file) or an rclone remote (`rclone copyto`). The layout
under the repository's root is the local one: `<name>/<YYYY-MM-DD>/<time>-<method>/` for a
backup (archive and manifest.json), `<name>/binlogs/<file>` and `<file>.json` for a binlog.

A copy counts only once the remote file's SHA-256 equals the manifest's: `ssh host sha256sum`
for SSH, `rclone hashsum sha256 --download` for rclone (every backend, also those that keep no
SHA-256: the remote file is read back and hashed here).

Retention follows the host's: what mysql_backup's retention removed from the local disk (backup
directories, archived binlogs) is removed from each repository too (`prune`), so a repository never
keeps more than the policy says and never loses what the policy keeps.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess

from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import parse_backup_dir

KINDS = ('ssh', 'rclone')
_NAME = re.compile(r'^[A-Za-z0-9_.-]{1,64}$')
# A host name or address for ssh (never an option: no leading '-'), and a user name.
_HOST = re.compile(r'^[A-Za-z0-9_.:\[\]%-]{1,253}$')
_USER = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$')
# rclone remote:path, the remote a configured name.
_REMOTE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_. -]{0,63}:[^\0\n]*$')
_SHA256 = re.compile(r'^([0-9a-f]{64})\s+\*?(.+)$')
# An archived binlog's name; with a backup directory (backup.parse_backup_dir: <day>/<time>-<method>)
# nothing else is ever removed from a repository.
_BINLOG = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}\.\d{1,10}$')
ERROR_CHARS = 1500
TIMEOUT = 6 * 3600


class CopyError(Exception):
    """A repository cannot be used as given (the message says which and why)."""


def check_repositories(repositories):
    """The repositories as checked dicts; CopyError naming the first wrong field."""
    checked, names = [], set()
    for index, repository in enumerate(repositories or []):
        if not isinstance(repository, dict):
            raise CopyError('repositories[%d] must be a dict with name and kind' % index)
        name = repository.get('name')
        if not isinstance(name, str) or not _NAME.match(name):
            raise CopyError('repositories[%d].name must be 1 to 64 letters, digits, _ . or -' % index)
        if name in names:
            raise CopyError('repository %s is given twice' % name)
        names.add(name)
        kind = repository.get('kind')
        if kind not in KINDS:
            raise CopyError('repository %s: kind must be ssh or rclone, got %r' % (name, kind))
        allowed = {'ssh': {'name', 'kind', 'host', 'port', 'user', 'path', 'known_hosts', 'identity_file'},
                   'rclone': {'name', 'kind', 'remote', 'config'}}[kind]
        unknown = sorted(set(repository) - allowed)
        if unknown:
            raise CopyError('repository %s (%s) does not take %s; it takes %s'
                            % (name, kind, ', '.join(unknown), ', '.join(sorted(allowed))))
        if kind == 'ssh':
            if not isinstance(repository.get('host'), str) or not _HOST.match(repository['host']) \
                    or repository['host'].startswith('-'):
                raise CopyError('repository %s: host must be a host name or address' % name)
            if repository.get('user') is not None and not _USER.match(str(repository['user'])):
                raise CopyError('repository %s: user must be a user name' % name)
            port = repository.get('port', 22)
            if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
                raise CopyError('repository %s: port must be 1 to 65535' % name)
            path = repository.get('path')
            if not isinstance(path, str) or not path.startswith('/') or '\0' in path or '\n' in path:
                raise CopyError('repository %s: path must be an absolute directory on %s' % (name, repository['host']))
            known_hosts = repository.get('known_hosts')
            if not isinstance(known_hosts, str) or not os.path.isfile(known_hosts):
                raise CopyError('repository %s: known_hosts must be a file of host keys on this host (host key '
                                'checking is always on), got %r' % (name, known_hosts))
            if repository.get('identity_file') is not None and not os.path.isfile(str(repository['identity_file'])):
                raise CopyError('repository %s: identity_file %s is not a file' % (name, repository['identity_file']))
            checked.append(dict(repository, port=int(port), path=os.path.normpath(path)))
        else:
            remote = repository.get('remote')
            if not isinstance(remote, str) or not _REMOTE.match(remote) or remote.startswith('-'):
                raise CopyError('repository %s: remote must be an rclone remote and path, such as offsite:backups'
                                % name)
            if repository.get('config') is not None and not os.path.isfile(str(repository['config'])):
                raise CopyError('repository %s: config %s is not a file' % (name, repository['config']))
            checked.append(dict(repository))
    return checked


class Item(object):
    """One thing to copy: files (absolute local paths) into one remote directory (relative to
    the repository's root); `main` is the file whose SHA-256 (`sha256`, the manifest's) the copy
    is recorded with."""

    def __init__(self, files, relative_dir, main, sha256, binlog_file=None):
        self.files = files
        self.relative_dir = relative_dir
        self.main = main
        self.sha256 = sha256
        self.binlog_file = binlog_file


def backup_item(backup_path, dest, name):
    """The Item of a backup directory under <dest>/<name>/ (archive and manifest)."""
    with open(os.path.join(backup_path, 'manifest.json')) as handle:
        manifest = json.load(handle)
    host_dir = os.path.join(os.path.normpath(dest), name)
    relative = os.path.relpath(os.path.normpath(backup_path), host_dir)
    if relative.startswith('..') or relative.count('/') != 1:
        raise CopyError('path %s is not a backup directory under %s' % (backup_path, host_dir))
    archive = os.path.join(backup_path, manifest['archive'])
    return Item([archive, os.path.join(backup_path, 'manifest.json')], os.path.join(name, relative), archive,
                manifest['sha256'])


def binlog_items(dest, name, skip=()):
    """Items of the completed archived binlog files (those with their .json) not in `skip`."""
    directory = os.path.join(os.path.normpath(dest), name, 'binlogs')
    if not os.path.isdir(directory):
        return []
    items = []
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith('.json') or entry.startswith('.'):
            continue
        binlog = entry[:-len('.json')]
        path = os.path.join(directory, binlog)
        if binlog in skip or not os.path.isfile(path):
            continue
        with open(os.path.join(directory, entry)) as handle:
            manifest = json.load(handle)
        items.append(Item([path, os.path.join(directory, entry)], os.path.join(name, 'binlogs'), path,
                          manifest['sha256'], binlog_file=binlog))
    return items


def removed_dirs(name, paths):
    """The repository-relative directories (<name>/<day>/<time>-<method>) of removed local backup
    paths; CopyError for a path that is not a backup directory."""
    relative = []
    for path in paths:
        normalized = os.path.normpath(str(path))
        tail = '/'.join(normalized.split('/')[-2:])
        if parse_backup_dir(normalized) is None:
            raise CopyError('removed: %r is not a backup directory (<dest>/<name>/<day>/<time>-<method>)'
                            % str(path)[:200])
        relative.append('%s/%s' % (name, tail))
    return relative


def removed_binlog_files(name, files):
    """<name>/binlogs/<file> and its .json for each removed archived binlog; CopyError for another name."""
    relative = []
    for entry in files:
        if not isinstance(entry, str) or not _BINLOG.match(entry):
            raise CopyError('removed_binlogs: %r is not a binlog file name' % str(entry)[:200])
        relative += ['%s/binlogs/%s' % (name, entry), '%s/binlogs/%s.json' % (name, entry)]
    return relative


def _run(argv, env=None):
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT, env=env,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, '', str(exc)
    return done.returncode, done.stdout.decode('utf-8', 'replace'), done.stderr.decode('utf-8', 'replace')


def _failure(what, rc, err):
    return '%s exited with status %d: %s' % (what, rc, (err.strip() or 'no error output')[-ERROR_CHARS:])


class SshRepository(object):
    def __init__(self, spec):
        self.spec = spec
        self.target = ('%s@%s' % (spec['user'], spec['host'])) if spec.get('user') else spec['host']

    def ssh_command(self):
        command = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes',
                   '-o', 'UserKnownHostsFile=%s' % self.spec['known_hosts'], '-o', 'ConnectTimeout=20',
                   '-p', str(self.spec['port'])]
        if self.spec.get('identity_file'):
            command += ['-i', self.spec['identity_file'], '-o', 'IdentitiesOnly=yes']
        return command

    def location(self, relative_dir, filename):
        return '%s:%s' % (self.target, os.path.join(self.spec['path'], relative_dir, filename))

    def upload(self, item):
        remote_dir = os.path.join(self.spec['path'], item.relative_dir)
        rc, _out, err = _run(self.ssh_command() + [self.target, '--', 'mkdir -p -m 0750 -- %s' % shlex.quote(remote_dir)])
        if rc != 0:
            return _failure('ssh mkdir on %s' % self.target, rc, err)
        # --protect-args: the remote path reaches the other rsync as it is, never through its shell.
        rc, _out, err = _run(['rsync', '--protect-args', '--times', '--perms', '--chmod=D750,F600', '--partial-dir=.rsync-partial',
                              '-e', ' '.join(shlex.quote(part) for part in self.ssh_command())]
                             + item.files + ['%s:%s/' % (self.target, remote_dir)])
        if rc != 0:
            return _failure('rsync to %s' % self.target, rc, err)
        return None

    def remove(self, directories, files):
        """Remove backup directories and files (relative to the root); an error text or None. Missing ones
        are no error (removed before, or never copied); emptied day directories go too."""
        root = self.spec['path']
        paths = [os.path.join(root, relative) for relative in list(directories) + list(files)]
        days = sorted({os.path.dirname(os.path.join(root, relative)) for relative in directories})
        command = 'rm -rf -- %s' % ' '.join(shlex.quote(path) for path in paths)
        if days:
            command += '; rmdir --ignore-fail-on-non-empty -- %s 2>/dev/null; true' % ' '.join(
                shlex.quote(day) for day in days)
        rc, _out, err = _run(self.ssh_command() + [self.target, '--', command])
        return _failure('ssh rm on %s' % self.target, rc, err) if rc != 0 else None

    def remote_sha256(self, item):
        remote = os.path.join(self.spec['path'], item.relative_dir, os.path.basename(item.main))
        rc, out, err = _run(self.ssh_command() + [self.target, '--', 'sha256sum -- %s' % shlex.quote(remote)])
        if rc != 0:
            return None, _failure('sha256sum on %s' % self.target, rc, err)
        match = _SHA256.match(out.strip())
        return (match.group(1), None) if match else (None, 'sha256sum on %s printed no checksum' % self.target)


class RcloneRepository(object):
    def __init__(self, spec):
        self.spec = spec

    def rclone(self):
        command = ['rclone', '--retries', '3', '--low-level-retries', '5']
        if self.spec.get('config'):
            command += ['--config', self.spec['config']]
        return command

    def location(self, relative_dir, filename):
        remote = self.spec['remote']
        return remote.rstrip('/') + ('/' if not remote.endswith(':') else '') + '/'.join([relative_dir, filename])

    def upload(self, item):
        for path in item.files:
            rc, _out, err = _run(self.rclone() + ['copyto', path, self.location(item.relative_dir,
                                                                                os.path.basename(path))])
            if rc != 0:
                return _failure('rclone copyto %s' % self.spec['remote'], rc, err)
        return None

    def remove(self, directories, files):
        """`rclone purge` each directory and `rclone deletefile` each file; one already gone is no error."""
        for relative in directories:
            parent, leaf = relative.rsplit('/', 1)
            rc, _out, err = _run(self.rclone() + ['purge', self.location(parent, leaf)])
            if rc != 0 and not _gone(err):
                return _failure('rclone purge on %s' % self.spec['remote'], rc, err)
        for relative in files:
            parent, leaf = relative.rsplit('/', 1)
            rc, _out, err = _run(self.rclone() + ['deletefile', self.location(parent, leaf)])
            if rc != 0 and not _gone(err):
                return _failure('rclone deletefile on %s' % self.spec['remote'], rc, err)
        return None

    def remote_sha256(self, item):
        remote = self.location(item.relative_dir, os.path.basename(item.main))
        rc, out, err = _run(self.rclone() + ['hashsum', 'sha256', '--download', remote])
        if rc != 0:
            return None, _failure('rclone hashsum on %s' % self.spec['remote'], rc, err)
        match = _SHA256.match(out.strip().splitlines()[0] if out.strip() else '')
        return (match.group(1), None) if match else (None, 'rclone hashsum printed no checksum for %s' % remote)


def _gone(err):
    """rclone's error text for a path that is not there."""
    text = err.lower()
    return 'not found' in text or 'no such file' in text


def repository(spec):
    return SshRepository(spec) if spec['kind'] == 'ssh' else RcloneRepository(spec)


def copy_items(spec, items, now):
    """Copy each item to the repository and verify it; a result dict per item (status ok only
    when the remote SHA-256 is the manifest's). `now()` gives the time of a verification."""
    target = repository(spec)
    results = []
    for item in items:
        result = dict(repository=spec['name'], kind=spec['kind'], binlog_file=item.binlog_file,
                      location=target.location(item.relative_dir, os.path.basename(item.main)), sha256=None,
                      status='failed', verified_at=None, error=None)
        error = target.upload(item)
        if error is None:
            remote, error = target.remote_sha256(item)
            result['sha256'] = remote
            if error is None and remote != item.sha256:
                error = 'the copy at %s has SHA-256 %s, the manifest says %s' % (
                    result['location'], remote, item.sha256)
        if error is None:
            result.update(status='ok', verified_at=now())
        else:
            result['error'] = error
        results.append(result)
    return results


def prune(spec, directories, files):
    """Remove from the repository what retention removed locally; a result dict: repository, removed
    (the repository-relative paths), status ok or failed, error."""
    error = repository(spec).remove(directories, files) if directories or files else None
    return dict(repository=spec['name'], kind=spec['kind'], removed=list(directories) + list(files),
                status='failed' if error else 'ok', error=error)
