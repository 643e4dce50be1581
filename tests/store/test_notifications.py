"""store.notifications on SQLite and MariaDB: notifiers by name, a notification stored once per
key with its deliveries, a delivery claimed by one sender at a time (again once its claim
expired), attempts recorded only by the claim's holder, the watcher's cursor only moving forward."""

from __future__ import annotations

import datetime as dt

import pytest

from dbfleet.store import UnknownNotifier

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
LEASE = dt.timedelta(seconds=60)
DAY = dt.timedelta(days=1)


def test_notifiers_by_name(store):
    made = store.notifications.create_notifier('hook', 'webhook', {'url': 'http://h/'}, ['worker_lost'], 'sealed',
                                               created_by='admin')
    assert (made['name'], made['kind'], made['events'], made['sealed']) == ('hook', 'webhook', ['worker_lost'],
                                                                            'sealed')
    store.notifications.create_notifier('mail', 'email', {'smtp_host': 'h'}, [], None)
    assert [n['name'] for n in store.notifications.notifiers()] == ['hook', 'mail']
    with pytest.raises(ValueError, match='already exists'):
        store.notifications.create_notifier('hook', 'slack', {}, [], 's')
    with pytest.raises(ValueError, match='kind'):
        store.notifications.create_notifier('x', 'pager', {}, [], 's')
    assert store.notifications.delete_notifier('hook')['name'] == 'hook'
    with pytest.raises(UnknownNotifier):
        store.notifications.notifier('hook')


def test_a_notification_is_stored_once_and_each_delivery_sent_by_one_sender(store):
    first = store.notifications.record('job:1:failed', 'failed', 'subject', {'text': 't'}, ['a', 'b', 'a'], now=T0)
    assert store.notifications.record('job:1:failed', 'failed', 'subject', {'text': 't'}, ['a'], now=T0) is None
    [stored] = store.notifications.list()
    assert stored['id'] == first['id'] and [d['notifier'] for d in stored['deliveries']] == ['a', 'b']
    assert store.notifications.due(T0 - dt.timedelta(seconds=1)) == []
    due = store.notifications.due(T0)
    assert len(due) == 2
    mine = store.notifications.claim(due[0], 'sender-1', T0, LEASE)
    assert mine['notification']['key'] == 'job:1:failed'
    assert store.notifications.claim(due[0], 'sender-2', T0, LEASE) is None  # held
    assert store.notifications.due(T0) == [due[1]]
    assert store.notifications.attempted(due[0], 'sender-2', T0, None, None) is None  # not its claim
    retry_at = T0 + dt.timedelta(seconds=30)
    again = store.notifications.attempted(due[0], 'sender-1', T0, 'HTTP 500', retry_at)
    assert (again['status'], again['attempts'], again['next_attempt_at']) == ('pending', 1, retry_at)
    assert store.notifications.claim(due[0], 'sender-2', T0, LEASE) is None  # not due yet
    assert store.notifications.claim(due[0], 'sender-2', retry_at, LEASE) is not None
    # sender-2 dies mid-send: once its claim expired, another sender takes it over.
    assert store.notifications.claim(due[0], 'sender-3', retry_at + LEASE / 2, LEASE) is None
    assert store.notifications.claim(due[0], 'sender-3', retry_at + LEASE * 2, LEASE) is not None
    done = store.notifications.attempted(due[0], 'sender-3', retry_at + LEASE * 2, None, None)
    assert (done['status'], done['attempts']) == ('delivered', 2)
    assert [a['ok'] for a in done['attempt_log']] == [False, True]
    given_up = store.notifications.claim(due[1], 'sender-1', T0, LEASE)
    assert store.notifications.attempted(given_up['id'], 'sender-1', T0, 'refused', None)['status'] == 'failed'
    assert store.notifications.due(T0 + dt.timedelta(days=1)) == []


def test_a_silenced_notification_has_settled_deliveries_and_nothing_due(store):
    store.notifications.record('job:2:failed', 'failed', 's', {}, ['a'], silenced_by='patching', now=T0)
    [stored] = store.notifications.list(event='failed')
    assert stored['silenced_by'] == 'patching' and stored['deliveries'][0]['status'] == 'silenced'
    assert store.notifications.due(T0 + dt.timedelta(days=1)) == []


def test_the_cursor_only_moves_forward(store):
    assert store.notifications.cursor('job-ends') is None
    store.notifications.move_cursor('job-ends', T0)
    store.notifications.move_cursor('job-ends', T0 - dt.timedelta(hours=1))
    assert store.notifications.cursor('job-ends') == T0


def test_old_notifications_go_with_their_deliveries_once_every_delivery_is_over(store):
    day = dt.timedelta(days=1)
    old = store.notifications.record('job:3:failed', 'failed', 's', {}, ['a'], now=T0 - 100 * day)
    store.notifications.record('job:4:failed', 'failed', 's', {}, ['a'], silenced_by='patching', now=T0 - 100 * day)
    waiting = store.notifications.record('job:5:failed', 'failed', 's', {}, ['a', 'b'], now=T0 - 100 * day)
    store.notifications.record('job:6:failed', 'failed', 's', {}, ['a'], now=T0 - day)
    [delivery] = [d for d in store.notifications.list(limit=10) if d['id'] == old['id']][0]['deliveries']
    store.notifications.claim(delivery['id'], 'sender-1', T0, LEASE)
    store.notifications.attempted(delivery['id'], 'sender-1', T0, None, None)
    [first, second] = [d for d in store.notifications.list(limit=10) if d['id'] == waiting['id']][0]['deliveries']
    store.notifications.claim(first['id'], 'sender-1', T0, LEASE)
    store.notifications.attempted(first['id'], 'sender-1', T0, 'refused', None)  # failed for good; b still pending
    with pytest.raises(ValueError, match='batch'):
        store.notifications.prune(T0, batch=0)
    assert store.notifications.prune(T0 - 50 * day, batch=1) == 2  # delivered and silenced, one per batch
    assert sorted(n['key'] for n in store.notifications.list(limit=10)) == ['job:5:failed', 'job:6:failed']
    assert second['id'] in store.notifications.due(T0)  # the pending delivery is still sent
    store.notifications.claim(second['id'], 'sender-1', T0, LEASE)
    store.notifications.attempted(second['id'], 'sender-1', T0, None, None)
    assert store.notifications.prune(T0 - 50 * day) == 1
    assert [n['key'] for n in store.notifications.list(limit=10)] == ['job:6:failed']


def test_the_cli_prunes_notifications_by_age(store, store_url):
    from dbfleet.clock import utcnow
    from tests.helpers import ok, refused
    store.notifications.record('job:7:failed', 'failed', 's', {}, ['a'], silenced_by='w', now=utcnow() - 40 * DAY)
    store.notifications.record('job:8:failed', 'failed', 's', {}, ['a'], silenced_by='w', now=utcnow() - DAY)
    assert 'pruned 1 notifications stored more than 30d ago' in \
        ok(store_url, 'store', 'prune-notifications', '--older-than', '30d').stdout
    assert [n['key'] for n in store.notifications.list()] == ['job:8:failed']
    assert 'not a duration' in refused(store_url, 'store', 'prune-notifications', '--older-than', 'soon')
    assert 'longer than zero' in refused(store_url, 'store', 'prune-notifications', '--older-than', '0d')


def test_notifications_page_from_before_an_id(store):
    ids = [store.notifications.record('page:%d' % number, 'failed', 'n%d' % number, {}, [])['id']
           for number in range(5)]
    assert [n['subject'] for n in store.notifications.list(limit=2)] == ['n4', 'n3']
    assert [n['subject'] for n in store.notifications.list(limit=2, before=ids[3])] == ['n2', 'n1']
    assert store.notifications.list(before=ids[0]) == []
    for wrong in (0, -1, '3', True):
        with pytest.raises(ValueError, match='before'):
            store.notifications.list(before=wrong)
