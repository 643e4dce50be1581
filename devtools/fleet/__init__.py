"""A local fleet of real MariaDB servers for the tests and the demo (see README.md)."""

from .harness import INSTANCES, Fleet, FleetError, Instance
from .seed import LIMITED_PASSWORD, LIMITED_USER, MONITOR_GRANTS, MONITOR_PASSWORD, MONITOR_USER, SCHEMAS

__all__ = ['Fleet', 'FleetError', 'Instance', 'INSTANCES', 'MONITOR_USER', 'MONITOR_PASSWORD', 'MONITOR_GRANTS',
           'LIMITED_USER', 'LIMITED_PASSWORD', 'SCHEMAS']
