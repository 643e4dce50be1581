"""python -m devtools.fleet start|status|stop  - run from the repository root."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pymysql

from .harness import Fleet, FleetError

COLUMNS = ('INSTANCE', 'STATE', 'PID', 'PORT', 'VERSION', 'RO', 'TLS', 'SCHEMAS', 'REPLICATION')


def _replication(info):
    if not info['running']:
        return '-'
    if info['role'] == 'replica':
        channel = info.get('replication')
        if not channel:
            return 'not configured'
        text = 'io=%s sql=%s behind=%s' % (channel['io_running'], channel['sql_running'],
                                            channel['seconds_behind_master'])
        return text + (' error: %s' % channel['last_error'] if channel['last_error'] else '')
    return 'gtid %s' % info['gtid_binlog_pos'] if info['gtid_binlog_pos'] else '-'


def format_table(status: dict, names) -> str:
    rows = [COLUMNS]
    for name in names:
        info = status[name]
        on_off = {True: 'ON', False: 'OFF', None: '-'}
        rows.append((name, info['state'], str(info['pid'] or '-'), str(info['port']),
                     (info['version'] or '-').split('-')[0], on_off[info['read_only']], on_off[info['tls']],
                     '-' if info['schemas'] is None else str(info['schemas']), _replication(info)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS) - 1)]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)) + '  ' + row[-1]
                     for row in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m devtools.fleet',
                                     description='Start, inspect or stop the local MariaDB fleet.')
    parser.add_argument('command', choices=('start', 'status', 'stop'))
    parser.add_argument('--json', action='store_true', help='print the status as JSON')
    parser.add_argument('--base', type=Path, help='fleet directory (default: <repo>/var/fleet)')
    args = parser.parse_args(argv)

    fleet = Fleet(args.base)
    try:
        if args.command == 'start':
            result = fleet.start()
        elif args.command == 'status':
            result = fleet.status()
        else:
            fleet.stop()
            result = fleet.status()
    except (FleetError, pymysql.MySQLError, OSError) as exc:
        print('fleet %s: error: %s' % (args.command, ' '.join(str(exc).split())), file=sys.stderr)
        return 1

    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(format_table(result, fleet.instances))
    if args.command == 'start':
        done = ['%s: %s' % (key, ', '.join(result[key])) for key in ('started', 'initialized', 'seeded', 'repaired')
                if result[key]]
        print('%s (%.1f s)' % ('; '.join(done) or 'already running', result['seconds']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
