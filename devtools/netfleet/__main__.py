"""python -m devtools.netfleet start|status|stop|inventory  - run from the repository root, as root.

FLEET_HOSTS (default db=4,worker=2,backup=1) says which hosts, NETFLEET_ID (default 0) which fleet.
"""

from __future__ import annotations

import argparse
import json
import sys

from .harness import NetFleet, NetFleetError
from .namespaces import NamespaceError
from .topology import TopologyError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m devtools.netfleet',
                                     description='Start, inspect or stop the namespace fleet (hosts over SSH).')
    parser.add_argument('command', choices=('start', 'status', 'stop', 'inventory'))
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    try:
        fleet = NetFleet()
        if args.command == 'inventory':
            print(fleet.inventory(), end='')
            return 0
        if args.command == 'start':
            result = fleet.start()
        elif args.command == 'stop':
            fleet.stop()
            result = fleet.status()
            left = fleet.leftovers()
            if left:
                print('netfleet stop: left behind: %s' % ', '.join(left), file=sys.stderr)
                return 1
        else:
            result = fleet.status()
    except (NetFleetError, NamespaceError, TopologyError, OSError) as exc:
        print('netfleet %s: error: %s' % (args.command, ' '.join(str(exc).split())), file=sys.stderr)
        return 2 if isinstance(exc, TopologyError) else 1
    summary = result.pop('_summary', None)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print('HOST     KIND    ROLE        ADDRESS        UP   SSHD MARIADB')
    for name, info in result.items():
        print('%-8s %-7s %-11s %-14s %-4s %-4s %s' % (name, info['kind'], info['role'] or '-', info['address'],
                                                      'yes' if info['running'] else 'no',
                                                      'yes' if info['sshd'] else 'no',
                                                      {True: 'yes', False: 'no'}.get(info.get('mariadb'), '-')))
    if summary:
        print('started: %s; seeded: %s (%.1f s); known_hosts: %s'
              % (', '.join(summary['started']) or 'none', ', '.join(summary['seeded']) or 'none',
                 summary['seconds'], fleet.known_hosts))
    return 0


if __name__ == '__main__':
    sys.exit(main())
