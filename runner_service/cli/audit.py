"""`dbfleet audit`: who did what, through the API or straight from the store."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.text import Text

from runner_service.cli.options import JSON_OPTION
from runner_service.cli.output import api_answer, console, fail, print_json, print_wide, table, when
from runner_service.cli.store import opened_store
from runner_service.cli.time_points import point_in_time


def audit(actor: Optional[str] = typer.Option(None, '--actor', help='Only what this token (or cli:USER) did.'),
          action: Optional[str] = typer.Option(None, '--action', help='An action (launch, token.create) or a '
                                               'prefix ending in a dot (token., schedule., cron.).'),
          target: Optional[str] = typer.Option(None, '--target', help='A job id or a name.'),
          since: Optional[str] = typer.Option(None, '--since', help='From this time: 7d (ago), 2026-12-01.'),
          until: Optional[str] = typer.Option(None, '--until', help='Before this time: 1d (ago), 2026-12-31.'),
          limit: int = typer.Option(50, '--limit', min=1, max=1000, help='At most this many, newest first.'),
          cursor: Optional[int] = typer.Option(None, '--cursor', min=1, help='Older than this entry id (paging).'),
          as_json: bool = JSON_OPTION,
          store: Optional[str] = typer.Option(None, '--store', help='Read this store directly (default without '
                                              'DBFLEET_API_URL: DBFLEET_STORE_URL).')) -> None:
    """Who created, changed, deleted, launched and canceled what, newest first (admins only).
    Through the API when DBFLEET_API_URL is set (and --store is not), else from the store."""
    import os
    filters = dict(actor=actor, action=action, target=target, since=point_in_time(since, '--since'),
                   until=point_in_time(until, '--until'), limit=limit, cursor=cursor)
    if os.environ.get('DBFLEET_API_URL') and not store:
        page = api_answer(lambda client: client.audit(**dict(
            filters, since=filters['since'] and filters['since'].isoformat(),
            until=filters['until'] and filters['until'].isoformat())), False)
        entries, next_cursor = page['entries'], page['next_cursor']
    else:
        cursor_id = filters.pop('cursor')
        with opened_store(store) as opened:
            try:
                entries = opened.audit.list(before=cursor_id, **filters)
            except ValueError as exc:
                fail(str(exc))
        next_cursor = entries[-1]['id'] if len(entries) == limit else None
    if as_json:
        print_json({'entries': entries, 'next_cursor': next_cursor})
        return
    rows = table('id', 'at', 'actor', 'action', 'target', 'detail')
    for entry in entries:
        rows.add_row(str(entry['id']), when(entry['at']), Text(entry['actor']), Text(entry['action']),
                     Text(entry['target']), Text(json.dumps(entry['detail'], sort_keys=True, default=str)
                                                 if entry['detail'] is not None else '-'))
    print_wide(rows)
    if next_cursor is not None:
        console.print('older entries: --cursor %d' % next_cursor)

