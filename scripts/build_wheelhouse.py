"""Build the wheelhouse playbooks/prepare_hosts.yml installs database hosts from.

Namespace and production database hosts may reach nothing but their own network, so everything
their virtualenv needs is gathered here, on the controller (which reaches the package index):

- a wheel of this checkout (`pip wheel --no-deps`, built from a copy of the distribution's own
  files so the checkout gets no build/ or *.egg-info);
- the wheels of what `dbfleet[agent]` and PyMySQL depend on, at the versions requirements.txt
  pins (`pip download --only-binary :all:` with requirements.txt as constraints), for this
  Python: the hosts must run the same Python minor version on the same platform (Debian 12's
  3.11 on x86_64 for the namespace fleet).

The result, in --out (default var/wheelhouse):
    *.whl              every wheel the hosts install
    requirements.txt   name==version of each, `dbfleet[agent]==X` first: what the hosts install
    wheelhouse.json    the dbfleet wheel's file name and sha256, and the fingerprints below
    wheelhouse.tar     all of the above in one file: what the playbook copies (one transfer and one
                       checksum per host, where a file per wheel took a minute over four hosts)

A second run is quick: the dbfleet wheel is rebuilt only when the files it is built from changed
(their sha256), the dependencies downloaded again only when requirements.txt or the dbfleet wheel's
metadata changed. Prints one line: `wheelhouse DIR unchanged` or `wheelhouse DIR updated: ...`.

    python scripts/build_wheelhouse.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the dbfleet wheel is built from: the distribution's own files, nothing else of the checkout.
WHEEL_SOURCES = ('pyproject.toml', 'README.md', 'dbfleet', 'runner_service')
# What the hosts install besides the dbfleet wheel's agent extra (which brings the base and `dbfleet
# cron`): PyMySQL, named on its own since the modules need it whatever the base's dependencies become.
OTHER_REQUIREMENTS = ('PyMySQL',)
MANIFEST = 'wheelhouse.json'
ARCHIVE = 'wheelhouse.tar'


def fingerprint(paths) -> str:
    """sha256 over the names and contents of the files under `paths` (caches and bytecode left out)."""
    digest = hashlib.sha256()
    for top in paths:
        top = Path(top)
        files = sorted(path for path in (top.rglob('*') if top.is_dir() else [top])
                       if path.is_file() and '__pycache__' not in path.parts and path.suffix != '.pyc')
        for path in files:
            digest.update(str(path.relative_to(REPO) if path.is_relative_to(REPO) else path).encode() + b'\0')
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pip(*args, cwd=None):
    completed = subprocess.run([sys.executable, '-m', 'pip', *map(str, args)], capture_output=True, text=True,
                               cwd=cwd)
    if completed.returncode != 0:
        sys.exit('build_wheelhouse: pip %s failed:\n%s' % (args[0], (completed.stderr or completed.stdout)[-4000:]))
    return completed.stdout


def build_dbfleet_wheel(out: Path) -> Path:
    """A wheel of this checkout into `out`; the previous dbfleet wheels there are removed."""
    with tempfile.TemporaryDirectory(prefix='dbfleet-wheel-') as work:
        source = Path(work) / 'source'
        source.mkdir()
        for name in WHEEL_SOURCES:
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copy2(REPO / name, source / name)
        built_dir = Path(work) / 'wheel'
        pip('wheel', '-q', '--no-deps', '-w', built_dir, source)
        (built,) = built_dir.glob('dbfleet-*.whl')
        for old in out.glob('dbfleet-*.whl'):
            old.unlink()
        return Path(shutil.copy2(built, out / built.name))


def wheel_metadata(wheel: Path) -> str:
    """The wheel's METADATA: its dependencies, whose change means downloading again."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [item for item in archive.namelist() if item.endswith('.dist-info/METADATA')]
        return archive.read(name).decode()


def download_dependencies(out: Path, wheel: Path):
    """The wheels of what the dbfleet wheel's agent extra and PyMySQL need, pinned by requirements.txt.
    Wheels only: a host has no compiler, and an sdist would be built there."""
    for old in out.glob('*.whl'):
        if old != wheel:
            old.unlink()
    pip('download', '-q', '--only-binary', ':all:', '-c', REPO / 'requirements.txt', '-d', out,
        '%s[agent]' % wheel, *OTHER_REQUIREMENTS)


def distribution(wheel: Path) -> tuple[str, str]:
    """(name, version) from a wheel's file name (PEP 427: name-version-...)."""
    name, version = wheel.name.split('-')[:2]
    return name, version


def write_requirements(out: Path, wheel: Path):
    """`dbfleet[agent]==X` and name==version of every other wheel: the hosts install exactly these."""
    lines = ['dbfleet[agent]==%s' % distribution(wheel)[1]]
    for other in sorted(out.glob('*.whl'), key=lambda path: path.name.lower()):
        if other != wheel:
            name, version = distribution(other)
            lines.append('%s==%s' % (re.sub(r'[-_.]+', '-', name).lower(), version))
    (out / 'requirements.txt').write_text('# Written by scripts/build_wheelhouse.py: what the hosts install '
                                          '(pip install --no-index --find-links).\n' + '\n'.join(lines) + '\n')


def write_archive(out: Path):
    """wheelhouse.tar of the wheels, requirements.txt and the manifest, in name order."""
    members = sorted(out.glob('*.whl')) + [out / 'requirements.txt', out / MANIFEST]
    temporary = out / ('.%s.partial' % ARCHIVE)
    with tarfile.open(temporary, 'w', format=tarfile.PAX_FORMAT) as archive:
        for path in members:
            info = archive.gettarinfo(path, arcname=path.name)
            info.uid = info.gid = 0
            info.uname = info.gname = 'root'
            info.mode = 0o644
            with open(path, 'rb') as handle:
                archive.addfile(info, handle)
    temporary.replace(out / ARCHIVE)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=REPO / 'var' / 'wheelhouse', help='the wheelhouse directory')
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = {}
    updated = []

    source = fingerprint(REPO / name for name in WHEEL_SOURCES)
    wheel = out / manifest.get('dbfleet_wheel', '-')
    if manifest.get('source') != source or not wheel.is_file() or sha256_of(wheel) != manifest.get('dbfleet_sha256'):
        wheel = build_dbfleet_wheel(out)
        updated.append(wheel.name)

    dependencies = hashlib.sha256((REPO / 'requirements.txt').read_bytes() + wheel_metadata(wheel).encode()
                                  + repr(OTHER_REQUIREMENTS).encode() + ('%d.%d' % sys.version_info[:2]).encode()).hexdigest()
    if manifest.get('dependencies') != dependencies or not (out / 'requirements.txt').is_file():
        download_dependencies(out, wheel)
        write_requirements(out, wheel)
        updated.append('%d dependencies' % (len(list(out.glob('*.whl'))) - 1))

    if updated or not (out / ARCHIVE).is_file():
        manifest = dict(dbfleet_wheel=wheel.name, dbfleet_sha256=sha256_of(wheel), source=source,
                        dependencies=dependencies, python='%d.%d' % sys.version_info[:2])
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + '\n')
        write_archive(out)
        updated.append(ARCHIVE)
        print('wheelhouse %s updated: %s' % (out, ', '.join(updated)))
    else:
        print('wheelhouse %s unchanged' % out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
