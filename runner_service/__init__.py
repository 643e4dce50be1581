"""dbfleet's controller: the service that runs fleet operations as queued Ansible jobs."""

from dbfleet import __version__

__all__ = ['__version__']
