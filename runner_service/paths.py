"""Where dbfleet finds its project: playbooks, inventories and the collection."""

from __future__ import annotations

import os
from pathlib import Path

# The repository root holds the collection, its playbooks and inventories.
REPO_ROOT = Path(__file__).resolve().parent.parent


def project_dir() -> Path:
    """The playbook root (DBFLEET_PROJECT_DIR, default the repository)."""
    return Path(os.environ.get('DBFLEET_PROJECT_DIR') or REPO_ROOT).resolve()


def collections_dir() -> Path:
    return REPO_ROOT / 'collections'
