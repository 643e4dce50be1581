"""The templates dbfleet seeds itself: `restore` (dbfleet backups restore) and `drill` (dbfleet backups drill).

Each is made from its definition the first time it is needed: a restore or drill request, or an admin's
edit. An edit is how a fleet that is not the store's local hosts gets them - an SSH inventory and the
credentials their runs need (the fleet's key, the age identity of encrypted backups):

    dbfleet templates edit restore -i inventories/ssh_fleet.yml --credential fleet-key --credential backup-key

so editing one that was never used seeds it first, then changes it.
"""

from __future__ import annotations

from runner_service.fleet.drills import DrillService
from runner_service.fleet.restores import RestoreService
from runner_service.runtime import Runtime

SEEDED = {'restore': RestoreService, 'drill': DrillService}


def seed_if_builtin(runtime: Runtime, name: str, actor: str) -> None:
    """Seed the template `name` when it is one of dbfleet's own and missing; nothing otherwise."""
    service = SEEDED.get(name)
    if service is not None:
        service(runtime).template(actor)
