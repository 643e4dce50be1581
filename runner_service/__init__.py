"""dbfleet's controller: the service that runs fleet operations as queued Ansible jobs."""

__version__ = '0.1.0'
