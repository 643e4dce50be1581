"""How `dbfleet hosts|tags|backups` reach the fleet: through the API when DBFLEET_API_URL is set (and
--store is not), else the store directly, through the same services the API's routes call. Either
way a command gets the API's answer as JSON data (times as ISO text), so one rendering serves both."""

from __future__ import annotations

import os
from contextlib import contextmanager

import typer

from runner_service.cli.output import api_client, fail
from runner_service.cli.store import opened_store

# --store without DBFLEET_STORE_URL as its default: given, it wins over DBFLEET_API_URL.
DIRECT_STORE_OPTION = typer.Option(None, '--store', help='Work on this store directly (default: through the API '
                                   'when DBFLEET_API_URL is set, else DBFLEET_STORE_URL).')


def through_api(store: str | None) -> bool:
    return bool(os.environ.get('DBFLEET_API_URL')) and not store


@contextmanager
def fleet(store: str | None):
    """An ApiFleet or a StoreFleet; any refusal ends the command with one line (exit 2)."""
    if through_api(store):
        with api_client() as client:
            yield ApiFleet(client)
        return
    from runner_service.errors import ServiceError
    with opened_store(store) as opened:
        try:
            yield StoreFleet(opened)
        except ServiceError as exc:
            fail(exc.detail)


class ApiFleet:
    def __init__(self, client):
        self.client = client

    def hosts(self, tags: str | None, q: str | None) -> list[dict]:
        found, cursor = [], None
        while True:
            page = self.client.hosts(tags=tags, q=q, limit=1000, cursor=cursor)
            found.extend(page['hosts'])
            cursor = page['next_cursor']
            if cursor is None:
                return found

    def profile(self, name: str) -> dict:
        return self.client.host_profile(name)

    def set_host(self, name: str, change) -> dict:
        return self.client.put_host(name, change)

    def delete_host(self, name: str) -> dict:
        return self.client.delete_host(name)

    def tags(self) -> list[dict]:
        return self.client.tags()

    def change_tags(self, request, state: str) -> dict:
        return self.client.change_tags(request, state)

    def backups(self, **filters) -> dict:
        return self.client.backups(**{name: value.isoformat() if hasattr(value, 'isoformat') else value
                                      for name, value in filters.items()})

    def backup_windows(self, host: str | None = None) -> dict:
        return self.client.backup_windows(host=host)

    def backup(self, backup_id: int) -> dict:
        return self.client.backup(backup_id)

    def keep_backup(self, backup_id: int, pinned: bool) -> dict:
        return self.client.keep_backup(backup_id, pinned)


class StoreFleet:
    def __init__(self, store):
        import getpass
        self.store = store
        self.actor = 'cli:%s' % getpass.getuser()

    def hosts(self, tags: str | None, q: str | None) -> list[dict]:
        from runner_service.fleet.hosts import HostService
        from runner_service.fleet.schemas import HostOut
        return as_answer(list[HostOut], HostService(self.store).list(tags=tags, q=q)['hosts'])

    def profile(self, name: str) -> dict:
        from runner_service.fleet.hosts import HostService
        from runner_service.fleet.schemas import Profile
        return as_answer(Profile, HostService(self.store).profile(name))

    def set_host(self, name: str, change) -> dict:
        from runner_service.fleet.hosts import HostService
        from runner_service.fleet.schemas import HostRecord
        return as_answer(HostRecord, HostService(self.store).update(name, change, self.actor))

    def delete_host(self, name: str) -> dict:
        from runner_service.fleet.hosts import HostService
        from runner_service.fleet.schemas import HostDeleted
        return as_answer(HostDeleted, HostService(self.store).delete(name, self.actor))

    def tags(self) -> list[dict]:
        from runner_service.fleet.schemas import TagOut
        from runner_service.fleet.tags import TagService
        return as_answer(list[TagOut], TagService(self.store).list())

    def change_tags(self, request, state: str) -> dict:
        from runner_service.fleet.schemas import TagChange
        from runner_service.fleet.tags import TagService
        service = TagService(self.store)
        changed = service.add(request, self.actor) if state == 'present' else service.remove(request, self.actor)
        return as_answer(TagChange, changed)

    def backups(self, **filters) -> dict:
        from runner_service.fleet.backups import BackupCatalog
        from runner_service.fleet.schemas import BackupPage
        return as_answer(BackupPage, BackupCatalog(self.store).page(**filters))

    def backup_windows(self, host: str | None = None) -> dict:
        from runner_service.fleet.backups import BackupCatalog
        from runner_service.fleet.schemas import WindowList
        return as_answer(WindowList, BackupCatalog(self.store).windows(host=host))

    def backup(self, backup_id: int) -> dict:
        from runner_service.fleet.backups import BackupCatalog
        from runner_service.fleet.schemas import BackupOut
        return as_answer(BackupOut, BackupCatalog(self.store).get(backup_id))

    def keep_backup(self, backup_id: int, pinned: bool) -> dict:
        from runner_service.fleet.backups import BackupCatalog
        from runner_service.fleet.schemas import BackupOut
        return as_answer(BackupOut, BackupCatalog(self.store).keep(backup_id, pinned, self.actor))


def as_answer(model, data):
    """`data` as the API would have answered it: checked by its response model, dumped as JSON data."""
    from pydantic import TypeAdapter
    adapter = TypeAdapter(model)
    return adapter.dump_python(adapter.validate_python(data), mode='json')


def request(model, **fields):
    """A request body the API would accept, built from command-line values; a refused one ends
    the command with one line naming the field."""
    from pydantic import ValidationError
    try:
        return model(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = '.'.join(str(part) for part in error['loc']) or 'value'
        fail('%s: %s' % (where, error['msg']))
