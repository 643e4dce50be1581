"""The portal's pure parts: the Gantt chart's geometry and the survey form's answers turned
into extra vars (which the survey's own checks then judge)."""

from __future__ import annotations

import datetime as dt

from starlette.datastructures import FormData

from runner_service.portal import gantt, survey_form

T0 = dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.timezone.utc)


def run(host, lane, start, end, status='ok'):
    return {'host': host, 'lane': lane, 'batch': None, 'status': status, 'estimate_seconds': 60,
            'started_at': None if start is None else T0 + dt.timedelta(seconds=start),
            'finished_at': None if end is None else T0 + dt.timedelta(seconds=end)}


def test_a_chart_has_a_row_per_lane_a_bar_per_started_run_and_the_window_line():
    runs = [run('a', 0, 0, 60), run('b', 0, 60, 120), run('c', 1, 0, 100), run('d', 1, None, None, 'pending')]
    chart = gantt.chart(runs, {'window_end': (T0 + dt.timedelta(seconds=150)).isoformat()}, now=T0)
    assert [label for label, _ in chart.rows] == ['lane 0', 'lane 1']
    assert [bar.host for bar in chart.bars] == ['a', 'b', 'c']
    assert chart.bars[0].x == gantt.LABEL and chart.bars[1].x == chart.bars[0].x + chart.bars[0].width
    assert chart.window_x == gantt.WIDTH - 10 and not chart.overrun and not chart.window_off_chart


def test_a_run_past_the_window_is_an_overrun_and_a_far_window_stands_at_the_edge():
    late = gantt.chart([run('a', 0, 0, 200)], {'window_end': T0 + dt.timedelta(seconds=100)}, now=T0)
    assert late.overrun and late.window_x < late.bars[0].x + late.bars[0].width
    far = gantt.chart([run('a', 0, 0, 60)], {'window_end': T0 + dt.timedelta(hours=5)}, now=T0)
    assert far.window_off_chart and far.window_x == gantt.WIDTH - 2
    assert far.bars[0].width == gantt.WIDTH - gantt.LABEL - 10  # the run keeps the whole width


def test_a_running_host_reaches_now_and_nothing_started_is_no_chart():
    chart = gantt.chart([run('a', 0, 0, None, 'running')], None, now=T0 + dt.timedelta(seconds=30))
    assert chart.bars[0].width == gantt.WIDTH - gantt.LABEL - 10 and chart.window_x is None
    assert gantt.chart([], None, now=T0) is None


SURVEY = [
    {'name': 'hosts', 'type': 'multi-choice', 'choices': ['a', 'b', 3]},
    {'name': 'mode', 'type': 'choice', 'choices': ['quick', 'full']},
    {'name': 'count', 'type': 'integer'}, {'name': 'ratio', 'type': 'number'},
    {'name': 'flag', 'type': 'boolean'}, {'name': 'note', 'type': 'string'},
    {'name': 'secret', 'type': 'password', 'default': None},
]


def test_form_answers_become_typed_extra_vars_and_empty_fields_are_left_out():
    form = FormData([('v_hosts', '0'), ('v_hosts', '2'), ('v_mode', '1'), ('v_count', '7'), ('v_ratio', '0.5'),
                     ('v_flag', 'true'), ('v_note', ''), ('v_secret', 's3'), ('v_other', 'ignored'),
                     ('ansible_become', 'yes')])
    assert survey_form.extra_vars(SURVEY, form) == {'hosts': ['a', 3], 'mode': 'full', 'count': 7, 'ratio': 0.5,
                                                    'flag': True, 'secret': 's3'}


def test_values_that_do_not_convert_go_on_as_sent_for_the_survey_to_refuse():
    form = FormData([('v_mode', '9'), ('v_count', '1.5'), ('v_ratio', 'lots'), ('v_hosts', '-1')])
    assert survey_form.extra_vars(SURVEY, form) == {'mode': '9', 'count': '1.5', 'ratio': 'lots', 'hosts': ['-1'],
                                                    'flag': False}


def test_the_form_never_shows_a_password_and_marks_the_chosen_options():
    fields = {field.name: field for field in survey_form.fields(SURVEY, {'secret': 'x', 'hosts': ['b'], 'mode': 'full'})}
    assert fields['secret'].value is None
    assert [selected for _, _, selected in fields['hosts'].choices] == [False, True, False]
    assert [label for _, label, selected in fields['mode'].choices if selected] == ['full']


def test_durations_read_as_people_say_them():
    from runner_service.portal.rendering import duration
    assert [duration(value) for value in (None, 5, 65, 3 * 3600 + 120, 40 * 86400 + 7200)] == [
        '', '5s', '1m 05s', '3h 02m', '40d 2h']


def test_the_session_cookie_is_secure_over_https_and_kept_from_scripts_and_other_sites():
    from starlette.requests import Request
    from starlette.responses import Response

    from runner_service.portal.session import Caller, csrf_for, start_session

    caller = Caller(token='dbf_' + 'a' * 43, record={'name': 'alice', 'role': 'viewer'})
    for scheme, secure in (('https', True), ('http', False)):
        request = Request({'type': 'http', 'scheme': scheme, 'method': 'POST', 'path': '/login', 'headers': [],
                           'server': ('portal.example', 443 if secure else 80), 'query_string': b''})
        response = Response()
        start_session(request, response, caller)
        cookie = next(value.decode() for name, value in response.raw_headers
                      if name == b'set-cookie' and value.startswith(b'dbfleet_session='))
        assert 'HttpOnly' in cookie and 'SameSite=strict' in cookie and ('Secure' in cookie) == secure
    # The CSRF token is bound to the session's token, and tells nothing of it.
    assert caller.csrf == csrf_for(caller.token) != csrf_for('dbf_' + 'b' * 43) and caller.token not in caller.csrf
