"""A database's profile: everything dbfleet knows about one host, on one page."""

from __future__ import annotations

from dbfleet.store import UnknownHost

# (label, path in ansible_facts.mysql) shown in the facts summary of a profile.
SUMMARY_FACTS = (
    ('flavour', 'server.flavour'),
    ('version', 'server.version.full'),
    ('role', 'replication.role'),
    ('lag seconds', 'replication.lag_seconds'),
    ('read only', 'server.read_only'),
    ('data bytes', 'schemas.totals.total_bytes'),
    ('schemas', 'schemas.totals.schemas'),
    ('tables', 'schemas.totals.tables'),
    ('mysqld uptime seconds', 'server.uptime_seconds'),
    ('OS uptime seconds', 'host.uptime_seconds'),
    ('buffer pool hit ratio', 'status.derived.buffer_pool_hit_ratio'),
    ('accounts without password', 'users.without_password_count'),
)


def dig(data, path: str):
    for part in path.split('.'):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def host_profile(store, name: str, history: int = 20) -> dict:
    host = store.hosts.get(name)
    if host is None:
        raise UnknownHost('no host named %s in the store' % name)
    latest = store.facts.latest(name)
    facts = latest['facts'] if latest else {}
    tags_by_dimension: dict[str, list] = {}
    for tag, info in sorted(store.tags.of_host(name).items()):
        tags_by_dimension.setdefault(info.get('dimension') or 'other', []).append(dict(info, name=tag))
    return dict(
        host=host,
        facts_collected_at=latest['collected_at'] if latest else None,
        facts=dict((label, dig(facts, path)) for label, path in SUMMARY_FACTS),
        fact_errors=facts.get('errors') or {},
        tags=tags_by_dimension,
        tag_history=store.tags.events(host=name, limit=history),
        snapshots=len(store.facts.history(name, limit=1000)),
        restore_drills=drill_summary(store, name),
    )


def drill_summary(store, name: str, recent: int = 5) -> dict | None:
    """{last_ok_at (last restore-tested), untested_since, first_backup_at, recent: its newest drills} of a host
    with a successful backup; None without one."""
    state = store.drills.state(name)
    if state is None:
        return None
    return dict(last_ok_at=state['last_ok_at'], untested_since=state['untested_since'],
                first_backup_at=state['first_backup_at'], recent=store.drills.list(host=name, limit=recent))


def human_bytes(value) -> str:
    """A byte count as people read it (1.5 GiB); '-' when unknown."""
    if value is None:
        return '-'
    value = float(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024
