"""What every dbfleet process works with: settings, the store, the job queue, the secret box.

One `Runtime` per process (the API, each worker, the reconciler); a forked RQ work horse
gets its own, made from its parent's (`Runtime.forked`): database connections do not
survive a fork, but the store's engine does, its schema check done (and the ORM's mappers
configured, see processes.run_worker), so a job does not pay for them again.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from functools import cached_property

from dbfleet.settings import Settings, get_settings
from dbfleet.store import Store, open_store
from runner_service import redis_urls
from runner_service.job_queue import JobQueue, connect
from runner_service.secret_box import SecretBox, load_key


@dataclass
class Runtime:
    settings: Settings = field(default_factory=get_settings)
    store_override: Store | None = None

    @cached_property
    def store(self) -> Store:
        return self.store_override or open_store(self.settings.store_url)

    @cached_property
    def redis(self):
        return connect(self.settings.redis_url)

    def async_redis(self):
        """An asyncio client (the API's live streams), one per Runtime."""
        if 'async_client' not in self.__dict__:
            self.__dict__['async_client'] = redis_urls.connect_async(self.settings.redis_url, socket_connect_timeout=5)
        return self.__dict__['async_client']

    @cached_property
    def queue(self) -> JobQueue:
        return JobQueue(self.redis)

    @cached_property
    def secrets(self) -> SecretBox:
        return SecretBox(load_key(self.settings.secret_key, self.settings.secret_key_file))

    @property
    def hostname(self) -> str:
        return socket.gethostname()

    def forked(self) -> 'Runtime':
        """The Runtime of a process forked from this one's: the same settings, and the same store
        engine with none of this process's connections (the child opens its own), so the store is
        not opened, checked against its schema revision and warmed up again. Redis clients and the
        secret key are made anew (cheap: redis-py connects on first use)."""
        child = Runtime(settings=self.settings, store_override=self.store_override)
        if 'store' in self.__dict__ and self.store_override is None:
            child.__dict__['store'] = self.__dict__['store'].forked()
        return child

    def close(self) -> None:
        if 'store' in self.__dict__ and self.store_override is None:
            self.store.close()
        if 'redis' in self.__dict__:
            self.redis.close()


_process_runtime: tuple[int, Runtime] | None = None


def process_runtime() -> Runtime:
    """This process's Runtime, created on first use; after a fork, made from the parent's."""
    global _process_runtime
    pid = os.getpid()
    if _process_runtime is None:
        _process_runtime = (pid, Runtime())
    elif _process_runtime[0] != pid:
        _process_runtime = (pid, _process_runtime[1].forked())
    return _process_runtime[1]
