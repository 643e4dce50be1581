"""redis+sentinel:// URLs are checked part by part, and passwords never reach a message."""

from __future__ import annotations

import pytest

from runner_service.redis_urls import RedisUrlError, parse_sentinel, redacted


def test_a_sentinel_url_gives_its_parts():
    parsed = parse_sentinel('redis+sentinel://:s3cret@10.0.0.1:26380,sentinel-b,[fd00::5]:26379/dbfleet/2'
                            '?sentinel_password=other')
    assert parsed.sentinels == (('10.0.0.1', 26380), ('sentinel-b', 26379), ('fd00::5', 26379))
    assert (parsed.master, parsed.db, parsed.password, parsed.sentinel_password) == ('dbfleet', 2, 's3cret', 'other')


@pytest.mark.parametrize('url, message', [
    ('redis+sentinel://h1:26379', 'the path must be'),
    ('redis+sentinel://h1:0/m', 'not 1..65535'),
    ('redis+sentinel://h1:x/m', 'not 1..65535'),
    ('redis+sentinel://-rf:1/m', 'not a host name'),
    ('redis+sentinel://h1/m/99', 'database'),
    ('redis+sentinel://h1/m$/0', 'not a master name'),
    ('redis+sentinel://h1/m?ssl_certfile=/etc/shadow', 'unknown option'),
])
def test_a_bad_sentinel_url_is_refused_with_the_reason(url, message):
    with pytest.raises(RedisUrlError, match=message) as caught:
        parse_sentinel(url.replace('://', '://:hunter2@'))
    assert 'hunter2' not in str(caught.value)


def test_redacted_hides_passwords():
    assert redacted('redis+sentinel://:pw@h1/m?sentinel_password=x') == 'redis+sentinel://:***@h1/m?sentinel_password=***'
    assert redacted('redis://user:pw@h:6379/0') == 'redis://user:***@h:6379/0'
