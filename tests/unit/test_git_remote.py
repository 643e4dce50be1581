"""Project URLs and branches as the settings take them, and URLs shown without their credentials."""

from __future__ import annotations

import pytest

from dbfleet.git_remote import (
    check_branch,
    check_project_url,
    protocol,
    redact_text,
    redact_url,
    without_credentials,
)
from dbfleet.settings import SettingsError, get_settings


@pytest.mark.parametrize('url, shown', [
    ('https://deploy:hunter2@git.example.com/ops/playbooks.git', 'https://***:***@git.example.com/ops/playbooks.git'),
    ('https://ghp_token123@git.example.com/ops/playbooks.git', 'https://***@git.example.com/ops/playbooks.git'),
    ('https://deploy:p%40ss%3Aword@git.example.com:8443/r.git', 'https://***:***@git.example.com:8443/r.git'),
    ('ssh://git:hunter2@git.example.com/r.git', 'ssh://git:***@git.example.com/r.git'),
    ('ssh://git@git.example.com:2222/r.git', 'ssh://git@git.example.com:2222/r.git'),
    ('git://127.0.0.1:9418/r.git', 'git://127.0.0.1:9418/r.git'),
    ('file:///srv/git/r.git', 'file:///srv/git/r.git'),
])
def test_a_url_is_shown_without_its_credentials(url, shown):
    assert redact_url(url) == shown


def test_a_repository_is_named_without_credentials():
    assert without_credentials('https://deploy:hunter2@git.example.com:8443/r.git') == \
        'https://git.example.com:8443/r.git'
    assert without_credentials('ssh://git@host/r.git') == 'ssh://host/r.git'
    assert without_credentials('file:///srv/r.git') == 'file:///srv/r.git'


def test_what_git_printed_loses_the_credentials_wherever_they_appear():
    url = 'https://deploy:p%40ss%3Aword@git.example.com/r.git'
    said = ("fatal: unable to access '%s/': auth as deploy with p@ss:word and p%%40ss%%3Aword failed" % url)
    cleaned = redact_text(said, url)
    assert cleaned == ("fatal: unable to access 'https://***:***@git.example.com/r.git/': auth as *** with *** and "
                       "*** failed")
    assert redact_text('nothing secret here', 'file:///srv/r.git') == 'nothing secret here'


@pytest.mark.parametrize('url', ['file:///srv/git/playbooks.git', 'ssh://git@git.example.com:2222/ops/pb.git',
                                 'https://git.example.com/ops/pb.git', 'git://127.0.0.1:9418/pb.git',
                                 'https://deploy:hunter2@[::1]:8443/pb.git'])
def test_file_ssh_https_and_git_urls_are_taken(url):
    assert check_project_url(url) == url
    assert protocol(url) in ('file', 'ssh', 'https', 'git')


@pytest.mark.parametrize('url, why', [
    ('ext::sh -c touch% /tmp/pwned', 'remote helpers'),
    ('fd::17', 'remote helpers'),
    ('-uhttps://example.com/r.git', "starts with '-'"),
    ('ssh://-oProxyCommand=touch%20x/r.git', "host starts with '-'"),
    ('https://example.com/r.git\nfile:///etc', 'control character'),
    ('http://example.com/r.git', "scheme 'http' is not allowed"),
    ('git@example.com:ops/r.git', 'no scheme'),
    ('/srv/git/r.git', 'no scheme'),
    ('file://otherhost/srv/r.git', 'absolute path on this machine'),
    ('https:///r.git', 'names no host'),
    ('https://example.com/', 'no repository path'),
])
def test_urls_git_would_read_as_something_else_are_refused(url, why):
    with pytest.raises(ValueError, match=why):
        check_project_url(url)


@pytest.mark.parametrize('name', ['main', 'release/2026.12', 'feature-x', 'v1'])
def test_branch_names_git_accepts_are_taken(name):
    assert check_branch(name) == name


@pytest.mark.parametrize('name', ['', '-main', '--upload-pack=x', 'a..b', '@{-1}', 'x y', 'HEAD', 'a.lock', 'x\ny',
                                  'refs/../x', 'a~1', 'a^', 'a:b', 'a\\b'])
def test_branch_names_git_refuses_are_refused(name):
    with pytest.raises(ValueError):
        check_branch(name)


def test_the_settings_refuse_a_hostile_url_in_one_line_without_its_password(monkeypatch, tmp_path):
    monkeypatch.setenv('DBFLEET_VAR_DIR', str(tmp_path))
    monkeypatch.setenv('DBFLEET_PROJECT_URL', 'https://deploy:hunter2@example.com/r.git\n')
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as refused:
            get_settings()
        assert str(refused.value) == 'DBFLEET_PROJECT_URL: a control character (a line break?) in the URL'
        monkeypatch.setenv('DBFLEET_PROJECT_URL', '')
        assert get_settings().project_url is None  # empty: unset, as a job's own plays see it
        get_settings.cache_clear()
        monkeypatch.setenv('DBFLEET_PROJECT_URL', 'file:///srv/r.git')
        monkeypatch.setenv('DBFLEET_PROJECT_BRANCH', 'a..b')
        with pytest.raises(SettingsError, match=r'^DBFLEET_PROJECT_BRANCH: not a valid git branch name'):
            get_settings()
        monkeypatch.setenv('DBFLEET_PROJECT_URL', '')  # without a URL the branch is not used, nor git needed
        assert get_settings().project_branch == 'a..b'
    finally:
        get_settings.cache_clear()


def test_without_git_only_what_could_be_read_as_something_else_is_refused(monkeypatch, tmp_path):
    """A machine that shares the settings file but never fetches (a bridged database host) needs no git."""
    monkeypatch.setenv('PATH', str(tmp_path))
    assert check_branch('a..b') == 'a..b'
    for name in ('-main', '@{-1}', 'x\ny'):
        with pytest.raises(ValueError):
            check_branch(name)
