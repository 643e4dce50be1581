"""Inventory group names made from tags: the one rule shared by the fleet inventory plugin and the
fleet_tags action, so a host lands in the same group whichever of them put it there."""

from __future__ import annotations

# Ansible group names are Python identifiers in spirit; tag names may also hold - . : (and
# manual tags anything), which become _.
_UNSAFE = str.maketrans({character: '_' for character in ' -.:/@'})


def tag_group(prefix: str, tag: str) -> str:
    return prefix + tag.translate(_UNSAFE)
