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

A restore from a repository (the backup_fetch module, when the host's own disk lost its backups) goes
the other way (`fetch`): the backup directory and the archived binlogs from its position on are
downloaded into a staging directory in the same layout, and each file counts only when its SHA-256 is
its manifest's (and the archive's the catalog's, when given).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

from ansible_collections.dbfleet.mysql.plugins.module_utils.backup import parse_backup_dir
from ansible_collections.dbfleet.mysql.plugins.module_utils.binlog_archive import binlog_number, sha256_of
from ansible_collections.dbfleet.mysql.plugins.module_utils.restore import ARCHIVE_NAME, parse_iso

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
# A fetch's staging directory, and how long one is kept untouched before a later fetch removes it.
STAGED_PREFIX = 'restore-'
STALE_SECONDS = 24 * 3600


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

    def list(self, relative_dir):
        """The names in a directory of the repository (none when it is missing); (names, error)."""
        remote_dir = os.path.join(self.spec['path'], relative_dir)
        rc, out, err = _run(self.ssh_command() + [self.target, '--', 'cd -- %s 2>/dev/null || exit 0; ls -1A'
                                                  % shlex.quote(remote_dir)])
        if rc != 0:
            return None, _failure('ssh ls on %s' % self.target, rc, err)
        return [line for line in out.splitlines() if line], None

    def download(self, relatives, local_root):
        """Copy files (relative to the root) under `local_root`, same layout; an error text or None."""
        listing = _file_list(relatives, local_root)
        rc, _out, err = _run(['rsync', '--protect-args', '--times', '--chmod=D700,F600', '--files-from=%s' % listing,
                              '-e', ' '.join(shlex.quote(part) for part in self.ssh_command()),
                              '%s:%s/' % (self.target, self.spec['path']), local_root + '/'])
        os.unlink(listing)
        return _failure('rsync from %s' % self.target, rc, err) if rc != 0 else None

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

    def list(self, relative_dir):
        """The file names in a directory of the remote (none when it is missing); (names, error)."""
        parent, leaf = relative_dir.rsplit('/', 1)
        rc, out, err = _run(self.rclone() + ['lsf', '--files-only', self.location(parent, leaf)])
        if rc != 0:
            return ([], None) if _gone(err) else (None, _failure('rclone lsf on %s' % self.spec['remote'], rc, err))
        return [line for line in out.splitlines() if line], None

    def download(self, relatives, local_root):
        """`rclone copy` of files (relative to the remote's root) under `local_root`; an error text or None."""
        listing = _file_list(relatives, local_root)
        rc, _out, err = _run(self.rclone() + ['copy', '--no-traverse', '--files-from-raw', listing,
                                              self.spec['remote'], local_root])
        os.unlink(listing)
        return _failure('rclone copy from %s' % self.spec['remote'], rc, err) if rc != 0 else None

    def remote_sha256(self, item):
        remote = self.location(item.relative_dir, os.path.basename(item.main))
        rc, out, err = _run(self.rclone() + ['hashsum', 'sha256', '--download', remote])
        if rc != 0:
            return None, _failure('rclone hashsum on %s' % self.spec['remote'], rc, err)
        match = _SHA256.match(out.strip().splitlines()[0] if out.strip() else '')
        return (match.group(1), None) if match else (None, 'rclone hashsum printed no checksum for %s' % remote)


def _file_list(relatives, local_root):
    """A file of the relative paths, one a line, for rsync --files-from / rclone --files-from-raw."""
    descriptor, path = tempfile.mkstemp(prefix='.files-', dir=local_root)
    with os.fdopen(descriptor, 'w') as handle:
        handle.write(''.join(relative + '\n' for relative in relatives))
    return path


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


def backup_relative_dir(path):
    """<name>/<day>/<time>-<method> of a backup directory's path (the catalog's, or already relative);
    CopyError when it is not named like one."""
    normalized = os.path.normpath(str(path or ''))
    parts = normalized.split('/')
    if len(parts) < 3 or parse_backup_dir(normalized) is None or not _NAME.match(parts[-3]) \
            or parts[-3] in ('.', '..'):
        raise CopyError('backup %r is not a backup directory (<dest>/<name>/<day>/<time>-<method>)' % str(path)[:200])
    return '/'.join(parts[-3:])


def _load_json(path):
    try:
        with open(path) as handle:
            document = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CopyError('cannot read %s fetched from the repository: %s' % (os.path.basename(path), exc))
    if not isinstance(document, dict):
        raise CopyError('%s fetched from the repository is not a manifest' % os.path.basename(path))
    return document


def _replay_files(names, start_file, manifests, stop_datetime):
    """The binlog files a replay from `start_file` needs, oldest first: the series from it on, each with its
    manifest, up to the first one that begins after `stop_datetime` (included: it shows the archive reaches
    that instant)."""
    base, first = binlog_number(start_file)
    numbered = sorted((binlog_number(name)[1], name) for name in names if name in manifests
                      and binlog_number(name) and binlog_number(name)[0] == base)
    chosen = []
    for number, name in numbered:
        if number < first:
            continue
        chosen.append(name)
        begins = parse_iso(manifests[name].get('first_event_at'))
        if stop_datetime is not None and begins is not None and begins > stop_datetime:
            break
    return chosen


def fetch(spec, backup, staging, sha256=None, binlogs=False, stop_datetime=None, now=None):
    """Download a backup (and with `binlogs` the archived binlogs its replay needs) from a repository into a
    new directory under `staging`: {'root', 'path' (the staged backup directory), 'binlog_dir', 'files', 'bytes',
    'swept' (stale directories of earlier fetches removed, sweep_staging)}.
    CopyError when something is missing or a file's SHA-256 is not its manifest's (the staged copy is
    removed then)."""
    relative = backup_relative_dir(backup)
    name = relative.split('/', 1)[0]
    target = repository(spec)
    if not os.path.isdir(staging):
        os.makedirs(staging, mode=0o700)
    swept = sweep_staging(staging, now=now)
    root = tempfile.mkdtemp(prefix=STAGED_PREFIX, dir=staging)
    try:
        fetched = _fetch_into(target, spec['name'], relative, name, root, sha256, binlogs, stop_datetime)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    fetched['swept'] = swept
    return fetched


def sweep_staging(staging, now=None):
    """Remove what fetches left behind in `staging` - a restore killed before its playbook removed its
    directory (SIGKILL skips that) - once untouched for STALE_SECONDS, far longer than a restore may run;
    the paths removed."""
    now = time.time() if now is None else now
    swept = []
    for entry in sorted(os.listdir(staging)):
        path = os.path.join(staging, entry)
        if entry.startswith(STAGED_PREFIX) and os.path.isdir(path) and not os.path.islink(path) \
                and now - os.lstat(path).st_mtime > STALE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)
            swept.append(path)
    return swept


def _fetch_into(target, repository_name, relative, name, root, sha256, binlogs, stop_datetime):
    binlog_dir = '%s/binlogs' % name
    error = target.download(['%s/manifest.json' % relative], root)
    if error or not os.path.isfile(os.path.join(root, relative, 'manifest.json')):
        raise CopyError('backup %s is not in repository %s%s' % (relative, repository_name, ': ' + error if error else ''))
    manifest = _load_json(os.path.join(root, relative, 'manifest.json'))
    archive = manifest.get('archive')
    if not isinstance(archive, str) or not ARCHIVE_NAME.match(archive):
        raise CopyError('the manifest of %s in repository %s names no archive file' % (relative, repository_name))
    if sha256 and manifest.get('sha256') != sha256:
        raise CopyError('the manifest of %s in repository %s says SHA-256 %s, the catalog %s: not the backup the '
                        'catalog recorded' % (relative, repository_name, manifest.get('sha256'), sha256))
    wanted, series = ['%s/%s' % (relative, archive)], []
    start_file = manifest.get('binlog_file')
    if binlogs and start_file and binlog_number(start_file):
        names, error = target.list(binlog_dir)
        if error:
            raise CopyError(error)
        jsons = ['%s/%s' % (binlog_dir, entry) for entry in names
                 if entry.endswith('.json') and binlog_number(entry[:-5]) and entry[:-5] in names]
        if jsons:
            error = target.download(jsons, root)
            if error:
                raise CopyError(error)
        manifests = {os.path.basename(path)[:-5]: _load_json(os.path.join(root, path)) for path in jsons}
        series = _replay_files(names, start_file, manifests, stop_datetime)
        wanted += ['%s/%s' % (binlog_dir, entry) for entry in series]
    error = target.download(wanted, root)
    if error:
        raise CopyError(error)
    total = 0
    checks = [('%s/%s' % (relative, archive), manifest.get('sha256'))]
    checks += [('%s/%s' % (binlog_dir, entry), manifests[entry].get('sha256')) for entry in series]
    for path, expected in checks:
        local = os.path.join(root, path)
        if not os.path.isfile(local):
            raise CopyError('%s did not arrive from repository %s' % (path, repository_name))
        digest, size = sha256_of(local)
        if digest != expected:
            raise CopyError('%s from repository %s has SHA-256 %s, its manifest says %s: the copy is damaged'
                            % (path, repository_name, digest, expected))
        total += size
    return dict(root=root, path=os.path.join(root, relative), binlog_dir=os.path.join(root, binlog_dir),
                files=[path for path, _expected in checks], bytes=total)
