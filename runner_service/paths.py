"""Where dbfleet's own files are: the repository root holds the collection, playbooks and inventories."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
