"""Tags end to end: inspect.yml over the local fleet, the fleet inventory plugin, manual tags,
expiry, check mode, and the CLI — against both store backends (SQLite and MariaDB)."""

from __future__ import annotations

import datetime
import json
import subprocess
import textwrap

import pytest
import yaml

from devtools.fleet.scale_inventory import write_scale_inventory
from tests.conftest import REPO, VENV_BIN, ansible_env
from tests.helpers import dbfleet

pytestmark = pytest.mark.fleet


def playbook(store_url, *args, inventory='inventories/local_fleet.yml', playbook_path='playbooks/inspect.yml'):
    completed = subprocess.run([str(VENV_BIN / 'ansible-playbook'), '-i', str(inventory), str(playbook_path), *args],
                               cwd=REPO, env=ansible_env(DBFLEET_STORE_URL=store_url), capture_output=True, text=True,
                               timeout=900, check=False)
    return completed


def dbfleet_json(store_url, *args):
    completed = dbfleet(store_url, *args, '--json')
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def profile_tags(store_url, host):
    profile = dbfleet_json(store_url, 'hosts', 'profile', host)
    return set(tag['name'] for entries in profile['tags'].values() for tag in entries)


def fleet_inventory(tmp_path, **options):
    config = dict(plugin='dbfleet.mysql.fleet', **options)
    path = tmp_path / 'test.fleet.yml'
    path.write_text(yaml.safe_dump(config))
    return path


def plain(value):
    """ansible-inventory --list marks strings that came from a plugin as unsafe ({'__ansible_unsafe': ...})."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return dict((key, plain(item)) for key, item in value.items())
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def ansible_inventory(store_url, path, *args):
    return subprocess.run([str(VENV_BIN / 'ansible-inventory'), '-i', str(path), *args], cwd=REPO,
                          env=ansible_env(DBFLEET_STORE_URL=store_url), capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture
def inspected(fleet, store_url):
    completed = playbook(store_url)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def test_inspection_tags_the_fleet_from_facts(inspected, store_url):
    assert profile_tags(store_url, 'primary') >= {'primary', 'small'}
    assert profile_tags(store_url, 'replica') >= {'replica', 'read_only', 'small'}
    assert 'lagging' not in profile_tags(store_url, 'replica')
    assert profile_tags(store_url, 'analytics') >= {'standalone', 'small'}
    assert 'added primary (role) on primary' in inspected.stdout


def test_stopped_replication_makes_the_replica_lagging_and_back(fleet, inspected, store_url):
    with fleet.replica_sql_stopped():
        completed = playbook(store_url, '-e', 'target_hosts=replica')
        assert completed.returncode == 0, completed.stdout
        assert 'lagging' in profile_tags(store_url, 'replica')
        assert 'added lagging (health) on replica' in completed.stdout
        explained = dbfleet_json(store_url, 'tags', 'explain', 'replica', 'lagging')
        assert explained[0]['result'] is True
    completed = playbook(store_url, '-e', 'target_hosts=replica')
    assert 'lagging' not in profile_tags(store_url, 'replica')
    assert 'removed lagging' in completed.stdout


def test_delayed_replica_is_lagging_over_an_overridden_threshold(fleet, inspected, store_url):
    with fleet.replica_delayed(60):
        completed = playbook(store_url, '-e', 'target_hosts=replica',
                             '-e', '{"dbfleet_tag_rule_vars": {"lagging_seconds": 2}}')
        assert completed.returncode == 0, completed.stdout
        assert 'lagging' in profile_tags(store_url, 'replica')


def test_second_inspection_changes_nothing(inspected, store_url):
    completed = playbook(store_url)
    assert completed.returncode == 0
    assert 'changed=0' in completed.stdout.split('PLAY RECAP')[1]


def age_tag(store_url, host, tag, hours):
    """Time passes for one host tag: its expiry moves `hours` earlier (no test waits on the clock)."""
    from sqlalchemy import select, update

    from dbfleet.store import open_store
    from dbfleet.store.models import Host, HostTag, Tag
    with open_store(store_url) as store:
        with store.transactions.engine.begin() as connection:
            host_id = connection.scalar(select(Host.id).where(Host.name == host))
            tag_id = connection.scalar(select(Tag.id).where(Tag.name == tag))
            expires = connection.scalar(select(HostTag.expires_at).where(HostTag.host_id == host_id,
                                                                         HostTag.tag_id == tag_id))
            connection.execute(update(HostTag).where(HostTag.host_id == host_id, HostTag.tag_id == tag_id)
                               .values(expires_at=expires - datetime.timedelta(hours=hours)))


def test_manual_tag_survives_reinspection_and_expiry_removes_one(inspected, store_url):
    assert dbfleet(store_url, 'tags', 'add', 'primary', 'payments').returncode == 0
    assert dbfleet(store_url, 'tags', 'add', 'primary', 'maintenance', '--expires', '2h').returncode == 0
    assert {'payments', 'maintenance'} <= profile_tags(store_url, 'primary')
    age_tag(store_url, 'primary', 'maintenance', hours=3)  # two hours pass, and one more
    completed = playbook(store_url, '-e', 'target_hosts=primary')
    assert completed.returncode == 0, completed.stdout
    tags = profile_tags(store_url, 'primary')
    assert 'payments' in tags and 'primary' in tags
    assert 'maintenance' not in tags
    history = dbfleet_json(store_url, 'hosts', 'profile', 'primary')['tag_history']
    assert any(event['tag'] == 'maintenance' and event['action'] == 'expired' for event in history)
    assert any(event['tag'] == 'payments' and event['action'] == 'added' and event['who'].startswith('cli:')
               for event in history)


def test_check_mode_with_diff_writes_nothing(fleet, inspected, store_url):
    absent = dbfleet(store_url, 'tags', 'remove', 'replica', 'nothing-here')
    assert absent.returncode == 0 and 'removed nothing' in absent.stdout
    with fleet.replica_sql_stopped():
        completed = playbook(store_url, '-e', 'target_hosts=replica', '--check', '--diff')
        assert completed.returncode == 0, completed.stdout
        assert '+lagging' in completed.stdout
        assert 'lagging' not in profile_tags(store_url, 'replica')


def test_same_play_continues_on_tag_groups(inspected, store_url, tmp_path):
    play = tmp_path / 'follow.yml'
    play.write_text(textwrap.dedent('''\
        - name: tag
          hosts: mysql
          gather_facts: false
          tasks:
            - dbfleet.mysql.mysql_facts:
                login_host: "{{ login_host }}"
                login_port: "{{ login_port }}"
                login_user: "{{ login_user }}"
                login_password: "{{ login_password }}"
                gather_subset: [replication, schemas]
            - dbfleet.mysql.fleet_tags:
              register: tagged
              changed_when: tagged.tags_changed
        - name: only replicas
          hosts: tag_replica
          gather_facts: false
          tasks:
            - ansible.builtin.debug:
                msg: "REPLICA-{{ inventory_hostname }}"
        '''))
    completed = playbook(store_url, playbook_path=play)
    assert completed.returncode == 0, completed.stdout
    assert 'REPLICA-replica' in completed.stdout and 'REPLICA-primary' not in completed.stdout


def test_fleet_inventory_groups_and_filters(inspected, store_url, tmp_path):
    added = dbfleet(store_url, 'tags', 'add', 'analytics', 'maintenance')
    assert added.returncode == 0, added.stderr
    graph = ansible_inventory(store_url, fleet_inventory(tmp_path), '--graph')
    assert graph.returncode == 0, graph.stderr
    assert '@tag_replica:' in graph.stdout and '@tag_primary:' in graph.stdout and '@mysql:' in graph.stdout

    def selected(expression):
        listing = ansible_inventory(store_url, fleet_inventory(tmp_path, tags=expression), '--list')
        assert listing.returncode == 0, listing.stderr
        return set(json.loads(listing.stdout)['_meta']['hostvars'])

    assert selected('replica') == {'replica'}
    assert selected('small and not maintenance') == {'primary', 'replica'}
    assert selected('maintenance or (primary and not replica)') == {'analytics', 'primary'}
    assert selected('not (small)') == set()

    listing = plain(json.loads(ansible_inventory(store_url, fleet_inventory(tmp_path), '--list').stdout))
    replica = listing['_meta']['hostvars']['replica']
    assert 'replica' in replica['dbfleet_tags'] and replica['dbfleet_facts']['replication.role'] == 'replica'
    assert replica['login_port'] == 33062


def test_fleet_inventory_constructed_features(inspected, store_url, tmp_path):
    assert dbfleet(store_url, 'hosts', 'set', 'primary', 'owner=team-payments').returncode == 0
    path = fleet_inventory(tmp_path, keyed_groups=[{'key': "dbfleet_attributes.owner | default('none')",
                                                    'prefix': 'owner'}],
                           groups={'replicating': "dbfleet_facts['replication.role'] == 'replica'"},
                           compose={'ansible_host': 'dbfleet_address'})
    listing = plain(json.loads(ansible_inventory(store_url, path, '--list').stdout))
    assert listing['owner_team_payments']['hosts'] == ['primary']
    assert listing['replicating']['hosts'] == ['replica']
    assert listing['_meta']['hostvars']['analytics']['ansible_host'] == '127.0.0.1'


def test_fleet_inventory_errors(store_url, tmp_path, inspected):
    bad = ansible_inventory(store_url, fleet_inventory(tmp_path, tags='large and (not'), '--list')
    assert bad.returncode != 0 and 'bad tags filter' in bad.stderr and 'position' in bad.stderr
    unreachable = ansible_inventory('mysql+pymysql://u:Sekret-9@127.0.0.1:1/x', fleet_inventory(tmp_path), '--list')
    assert unreachable.returncode != 0 and 'Sekret-9' not in unreachable.stderr + unreachable.stdout
    empty = tmp_path / 'empty.db'
    unmigrated = ansible_inventory('sqlite:///%s' % empty, fleet_inventory(tmp_path), '--list')
    assert unmigrated.returncode != 0 and 'dbfleet store upgrade' in unmigrated.stderr


def test_cli_listings_and_errors(inspected, store_url):
    tags = dbfleet_json(store_url, 'tags', 'list')
    by_name = dict((tag['name'], tag) for tag in tags)
    assert by_name['replica']['hosts'] == 1 and by_name['replica']['dimension'] == 'role'
    hosts = dbfleet_json(store_url, 'hosts', 'list', '--tags', 'replica or primary')
    assert sorted(host['name'] for host in hosts) == ['primary', 'replica']
    table = dbfleet(store_url, 'hosts', 'list')
    assert table.returncode == 0 and 'analytics' in table.stdout
    profile = dbfleet(store_url, 'hosts', 'profile', 'replica')
    assert profile.returncode == 0 and 'role' in profile.stdout and 'replica' in profile.stdout
    bad_filter = dbfleet(store_url, 'hosts', 'list', '--tags', 'a and')
    assert bad_filter.returncode == 2 and bad_filter.stderr.count('\n') == 1
    missing = dbfleet(store_url, 'hosts', 'profile', 'nope')
    assert missing.returncode == 2 and 'nope' in missing.stderr
    bad_expiry = dbfleet(store_url, 'tags', 'add', 'primary', 'x', '--expires', 'soonish')
    assert bad_expiry.returncode == 2 and 'soonish' in bad_expiry.stderr


def test_rules_check_reports_cycles_and_sandbox_escapes(tmp_path, store_url):
    cycle = tmp_path / 'cycle.yml'
    cycle.write_text(yaml.safe_dump({'rules': [
        {'tag': 'a', 'dimension': 'risk', 'description': 'a', 'when': 'tags.b'},
        {'tag': 'b', 'dimension': 'risk', 'description': 'b', 'when': 'tags.a'}]}))
    completed = dbfleet(store_url, 'tags', 'rules', 'check', str(cycle))
    assert completed.returncode == 2 and 'cycle' in completed.stderr and 'a -> b' in completed.stderr.replace('b -> a', 'a -> b')
    escape = tmp_path / 'escape.yml'
    escape.write_text(yaml.safe_dump({'rules': [
        {'tag': 'x', 'dimension': 'risk', 'description': 'x', 'when': "facts.__class__.__mro__[1]"}]}))
    completed = dbfleet(store_url, 'tags', 'rules', 'check', str(escape))
    assert completed.returncode == 2 and '__class__' in completed.stderr
    good = dbfleet(store_url, 'tags', 'rules', 'check', str(REPO / 'inventories' / 'tag_rules.yml'))
    assert good.returncode == 0, good.stderr


def test_concurrent_inspection_of_many_hosts_loses_no_tag(fleet, store_url, tmp_path):
    inventory = write_scale_inventory(tmp_path / 'scale.yml', 60)
    completed = playbook(store_url, '--forks', '20', inventory=inventory)
    assert completed.returncode == 0, completed.stdout[-3000:]
    hosts = dbfleet_json(store_url, 'hosts', 'list')
    assert len(hosts) == 60
    roles = yaml.safe_load(inventory.read_text())
    expected_role = {33061: 'primary', 33062: 'replica', 33063: 'standalone'}
    host_vars = roles['all']['children']['mysql']['hosts']
    for host in hosts:
        assert expected_role[host_vars[host['name']]['login_port']] in host['tags'], host


def test_fleet_inventory_cache_serves_hosts_without_the_store(inspected, store_url, tmp_path):
    cached = fleet_inventory(tmp_path, cache=True, cache_plugin='ansible.builtin.jsonfile',
                             cache_connection=str(tmp_path / 'cache'), cache_timeout=3600)
    first = ansible_inventory(store_url, cached, '--graph')
    assert first.returncode == 0, first.stderr
    # The store is gone; the cached answer still serves, until the cache is flushed.
    gone = 'sqlite:///%s' % (tmp_path / 'missing' / 'store.db')
    again = ansible_inventory(gone, cached, '--graph')
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout and '@tag_replica:' in again.stdout
    flushed = ansible_inventory(gone, cached, '--graph', '--flush-cache')
    assert flushed.returncode != 0


def test_reinspection_through_the_fleet_inventory_reports_no_change(inspected, store_url, tmp_path):
    """Hosts from the fleet inventory are in their tag groups already: without changed_when, the
    task is changed only when tags change."""
    play = tmp_path / 'plain.yml'
    play.write_text(textwrap.dedent('''\
        - name: re-inspect
          hosts: mysql
          gather_facts: false
          tasks:
            - dbfleet.mysql.mysql_facts:
                login_host: "{{ login_host }}"
                login_port: "{{ login_port }}"
                login_user: dbfleet_monitor
                login_password: monitor-pw-Secret1
            - dbfleet.mysql.fleet_tags:
            - ansible.builtin.debug:
                msg: "TAGS {{ inventory_hostname }} {{ dbfleet_tags | join(',') }}"
        '''))
    inventory = fleet_inventory(tmp_path, compose={'ansible_connection': "'local'"})
    completed = playbook(store_url, '-e', 'ansible_python_interpreter=%s' % (VENV_BIN / 'python'),
                         inventory=inventory, playbook_path=play)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert 'changed=0' in completed.stdout.split('PLAY RECAP')[1]
    assert 'TAGS replica read_only,replica,small' in completed.stdout
