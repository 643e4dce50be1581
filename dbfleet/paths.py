"""Where dbfleet's own files are: the repository root holds the collection, playbooks and inventories."""

from __future__ import annotations

import os
import stat
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def private_directory(path: Path, tighten_existing: bool = True) -> Path:
    """`path` made (with its missing parents) 0700: what dbfleet writes there (job runs, the
    secret key, the store) is for dbfleet's own user only. An existing `path` is tightened too
    (unless `tighten_existing` is False), when it is this user's and not a shared one (sticky)."""
    path = Path(path)
    missing = [parent for parent in [path, *path.parents] if not parent.exists()]
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    tighten = missing + ([path] if tighten_existing and path not in missing else [])
    for directory in tighten:
        try:
            status = directory.stat()
            if status.st_uid == os.geteuid() and not status.st_mode & stat.S_ISVTX:
                os.chmod(directory, 0o700)  # mkdir's mode passes through the umask
        except OSError:
            pass
    return path
