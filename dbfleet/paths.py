"""Where dbfleet's files are. From a checkout (an editable install: `make demo`, `make test`)
the repository holds everything: the collection, playbooks, inventories and var/. An installed
package keeps its state in a state directory and reaches the collection through Ansible."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Mapping


def _checkout() -> Path | None:
    root = Path(__file__).resolve().parent.parent
    # Beside an installed package (site-packages) there is no galaxy.yml nor playbooks/.
    return root if (root / 'galaxy.yml').is_file() and (root / 'playbooks').is_dir() else None


# The repository root when dbfleet runs from a checkout, else None: the one place that decides.
CHECKOUT: Path | None = _checkout()


def state_directory() -> Path:
    """The default var directory (DBFLEET_VAR_DIR overrides it through the settings): the
    checkout's var/, else /var/lib/dbfleet for root, else $XDG_STATE_HOME/dbfleet."""
    if CHECKOUT is not None:
        return CHECKOUT / 'var'
    if os.geteuid() == 0:
        return Path('/var/lib/dbfleet')
    return Path(os.environ.get('XDG_STATE_HOME') or Path.home() / '.local' / 'state') / 'dbfleet'


def config_file(environ: Mapping[str, str] | None = None) -> Path:
    """DBFLEET_* settings for processes started without the environment, such as crontab's
    (`dbfleet cron exec`, the watchdog): DBFLEET_CONFIG, default /etc/dbfleet/dbfleet.env.
    The environment wins over the file."""
    environ = os.environ if environ is None else environ
    return Path(environ.get('DBFLEET_CONFIG') or '/etc/dbfleet/dbfleet.env')


def checkout_collections() -> Path | None:
    """The collections path under which the checkout is the dbfleet.mysql collection (a link),
    or None when installed: Ansible then finds the installed collection on its own paths."""
    return CHECKOUT / 'collections' if CHECKOUT is not None else None


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
