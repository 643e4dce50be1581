"""`dbfleet store ...`: the store's schema migrations; and opened_store, for the commands that read
and write the store directly (hosts, tags, tokens, audit) rather than through the API."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Optional

import typer

from runner_service.cli.options import STORE_OPTION
from runner_service.cli.output import fail

store_app = typer.Typer(help='The store: migrations and retention.', no_args_is_help=True)


@contextmanager
def opened_store(url: str | None):
    from dbfleet.store import StoreError, open_store
    try:
        store = open_store(url)
    except StoreError as exc:
        fail(str(exc))
    try:
        yield store
    except StoreError as exc:
        fail(str(exc))
    finally:
        store.close()


@store_app.command('upgrade')
def store_upgrade(store: Optional[str] = STORE_OPTION) -> None:
    """Create or migrate the store to this dbfleet's schema."""
    from dbfleet.settings import get_settings
    from dbfleet.store import StoreError, migrate
    url = store or get_settings().store_url
    try:
        before = migrate.current(url)
        migrate.upgrade(url)
        after = migrate.current(url)
    except StoreError as exc:
        fail(str(exc))
    typer.echo('store at revision %s (was %s)' % (after, before or 'empty'))


@store_app.command('current')
def store_current(store: Optional[str] = STORE_OPTION) -> None:
    """Show the store's schema revision and the one this dbfleet needs."""
    from dbfleet.settings import get_settings
    from dbfleet.store import StoreError, migrate
    url = store or get_settings().store_url
    try:
        current = migrate.current(url)
    except StoreError as exc:
        fail(str(exc))
    head = migrate.head()
    typer.echo('store revision %s, dbfleet needs %s%s' % (
        current or 'none (empty)', head, '' if current == head else ": run 'dbfleet store upgrade'"))


@store_app.command('prune-events')
def store_prune_events(older_than: str = typer.Option(..., '--older-than', help='Jobs that ended longer ago than '
                                                      'this (90d, 12h, 2w) lose their events: output and per-task '
                                                      'results; the jobs themselves stay.'),
                       store: Optional[str] = STORE_OPTION) -> None:
    """Delete the events of jobs that ended before a time, in small batches (jobs running meanwhile
    keep writing theirs). DBFLEET_KEEP_EVENTS_DAYS has the API do it every hour."""
    from dbfleet.clock import utcnow
    age = _older_than(older_than)
    with opened_store(store) as opened:
        jobs, events = opened.events.prune(utcnow() - age)
    typer.echo('pruned %d events of %d jobs that ended more than %s ago' % (events, jobs, older_than))


@store_app.command('prune-notifications')
def store_prune_notifications(older_than: str = typer.Option(..., '--older-than', help='Notifications stored longer '
                                                             'ago than this (90d, 12h, 2w) go, with their deliveries, '
                                                             'once every delivery is over.'),
                              store: Optional[str] = STORE_OPTION) -> None:
    """Delete old notifications and their deliveries (one still pending or being sent stays).
    DBFLEET_KEEP_NOTIFICATIONS_DAYS (90) has the API do it every hour."""
    from dbfleet.clock import utcnow
    age = _older_than(older_than)
    with opened_store(store) as opened:
        removed = opened.notifications.prune(utcnow() - age)
    typer.echo('pruned %d notifications stored more than %s ago' % (removed, older_than))


def _older_than(text: str):
    from dbfleet.durations import parse_duration
    try:
        age = parse_duration(text)
    except ValueError as exc:
        fail('--older-than: %s' % exc)
    if age.total_seconds() <= 0:
        fail('--older-than: give a duration longer than zero, such as 90d')
    return age
