"""Hosts: the listing (tag expression, text search, paging by name), one host, its profile, and the
edits (attributes, address, port; delete, which keeps its job history and tag trail)."""

from __future__ import annotations

import json
import re

from dbfleet.profiles import host_profile
from dbfleet.store import Store, UnknownHost
from dbfleet.tags import TagExpressionError, parse_tag_expression
from runner_service.errors import BadRequest, NotFound, Unprocessable
from runner_service.fleet.schemas import HOST_NAME_PATTERN, HostUpdate
from runner_service.schedules.provenance import crontab_mode

# What a listing shows of each host's latest facts.
LISTED_FACTS = ('server.version.full', 'replication.role', 'schemas.totals.total_bytes')
# How much of a host's recent history its profile shows.
RECENT = 10


def unknown_host(name: str) -> NotFound:
    return NotFound('unknown host %r: `dbfleet hosts list` (GET /api/v1/hosts) shows the hosts' % name[:100])


def matcher(tags: str | None):
    """The parsed tag expression (None: every host); BadRequest naming where it is wrong."""
    if tags is None:
        return None
    try:
        return parse_tag_expression(tags)
    except TagExpressionError as exc:
        raise BadRequest('bad tag expression: %s' % str(exc).splitlines()[0]) from None


def _contains(record: dict, text: str) -> bool:
    """Whether `text` (lower case) is in the host's name, address or attributes (keys and values)."""
    haystack = [record['name'], record['address'] or '']
    haystack += ['%s=%s' % (key, value if isinstance(value, str) else json.dumps(value, default=str))
                 for key, value in record['attributes'].items()]
    return any(text in item.lower() for item in haystack)


class HostService:
    def __init__(self, store: Store):
        self.store = store

    def list(self, tags: str | None = None, q: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> dict:
        """{'hosts': [...], 'next_cursor'}: hosts by name, those matching the tag expression `tags`
        and containing `q`, after the name `cursor`; at most `limit` (None: all)."""
        expression = matcher(tags)
        text = q.lower() if q else None
        records = []
        for record in self.store.hosts.inventory(fact_paths=LISTED_FACTS):
            if cursor is not None and record['name'] <= cursor:
                continue
            if expression is not None and not expression.matches(record['tags']):
                continue
            if text is not None and not _contains(record, text):
                continue
            records.append(record)
            if limit is not None and len(records) > limit:
                break
        more = limit is not None and len(records) > limit
        records = records[:limit] if limit is not None else records
        return {'hosts': records, 'next_cursor': records[-1]['name'] if more else None}

    def get(self, name: str) -> dict:
        host = self.store.hosts.get(name)
        if host is None:
            raise unknown_host(name)
        return dict(host, tags=sorted(self.store.tags.of_host(name)))

    def profile(self, name: str) -> dict:
        """The database's page: facts summary, tags by dimension with evidence, tag history, recent
        jobs and host runs, backups, and its crontab entries bridged onto dbfleet."""
        try:
            profile = host_profile(self.store, name)
        except UnknownHost:
            raise unknown_host(name) from None
        profile['host'] = dict(profile['host'], tags=sorted(tag['name'] for tags in profile['tags'].values()
                                                            for tag in tags))
        profile['jobs'] = self.store.jobs.of_host(name, limit=RECENT)
        profile['runs'] = self.store.jobs.runs_of_host(name, limit=RECENT)
        profile['backups'] = self.store.backups.catalog(host=name, limit=RECENT)['backups']
        profile['cron_entries'] = [
            dict(schedule_id=schedule['id'], name=schedule['name'], mode=crontab_mode(schedule),
                 line=schedule['source']['line'], expression=schedule['expression'], timezone=schedule['timezone'],
                 paused=schedule['paused'], next_fire_at=schedule['next_fire_at'])
            for schedule in self.store.schedules.list(source_host=name) if crontab_mode(schedule)]
        return profile

    def update(self, name: str, change: HostUpdate, actor: str) -> dict:
        """Create the host or change it (HostUpdate's rules are the API's and the CLI's)."""
        if not re.fullmatch(HOST_NAME_PATTERN, name):
            raise Unprocessable('host name %r: at most 255 characters, without blanks, NUL, / or \\' % name[:100])
        try:
            self.store.hosts.upsert(name, address=change.address, port=change.port,
                                    attributes=change.attributes or None)
        except ValueError as exc:
            raise Unprocessable(str(exc)[:300]) from None
        detail = {field: value for field, value in (('address', change.address), ('port', change.port),
                                                    ('attributes', change.attributes)) if value}
        self.store.audit.record(actor, 'host.update', name, detail or None)
        return self.get(name)

    def delete(self, name: str, actor: str) -> dict:
        """Remove a host with its facts and tags; its jobs, backups, tag trail and an audit entry
        `host.delete` (with the tags it had) stay."""
        if self.store.hosts.get(name) is None:
            raise unknown_host(name)
        tags = sorted(self.store.tags.of_host(name))
        if not self.store.hosts.delete(name, who=actor):
            raise unknown_host(name)
        self.store.audit.record(actor, 'host.delete', name, {'tags': tags})
        return {'name': name, 'tags': tags}
