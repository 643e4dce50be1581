"""Redis URLs: a plain Redis (redis://, rediss://, unix://) or one found through Sentinel.

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER_NAME[/DB][?sentinel_password=...]

Sentinel gives the address of the current master; redis-py's Sentinel-managed pool asks again
when the master fails over, so a client built here follows a failover by itself (calls in
flight during one fail with ConnectionError: RQ's worker retries its dequeue, the store keeps
every job, and the reconciler puts back any that Redis lost).
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qs, unquote, urlsplit

SCHEME = 'redis+sentinel'
DEFAULT_SENTINEL_PORT = 26379
MASTER_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,63}')
HOST = re.compile(r'[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:]+\]')
KNOWN_OPTIONS = {'sentinel_password', 'sentinel_username'}


class RedisUrlError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    username: str | None
    password: str | None
    sentinel_username: str | None
    sentinel_password: str | None


def is_sentinel(url: str) -> bool:
    return url.startswith(SCHEME + '://')


def parse_sentinel(url: str) -> SentinelUrl:
    """The parts of a redis+sentinel:// URL, each checked; RedisUrlError says what is wrong (never
    quoting a password)."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise RedisUrlError('not a %s:// URL' % SCHEME)
    userinfo, _, hosts = parts.netloc.rpartition('@')
    username = password = None
    if userinfo:
        user, _, secret = userinfo.partition(':')
        username, password = unquote(user) or None, unquote(secret) or None
    sentinels = []
    for item in hosts.split(','):
        if item.startswith('['):  # [IPv6]:port
            host, _, rest = item.partition(']')
            host, port = host + ']', rest[1:] if rest.startswith(':') else rest
        else:
            host, _, port = item.partition(':')
        if not HOST.fullmatch(host):
            raise RedisUrlError('redis+sentinel URL: %r is not a host name or address' % host[:80])
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise RedisUrlError('redis+sentinel URL: port %r of %s is not 1..65535' % (port[:10], host))
        sentinels.append((host.strip('[]'), int(port) if port else DEFAULT_SENTINEL_PORT))
    path = [segment for segment in parts.path.split('/') if segment]
    if not path or len(path) > 2:
        raise RedisUrlError('redis+sentinel URL: the path must be /MASTER_NAME or /MASTER_NAME/DB')
    if not MASTER_NAME.fullmatch(path[0]):
        raise RedisUrlError('redis+sentinel URL: %r is not a master name' % path[0][:80])
    if len(path) == 2 and not (path[1].isdigit() and int(path[1]) < 16):
        raise RedisUrlError('redis+sentinel URL: database %r is not 0..15' % path[1][:10])
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise RedisUrlError('redis+sentinel URL: unknown option %s (known: %s)' % (unknown[0][:40],
                                                                                ', '.join(sorted(KNOWN_OPTIONS))))
    return SentinelUrl(sentinels=tuple(sentinels), master=path[0], db=int(path[1]) if len(path) == 2 else 0,
                       username=username, password=password,
                       sentinel_username=(options.get('sentinel_username') or [None])[0],
                       sentinel_password=(options.get('sentinel_password') or [None])[0])


def _sentinel_kwargs(parsed: SentinelUrl) -> dict:
    return {key: value for key, value in (('username', parsed.sentinel_username),
                                          ('password', parsed.sentinel_password)) if value}


def _master_kwargs(parsed: SentinelUrl, options: dict) -> dict:
    kwargs = dict(options, db=parsed.db)
    if parsed.username:
        kwargs['username'] = parsed.username
    if parsed.password:
        kwargs['password'] = parsed.password
    return kwargs


def connect(url: str, **options):
    """A redis-py client for the URL; `options` go to every connection (timeouts, client info)."""
    from redis import Redis
    from redis.sentinel import Sentinel

    return _client(url, Redis, Sentinel, options)


def connect_async(url: str, **options):
    """The asyncio client for the URL (the API's live streams)."""
    from redis.asyncio import Redis
    from redis.asyncio.sentinel import Sentinel

    return _client(url, Redis, Sentinel, options)


def _client(url: str, redis_class, sentinel_class, options: dict):
    if not is_sentinel(url):
        return redis_class.from_url(url, **options)
    parsed = parse_sentinel(url)
    sentinel = sentinel_class(list(parsed.sentinels), socket_timeout=options.get('socket_connect_timeout', 5),
                              sentinel_kwargs=_sentinel_kwargs(parsed))
    return sentinel.master_for(parsed.master, **_master_kwargs(parsed, options))


def redacted(url: str) -> str:
    """The URL without its passwords, for messages and logs."""
    url = re.sub(r'(://[^/@]*?:)[^/@]*@', r'\1***@', url)
    return re.sub(r'(sentinel_password=)[^&]*', r'\1***', url)
