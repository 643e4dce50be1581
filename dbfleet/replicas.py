"""The replicas of a host as the store knows them: the hosts whose latest facts show a replication
channel from that host's address and port. What `prefer: replica` backups try when the playbook
names no replicas (dbfleet.mysql.mysql_backup's action plugin); the module itself then checks each
one live (threads running, lag) before using it."""

from __future__ import annotations

import socket

CHANNELS = 'replication.channels'


def _same_host(one: str | None, other: str | None) -> bool:
    if not one or not other:
        return False
    if one.lower() == other.lower():
        return True
    try:  # a channel may name the primary by host name where the inventory has its address, or the reverse
        return bool({info[4][0] for info in socket.getaddrinfo(one, None)}
                    & {info[4][0] for info in socket.getaddrinfo(other, None)})
    except (OSError, UnicodeError):
        return False


def replicas_of(store, host: str) -> list[str]:
    """`address:port` of the replicas of `host`, least lagging first (unknown lag last); [] when the
    store does not know the host's address or any replica of it."""
    rows = store.hosts.inventory(fact_paths=[CHANNELS])
    me = next((row for row in rows if row['name'] == host), None)
    if me is None or not me['address']:
        return []
    port = me['port'] or 3306
    found = []
    for row in rows:
        if row['name'] == host or not row['address']:
            continue
        for channel in row['facts'].get(CHANNELS) or []:
            if int(channel.get('source_port') or 3306) == port and _same_host(channel.get('source_host'),
                                                                                 me['address']):
                lag = channel.get('seconds_behind')
                found.append((lag is None, lag or 0, '%s:%d' % (row['address'], row['port'] or 3306)))
                break
    return [candidate for _unknown, _lag, candidate in sorted(found)]
