"""What can go wrong with the store, as exceptions a CLI or API can print as they are.

Every message is one line that names the (password-masked) store URL or the missing
object and says what to do; none of them ever carries a password.
"""

from __future__ import annotations

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError


class StoreError(Exception):
    """Base class: anything the store refuses or cannot do."""


class StoreNotMigrated(StoreError):
    """The database's schema revision is not the one this dbfleet was written for."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened (host, port, credentials, file path)."""


class UnknownHost(StoreError, LookupError):
    def __init__(self, name: str):
        super().__init__('no host named %s in the store' % name)
        self.name = name


class UnknownToken(StoreError, LookupError):
    def __init__(self, name: str):
        super().__init__("no API token named %s in the store: 'dbfleet tokens list --all' shows them all" % name)
        self.name = name


def masked(url: URL) -> str:
    """The URL as it may appear in messages and logs: password replaced by ***."""
    return url.render_as_string(hide_password=True)


def unavailable(url: URL, cause: BaseException) -> StoreUnavailable:
    """A StoreUnavailable naming the masked URL and the driver's reason, on one line."""
    reason = driver_reason(cause)
    if url.password:
        # Drivers do not echo passwords today; make sure a future one cannot leak it either.
        reason = reason.replace(str(url.password), '***')
    return StoreUnavailable('store %s is unavailable: %s' % (masked(url), reason))


# MySQL client/server codes that mean "cannot get to the database at all": access denied,
# unknown database, cannot connect, server gone away, connection lost.
_UNREACHABLE_MYSQL_CODES = {1044, 1045, 1049, 2002, 2003, 2005, 2006, 2013}


def is_unreachable(error: DBAPIError) -> bool:
    """Whether a driver error means the store cannot be reached or opened (rather than a failed statement)."""
    if error.connection_invalidated:
        return True
    args = getattr(error.orig, 'args', ())
    if args and isinstance(args[0], int):
        return args[0] in _UNREACHABLE_MYSQL_CODES
    return 'unable to open database file' in str(error.orig)


def driver_reason(error: BaseException) -> str:
    """The useful part of a driver error: PyMySQL's (code, text) as 'text (MySQL error code)'."""
    original = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    args = getattr(original, 'args', ())
    if len(args) == 2 and isinstance(args[0], int):
        text = '%s (MySQL error %d)' % (args[1], args[0])
    else:
        text = str(original) or type(original).__name__
    return ' '.join(text.split())
