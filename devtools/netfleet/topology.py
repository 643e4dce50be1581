"""Who is in the namespace fleet: hosts, their kinds and roles, addresses, names and boot ages.

Pure data, no side effects. A fleet is numbered (`fleet_id`, default 0) so that two of them (a
developer's and a CI clone's) can run on one machine side by side: fleet N lives on the bridge
`dbfNbr` with the private subnet 10.213.N.0/24 (the controller is 10.213.N.1), its hosts in the
network namespaces `dbfN-<host>`.
"""

from __future__ import annotations

import dataclasses
import re

SUBNET_PREFIX = '10.213'
DEFAULT_SPEC = 'db=4,worker=2,backup=1'
KINDS = ('db', 'worker', 'backup')
# The first address of each kind (db1 = .11, worker1 = .21, backup1 = .31); nine hosts per kind at most.
FIRST_OCTET = {'db': 11, 'worker': 21, 'backup': 31}
MAX_PER_KIND = 9
MAX_FLEET_ID = 250

DAY = 86400
# How long ago each database host "booted" (a time namespace per host moves its CLOCK_BOOTTIME,
# so /proc/stat's btime and /proc/uptime read as on a machine up that long): db3 has not been
# restarted in over 3 years, which the `not restarted in 3 years` rules must see for real.
DB_BOOT_AGES = (41 * DAY, 12 * DAY, 3 * 365 * DAY + 20 * DAY, 2 * DAY)
OTHER_BOOT_AGE = 1 * DAY


class TopologyError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Host:
    name: str          # inventory name and hostname: db1, worker2, backup1
    kind: str          # db | worker | backup
    number: int        # 1-based within its kind
    fleet_id: int
    boot_age: int      # seconds since this host's (virtual) boot

    @property
    def address(self) -> str:
        return '%s.%d.%d' % (SUBNET_PREFIX, self.fleet_id, FIRST_OCTET[self.kind] + self.number - 1)

    @property
    def namespace(self) -> str:
        return 'dbf%d-%s' % (self.fleet_id, self.name)

    @property
    def veth(self) -> str:
        """The host-side end of the host's veth pair (IFNAMSIZ: at most 15 characters)."""
        return 'dbf%d%s' % (self.fleet_id, self.name)

    @property
    def role(self) -> str | None:
        """Database hosts: db1 is the primary (binlog, GTID), db2 its replica, the rest standalone."""
        if self.kind != 'db':
            return None
        return {1: 'primary', 2: 'replica'}.get(self.number, 'standalone')

    @property
    def server_id(self) -> int:
        return 100 + FIRST_OCTET[self.kind] + self.number - 1


@dataclasses.dataclass(frozen=True)
class Topology:
    fleet_id: int
    hosts: tuple[Host, ...]

    @property
    def bridge(self) -> str:
        return 'dbf%dbr' % self.fleet_id

    @property
    def controller_address(self) -> str:
        return '%s.%d.1' % (SUBNET_PREFIX, self.fleet_id)

    @property
    def subnet(self) -> str:
        return '%s.%d.0/24' % (SUBNET_PREFIX, self.fleet_id)

    def of_kind(self, kind: str) -> list[Host]:
        return [host for host in self.hosts if host.kind == kind]

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise TopologyError('no host %r in the fleet (hosts: %s)' % (name, ', '.join(h.name for h in self.hosts)))

    @property
    def primary(self) -> Host | None:
        return next((host for host in self.hosts if host.role == 'primary'), None)

    @property
    def replica(self) -> Host | None:
        return next((host for host in self.hosts if host.role == 'replica'), None)


def parse_spec(spec: str | None) -> dict[str, int]:
    """'db=4,worker=2,backup=1' (also 'db=2' alone; kinds left out get 0). Empty means the default."""
    spec = (spec or '').strip() or DEFAULT_SPEC
    counts = dict.fromkeys(KINDS, 0)
    for part in re.split(r'[,\s]+', spec):
        if not part:
            continue
        match = re.fullmatch(r'(db|worker|backup)=(\d{1,2})', part)
        if not match:
            raise TopologyError('FLEET_HOSTS: %r is not KIND=COUNT with KIND one of %s (example: %s)'
                                % (part, ', '.join(KINDS), DEFAULT_SPEC))
        count = int(match.group(2))
        if count > MAX_PER_KIND:
            raise TopologyError('FLEET_HOSTS: at most %d hosts of a kind, not %d %s' % (MAX_PER_KIND, count, part))
        counts[match.group(1)] = count
    if not any(counts.values()):
        raise TopologyError('FLEET_HOSTS: %r asks for no host at all' % spec)
    return counts


def build(spec: str | None = None, fleet_id: int = 0) -> Topology:
    if not 0 <= fleet_id <= MAX_FLEET_ID:
        raise TopologyError('fleet id must be 0..%d, not %r' % (MAX_FLEET_ID, fleet_id))
    counts = parse_spec(spec)
    hosts = []
    for kind in KINDS:
        for number in range(1, counts[kind] + 1):
            if kind == 'db':
                age = DB_BOOT_AGES[number - 1] if number <= len(DB_BOOT_AGES) else (number * 3) * DAY
            else:
                age = OTHER_BOOT_AGE
            hosts.append(Host('%s%d' % (kind, number), kind, number, fleet_id, age))
    return Topology(fleet_id, tuple(hosts))
