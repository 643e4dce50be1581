"""Evaluating tag rules on realistic facts: results, evidence, reasons, missing data, sandbox."""

import copy
import datetime
import time

import pytest
import yaml

from dbfleet.tags import HostContext, load_rules, parse_rules
from tests.conftest import REPO

DEFAULT_RULES = REPO / 'inventories' / 'tag_rules.yml'
DAY = 86400
YEAR = 365 * DAY
GIB = 1024 ** 3
NOW = datetime.datetime(2026, 11, 27, 3, 0, tzinfo=datetime.timezone.utc).timestamp()


def facts_of(role='standalone', uptime=30 * DAY, os_uptime=None, total_bytes=5 * GIB, lag=None,
             is_database_host=True, read_only=False):
    """Facts as dbfleet.mysql.mysql_facts returns them (ansible_facts.mysql), trimmed to what rules read."""
    is_replica = role in ('replica', 'relay')
    return {
        'gathered_subsets': ['engines', 'host', 'replication', 'schemas', 'server', 'status', 'users', 'variables'],
        'errors': {},
        'collected_at': '2026-11-27T03:00:00Z',
        'server': {
            'flavour': 'mariadb',
            'version': {'full': '10.11.6-MariaDB-log', 'major': 10, 'minor': 11, 'patch': 6, 'suffix': 'MariaDB-log'},
            'hostname': 'db1', 'port': 3306, 'uptime_seconds': uptime, 'start_epoch': int(NOW) - uptime,
            'read_only': read_only, 'super_read_only': None, 'log_bin': True, 'binlog_format': 'ROW',
        },
        'host': {'hostname': 'db1', 'fqdn': 'db1.example.net',
                 'uptime_seconds': uptime if os_uptime is None else os_uptime,
                 'is_database_host': is_database_host, 'clock_skew_seconds': 0},
        'replication': {'role': role, 'is_replica': is_replica, 'channel_count': int(is_replica),
                        'lag_seconds': lag if is_replica else None,
                        'all_channels_healthy': (lag is not None) if is_replica else None,
                        'replica_count': 2 if role in ('primary', 'relay') else 0, 'channels': [], 'replicas': []},
        'schemas': {'mode': 'estimate', 'largest': 'shop', 'items': {},
                    'totals': {'schemas': 3, 'tables': 40, 'data_bytes': total_bytes - 1024,
                               'index_bytes': 1024, 'total_bytes': total_bytes}},
        'users': {'count': 5, 'without_password': [], 'without_password_count': 0},
    }


def host(name='db1', attributes=None, manual=(), **facts):
    return HostContext(name, facts_of(**facts), attributes or {}, frozenset(manual))


@pytest.fixture(scope='module')
def defaults():
    return load_rules(DEFAULT_RULES)


def rules(*whens, variables=None, manual=()):
    """A rule set of rules r1, r2... (or (tag, when) pairs)."""
    entries = [dict(tag=item[0], dimension='test', when=item[1]) if isinstance(item, tuple)
               else dict(tag='r%d' % number, dimension='test', when=item) for number, item in enumerate(whens, 1)]
    return parse_rules(yaml.safe_dump({'vars': variables or {}, 'rules': entries}), known_manual_tags=manual)


# --- The default rules ---------------------------------------------------------------------------

def test_old_primary_is_high_risk_and_critical(defaults):
    evaluation = defaults.evaluate(host(role='primary', uptime=4 * YEAR, os_uptime=4 * YEAR), now=NOW)
    assert set(evaluation.tags) == {'high_risk', 'critical', 'primary'}
    assert evaluation.tags['high_risk'] == {
        'facts.server.uptime_seconds': 4 * YEAR, 'vars.high_risk_days': 1095,
        'facts.host.is_database_host': True, 'facts.host.uptime_seconds': 4 * YEAR}
    assert evaluation.tags['critical'] == {'tags.high_risk': True, 'tags.primary': True}
    assert evaluation.errors == {}


def test_high_risk_needs_both_mysqld_and_the_os_up_for_years(defaults):
    rebooted = defaults.evaluate(host(role='primary', uptime=4 * YEAR, os_uptime=10 * DAY), now=NOW)
    assert 'high_risk' not in rebooted.tags and 'critical' not in rebooted.tags
    elsewhere = defaults.evaluate(host(uptime=4 * YEAR, os_uptime=4 * YEAR, is_database_host=False), now=NOW)
    assert 'high_risk' not in elsewhere.tags
    assert elsewhere.explanations['high_risk'].evidence['facts.host.is_database_host'] is False


def test_replica_with_stopped_sql_thread_is_lagging(defaults):
    evaluation = defaults.evaluate(host(role='replica', lag=None), now=NOW)
    assert {'replica', 'lagging'} <= set(evaluation.tags)
    assert evaluation.tags['lagging'] == {'facts.replication.is_replica': True, 'facts.replication.lag_seconds': None}


@pytest.mark.parametrize('lag,lagging', [(0, False), (300, False), (301, True), (86400, True)])
def test_replica_lag_threshold(defaults, lag, lagging):
    assert ('lagging' in defaults.evaluate(host(role='replica', lag=lag), now=NOW).tags) is lagging


def test_lagging_threshold_can_be_overridden():
    ruleset = load_rules(DEFAULT_RULES, overrides={'lagging_seconds': 30})
    assert 'lagging' in ruleset.evaluate(host(role='replica', lag=60), now=NOW).tags


def test_primary_is_never_lagging(defaults):
    evaluation = defaults.evaluate(host(role='primary'), now=NOW)
    assert 'lagging' not in evaluation.tags
    assert evaluation.explanations['lagging'].reason == 'false: read facts.replication.is_replica=False'


@pytest.mark.parametrize('role,expected', [
    ('primary', {'primary'}), ('replica', {'replica'}), ('relay', {'primary', 'replica'}),
    ('standalone', {'standalone'}),
])
def test_roles(defaults, role, expected):
    tags = defaults.evaluate(host(role=role, lag=5), now=NOW).tags
    assert set(tags) & {'primary', 'replica', 'standalone'} == expected


def test_archive_lagging_reads_the_archives_lag(defaults):
    def archive(lag):
        context = host(role='primary')
        return HostContext(context.name, dict(context.facts, binlog_archive={'lag_seconds': lag, 'gaps': 0}),
                           {}, frozenset())

    assert 'archive_lagging' in defaults.evaluate(archive(901.5), now=NOW).tags
    assert defaults.evaluate(archive(901.5), now=NOW).tags['archive_lagging'] == {
        'facts.binlog_archive.lag_seconds': 901.5, 'vars.archive_lag_seconds': 900}
    assert 'archive_lagging' not in defaults.evaluate(archive(3.0), now=NOW).tags
    assert 'archive_lagging' in defaults.evaluate(archive(None), now=NOW).tags  # nothing archived yet
    without = defaults.evaluate(host(role='primary'), now=NOW)
    assert 'archive_lagging' not in without.tags
    assert without.explanations['archive_lagging'].reason == \
        'facts.binlog_archive.lag_seconds is missing (facts.binlog_archive is missing)'


def test_untested_backup_counts_from_the_last_good_drill_or_the_first_backup(defaults):
    def drilled(days_ago):
        context = host(role='primary')
        since = NOW - days_ago * 86400
        return HostContext(context.name, dict(context.facts, restore_drill={
            'untested_since': since, 'last_ok_at': None, 'first_backup_at': since, 'last_status': None}), {},
            frozenset())

    assert 'untested_backup' in defaults.evaluate(drilled(30.5), now=NOW).tags
    assert defaults.evaluate(drilled(30.5), now=NOW).tags['untested_backup'] == {
        'facts.restore_drill.untested_since': NOW - 30.5 * 86400, 'vars.untested_backup_days': 30}
    assert 'untested_backup' not in defaults.evaluate(drilled(29), now=NOW).tags
    without = defaults.evaluate(host(role='primary'), now=NOW)  # no successful backup: nothing to drill
    assert 'untested_backup' not in without.tags
    assert 'facts.restore_drill is missing' in without.explanations['untested_backup'].reason


def test_large_small_and_backup_heavy(defaults):
    large_primary = defaults.evaluate(host(role='primary', total_bytes=56 * GIB), now=NOW)
    assert {'large', 'primary', 'backup_heavy'} <= set(large_primary.tags)
    assert large_primary.tags['large'] == {'facts.schemas.totals.total_bytes': 56 * GIB, 'vars.large_gb': 50}
    assert large_primary.tags['backup_heavy'] == {'tags.large': True, 'tags.primary': True}
    assert 'backup_heavy' not in defaults.evaluate(host(role='replica', total_bytes=56 * GIB, lag=1), now=NOW).tags
    tiny = defaults.evaluate(host(total_bytes=200 * 1024 ** 2), now=NOW)
    assert 'small' in tiny.tags and 'large' not in tiny.tags
    medium = defaults.evaluate(host(total_bytes=50 * GIB), now=NOW)   # exactly 50 GiB is not more than 50
    assert not {'small', 'large'} & set(medium.tags)


def test_large_threshold_override():
    ruleset = load_rules(DEFAULT_RULES, overrides={'large_gb': 100})
    evaluation = ruleset.evaluate(host(total_bytes=60 * GIB), now=NOW)
    assert 'large' not in evaluation.tags
    assert evaluation.explanations['large'].evidence['vars.large_gb'] == 100


def test_read_only(defaults):
    assert 'read_only' in defaults.evaluate(host(read_only=True), now=NOW).tags
    assert 'read_only' not in defaults.evaluate(host(read_only=False), now=NOW).tags


@pytest.mark.parametrize('warranty_end,expected', [
    ('2025-06-30', True), ('2026-11-26T23:59:59Z', True), ('2027-01-31', False),
    (datetime.date(2020, 1, 1), True),   # an unquoted date in a YAML attributes file
])
def test_out_of_warranty(defaults, warranty_end, expected):
    evaluation = defaults.evaluate(host(attributes={'warranty_end': warranty_end}), now=NOW)
    assert ('out_of_warranty' in evaluation.tags) is expected
    assert evaluation.explanations['out_of_warranty'].evidence == {'attrs.warranty_end': warranty_end}


def test_missing_warranty_is_false_with_a_reason(defaults):
    explanation = defaults.evaluate(host(attributes={}), now=NOW).explanations['out_of_warranty']
    assert (explanation.result, explanation.outcome, explanation.error) == (False, 'missing', None)
    assert explanation.reason == 'attrs.warranty_end is missing'


def test_bad_warranty_date_is_that_hosts_error(defaults):
    evaluation = defaults.evaluate(host('db7', attributes={'warranty_end': '31/12/2025'}), now=NOW)
    assert evaluation.errors == {'out_of_warranty': "host db7: rule out_of_warranty: date(): '31/12/2025' is not "
                                                    "an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)"}
    explanation = evaluation.explanations['out_of_warranty']
    assert explanation.outcome == 'error' and explanation.error == evaluation.errors['out_of_warranty']
    assert explanation.reason.startswith("error: date(): '31/12/2025' is not an ISO date")
    assert 'standalone' in evaluation.tags     # the other rules went on


# --- Missing and null data -----------------------------------------------------------------------

def test_missing_subset_makes_rules_false_with_the_path(defaults):
    facts = facts_of(role='primary')
    del facts['replication']
    evaluation = defaults.evaluate(HostContext('db1', facts, {}), now=NOW)
    assert evaluation.errors == {}
    assert evaluation.explanations['primary'].reason == ('facts.replication.role is missing '
                                                         '(facts.replication is missing)')
    assert evaluation.explanations['lagging'].reason == ('facts.replication.is_replica is missing '
                                                         '(facts.replication is missing)')
    assert evaluation.explanations['critical'].result is False


def test_failed_subset_reason_quotes_the_collection_error(defaults):
    facts = facts_of(total_bytes=80 * GIB)
    facts['schemas'] = None
    facts['errors']['schemas'] = 'MySQL error 1227: Access denied; you need the PROCESS privilege'
    explanation = defaults.evaluate(HostContext('db1', facts, {}), now=NOW).explanations['large']
    assert explanation.outcome == 'missing'
    assert explanation.reason == ('facts.schemas.totals.total_bytes is missing (facts.schemas is null) - '
                                  'facts.errors.schemas: MySQL error 1227: Access denied; '
                                  'you need the PROCESS privilege')


def test_no_facts_at_all(defaults):
    evaluation = defaults.evaluate(HostContext('new-host', None, {'warranty_end': '2020-01-01'}), now=NOW)
    assert set(evaluation.tags) == {'out_of_warranty'}
    assert evaluation.explanations['high_risk'].reason == ('facts.server.uptime_seconds is missing '
                                                           '(facts.server is missing)')
    assert evaluation.errors == {}


def test_comparing_a_null_fact_is_missing_data_not_an_error():
    evaluation = rules('facts.replication.lag_seconds > 300').evaluate(host(role='replica', lag=None), now=NOW)
    explanation = evaluation.explanations['r1']
    assert (explanation.result, explanation.outcome) == (False, 'missing')
    assert explanation.reason == 'facts.replication.lag_seconds is null'
    assert evaluation.errors == {}


def test_deeper_missing_path_names_the_first_gap():
    explanation = rules('facts.nope.deeper > 1').evaluate(host(), now=NOW).explanations['r1']
    assert explanation.reason == 'facts.nope.deeper is missing (facts.nope is missing)'


@pytest.mark.parametrize('when,expected', [
    ('facts.nope is defined', False),
    ('facts.nope.deeper is not defined', True),
    ('facts.nope | default(5) > 3', True),
    ("facts.server.get('nope', 0) == 0", True),
    ("attrs.owner | default('nobody') == 'nobody'", True),
    ('facts.replication.lag_seconds is none', True),
])
def test_rules_can_handle_missing_data_on_purpose(when, expected):
    evaluation = rules(when).evaluate(host(), now=NOW)
    assert evaluation.explanations['r1'].result is expected
    assert evaluation.errors == {}


@pytest.mark.parametrize('when', ['facts.nope', 'not facts.nope', 'facts.nope == 1', 'facts.nope + 1 > 0',
                                  "'x' in facts.nope", 'days(facts.nope) > 0', 'facts.nope and true'])
def test_using_a_missing_value_stops_the_rule(when):
    explanation = rules(when).evaluate(host(), now=NOW).explanations['r1']
    assert (explanation.result, explanation.reason, explanation.error) == (False, 'facts.nope is missing', None)


# --- Evidence and explanations -------------------------------------------------------------------

def test_evidence_holds_exactly_the_values_read():
    ruleset = rules("facts.server.flavour == 'mysql' or facts.schemas.totals.total_bytes > gb(vars.big)",
                    variables={'big': 1})
    evaluation = ruleset.evaluate(host(total_bytes=2 * GIB), now=NOW)
    assert evaluation.tags['r1'] == {'facts.server.flavour': 'mariadb',
                                     'facts.schemas.totals.total_bytes': 2 * GIB, 'vars.big': 1}


def test_evidence_of_a_short_circuit_is_only_what_was_read():
    evaluation = rules("facts.server.flavour == 'mariadb' or facts.nope > 1").evaluate(host(), now=NOW)
    assert evaluation.tags['r1'] == {'facts.server.flavour': 'mariadb'}


def test_whole_sections_are_evidence_when_the_rule_looks_at_them_whole():
    facts = facts_of()
    facts['errors'] = {'users': 'denied'}
    evaluation = rules('facts.errors | length > 0').evaluate(HostContext('db1', facts, {}), now=NOW)
    assert evaluation.tags['r1'] == {'facts.errors': {'users': 'denied'}}


def test_membership_reads_the_keys():
    evaluation = rules("'users' in facts.errors or 'replication' in facts").evaluate(host(), now=NOW)
    assert evaluation.tags['r1'] == {'facts.errors': [], 'facts': list(facts_of())}


def test_schema_items_is_the_fact_not_the_dict_method():
    facts = facts_of()
    facts['schemas']['items'] = {'shop': {'total_bytes': 10}}
    evaluation = rules('facts.schemas.items.shop.total_bytes == 10').evaluate(HostContext('db1', facts, {}), now=NOW)
    assert evaluation.tags['r1'] == {'facts.schemas.items.shop.total_bytes': 10}


def test_explanations_cover_every_rule_in_evaluation_order(defaults):
    evaluation = defaults.evaluate(host(role='primary'), now=NOW)
    assert list(evaluation.explanations) == defaults.order
    primary = evaluation.explanations['primary']
    assert (primary.tag, primary.result, primary.outcome) == ('primary', True, 'true')
    assert primary.reason == "true: read facts.replication.role='primary'"
    assert evaluation.explanations['critical'].reason == 'false: read tags.high_risk=False'
    assert primary.as_dict() == dict(tag='primary', result=True, outcome='true', reason=primary.reason,
                                     evidence={'facts.replication.role': 'primary'}, error=None)
    assert evaluation.as_dict()['explanations']['primary'] == primary.as_dict()


def test_now_and_host_are_in_the_context():
    # `now` is the injected clock when given (NOW is 2026-11-27T03:00Z), the wall clock otherwise;
    # no assertion here depends on today's date.
    yesterday = datetime.datetime.fromtimestamp(NOW - DAY, datetime.timezone.utc).date().isoformat()
    ruleset = rules("host == 'db9'", 'now > 0', ('recent', "now - date('%s') < days(2)" % yesterday))
    assert set(ruleset.evaluate(host('db9'), now=NOW).tags) == {'r1', 'r2', 'recent'}
    assert set(ruleset.evaluate(host('db1'), now=NOW).tags) == {'r2', 'recent'}
    assert set(ruleset.evaluate(host('db1'), now=NOW + 3 * DAY).tags) == {'r2'}
    before = time.time()
    evaluation = rules('now > 0').evaluate(host('db9'))  # no date in it: it holds on any day
    assert before <= evaluation.now <= time.time() and set(evaluation.tags) == {'r1'}


def test_unit_helpers():
    ruleset = rules('days(2) == 172800', 'hours(1.5) == 5400', 'gb(2) == 2147483648', 'mb(1) == 1048576',
                    "date('1970-01-02') == 86400", "date('1970-01-01T01:00:00+01:00') == 0")
    evaluation = ruleset.evaluate(host(), now=NOW)
    assert set(evaluation.tags) == {'r1', 'r2', 'r3', 'r4', 'r5', 'r6'}, evaluation.explanations


def test_helper_given_a_string_is_an_error():
    evaluation = rules("days('3') > 0").evaluate(host('db1'), now=NOW)
    assert evaluation.errors == {'r1': "host db1: rule r1: days() needs a number, got str '3'"}


# --- Tags in rules -------------------------------------------------------------------------------

def test_manual_tags_and_tag_spellings():
    ruleset = rules(('keep', "tags.maintenance and 'tag-x' in tags and not tags['env:prod']"),
                    manual={'maintenance', 'tag-x', 'env:prod'})
    evaluation = ruleset.evaluate(host(manual={'maintenance', 'tag-x'}), now=NOW)
    assert evaluation.tags == {'keep': {'tags.maintenance': True, 'tags.tag-x': True, 'tags.env:prod': False}}
    assert 'maintenance' not in evaluation.tags    # manual tags are not the rules' to report


def test_a_derived_rule_sees_a_failed_rule_as_false():
    ruleset = rules(('dated', 'date(attrs.bought) < now'), ('old', 'tags.dated or facts.server.uptime_seconds > 0'))
    evaluation = ruleset.evaluate(host(attributes={'bought': 'yesterday'}), now=NOW)
    assert 'dated' in evaluation.errors
    assert evaluation.tags['old'] == {'tags.dated': False, 'facts.server.uptime_seconds': 30 * DAY}


# --- Many hosts ----------------------------------------------------------------------------------

def test_evaluate_many_uses_one_moment_and_isolates_hosts(defaults):
    hosts = [
        host('db1', role='primary', uptime=4 * YEAR, os_uptime=4 * YEAR),
        host('db2', attributes={'warranty_end': 'not a date'}, role='replica', lag=None),
        HostContext('db3', None, None),
        host('db4', total_bytes=80 * GIB, role='primary'),
    ]
    evaluations = defaults.evaluate_many(hosts, now=NOW)
    assert list(evaluations) == ['db1', 'db2', 'db3', 'db4']
    assert {evaluation.now for evaluation in evaluations.values()} == {NOW}
    assert 'critical' in evaluations['db1'].tags
    assert set(evaluations['db2'].errors) == {'out_of_warranty'}
    assert evaluations['db2'].errors['out_of_warranty'].startswith('host db2: rule out_of_warranty: date(): ')
    assert {'replica', 'lagging'} <= set(evaluations['db2'].tags)
    assert evaluations['db3'].tags == {} and evaluations['db3'].errors == {}
    assert 'backup_heavy' in evaluations['db4'].tags


def test_evaluation_does_not_change_the_facts(defaults):
    facts = facts_of(role='replica', lag=None)
    before = copy.deepcopy(facts)
    defaults.evaluate(HostContext('db1', facts, {}), now=NOW)
    assert facts == before


# --- Sandbox -------------------------------------------------------------------------------------

def test_mutating_methods_do_not_run():
    attributes = {'owners': ['alice'], 'labels': {'team': 'dba'}}
    ruleset = rules("attrs.owners.append('mallory') is none", "attrs.owners.clear() or true",
                    "attrs.labels.update({'team': 'mallory'}) or true", "facts.users.without_password.pop() or true")
    evaluation = ruleset.evaluate(HostContext('db1', facts_of(), attributes), now=NOW)
    assert attributes == {'owners': ['alice'], 'labels': {'team': 'dba'}}
    assert evaluation.tags == {}
    assert evaluation.errors['r1'] == ("host db1: rule r1: blocked by the sandbox: access to attribute 'append' "
                                       "of 'list' object is unsafe.")
    assert set(evaluation.errors) == {'r1', 'r2', 'r4'}   # r3: attrs is read-only, update is simply not there
    assert evaluation.explanations['r3'].reason == 'attrs.labels.update is missing'


def test_a_side_effecting_function_is_not_called():
    calls = []

    def launch():
        calls.append('launched')
        return True
    launch.alters_data = True   # the sandbox's marker for functions that change things

    evaluation = rules('attrs.launch()').evaluate(HostContext('db1', facts_of(), {'launch': launch}), now=NOW)
    assert calls == []
    assert evaluation.errors['r1'].startswith('host db1: rule r1: blocked by the sandbox: ')
    assert 'is not safely callable' in evaluation.errors['r1']


@pytest.mark.parametrize('when,why', [
    ("(facts | attr('_' ~ '_class__')) == 1", "access to attribute '__class__' of 'facts' is unsafe."),
    ("facts['_' ~ '_class__'] == 1", "access to attribute '__class__' of 'facts' is unsafe."),
    ("'{0.__class__}'.format(host) == ''", "access to attribute '__class__' of 'str' object is unsafe."),
    ("(host | attr('_' ~ '_class__')) == 1", "access to attribute '__class__' of 'str' object is unsafe."),
    ("'x' * 10**6 == ''", 'repeating a str 1000000 times would exceed 100000 items'),
    ('2 ** 100000 > 0', 'exponent 100000 is larger than 1000'),
])
def test_runtime_escapes_fail_cleanly_for_that_host(when, why):
    evaluation = rules(when, 'true').evaluate(host('db1'), now=NOW)
    assert evaluation.errors == {'r1': 'host db1: rule r1: blocked by the sandbox: %s' % why}
    assert 'Traceback' not in evaluation.errors['r1']
    assert 'r2' in evaluation.tags


def test_type_errors_are_reported_not_raised():
    evaluation = rules("facts.server.flavour > 3", 'true').evaluate(host('db1'), now=NOW)
    assert evaluation.errors == {'r1': "host db1: rule r1: TypeError: '>' not supported between instances of "
                                       "'str' and 'int'"}
    assert 'r2' in evaluation.tags
