"""Job templates in the store, on SQLite and MariaDB: create, read, list, update, delete; the job
a template launched keeps its name; a token may carry the templates it is limited to."""

from __future__ import annotations

import hashlib

import pytest

from dbfleet.clock import utcnow
from dbfleet.store import UnknownTemplate

DEFINITION = {'playbook': 'playbooks/inspect.yml', 'inventory': 'inventories/localhost.yml', 'allow_limit': True,
              'survey': [{'name': 'mode', 'type': 'choice', 'choices': ['full', 'incremental'], 'required': True}],
              'plan': {'lanes': 2, 'window_end_at': '06:00', 'window_timezone': 'Europe/Paris'}}


def test_create_read_list_update_delete(store):
    before = utcnow()
    created = store.templates.create('nightly-backup', DEFINITION, created_by='alice')
    assert created['name'] == 'nightly-backup' and created['definition'] == DEFINITION
    assert created['created_by'] == created['updated_by'] == 'alice'
    assert before <= created['created_at'] == created['updated_at'] <= utcnow()
    store.templates.create('inspect', {'playbook': 'playbooks/inspect.yml', 'tags': 'large and not maintenance'})
    assert [template['name'] for template in store.templates.list()] == ['inspect', 'nightly-backup']
    assert store.templates.get('nightly-backup') == created

    changed = store.templates.update('nightly-backup', dict(DEFINITION, forks=5), updated_by='bob')
    assert changed['definition']['forks'] == 5 and changed['updated_by'] == 'bob'
    assert changed['created_by'] == 'alice' and changed['updated_at'] >= created['updated_at']

    gone = store.templates.delete('nightly-backup')
    assert gone['definition']['forks'] == 5
    with pytest.raises(UnknownTemplate, match='nightly-backup'):
        store.templates.get('nightly-backup')
    with pytest.raises(UnknownTemplate):
        store.templates.delete('nightly-backup')
    with pytest.raises(UnknownTemplate):
        store.templates.update('nightly-backup', DEFINITION)


def test_names_are_unique_and_checked(store):
    store.templates.create('inspect', DEFINITION)
    with pytest.raises(ValueError, match='already exists'):
        store.templates.create('inspect', DEFINITION)
    for name in ('', 'with space', 'x' * 256, 'tab\there', None):
        with pytest.raises(ValueError):
            store.templates.create(name, DEFINITION)
    with pytest.raises(ValueError, match='mapping'):
        store.templates.create('listed', ['not', 'a', 'mapping'])


def test_a_job_records_the_template_that_launched_it(store):
    job, _ = store.jobs.create({'playbook': 'playbooks/inspect.yml', 'inventory': 'inventories/localhost.yml',
                               'template': 'inspect'})
    assert store.jobs.get(job['id'])['template'] == 'inspect'
    bare, _ = store.jobs.create({'playbook': 'playbooks/inspect.yml', 'inventory': 'inventories/localhost.yml'})
    assert store.jobs.get(bare['id'])['template'] is None
    with pytest.raises(ValueError, match='template'):
        store.jobs.create({'playbook': 'p.yml', 'inventory': 'i.yml', 'template': 'x' * 256})


def test_a_token_carries_the_templates_it_is_limited_to(store):
    digest = hashlib.sha256(b'scoped').hexdigest()
    token = store.tokens.create('scoped', 'operator', digest, templates=['nightly-backup', 'inspect', 'inspect'])
    assert token['templates'] == ['inspect', 'nightly-backup']
    assert store.tokens.by_hash(digest)['templates'] == ['inspect', 'nightly-backup']
    assert store.tokens.create('any', 'operator', hashlib.sha256(b'any').hexdigest())['templates'] is None
    for templates in ([], 'inspect', [''], [1]):
        with pytest.raises(ValueError, match='templates'):
            store.tokens.create('bad-%s' % len(str(templates)), 'operator', hashlib.sha256(str(templates).encode())
                                .hexdigest(), templates=templates)
