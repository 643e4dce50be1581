"""The git repository a playbook project may come from (DBFLEET_PROJECT_URL, DBFLEET_PROJECT_BRANCH):
what the settings accept, and how a URL is shown without its credentials.

A URL is handed to `git fetch` as an argument, so what git would read as something else is
refused here, at settings load: an option (a leading '-', also as an ssh host), a remote helper
(`ext::` runs a command; only file, ssh, https and git URLs are taken), a line break. A branch
must be a name `git check-ref-format --branch` accepts (no `@{-1}`, no '..', no option).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from urllib.parse import unquote, urlsplit

PROTOCOLS = ('file', 'ssh', 'https', 'git')
HIDDEN = '***'


def check_project_url(url: str) -> str:
    """`url` when git may fetch it as a project, else ValueError saying why (never quoting a
    credential the URL carries)."""
    if any(ord(character) < 0x20 or ord(character) == 0x7f for character in url):
        raise ValueError('a control character (a line break?) in the URL')
    if url.startswith('-'):
        raise ValueError("the URL starts with '-': git would read it as an option")
    if '::' in url.split('/', 1)[0]:
        raise ValueError('remote helpers (%s) are refused: use a file://, ssh://, https:// or git:// URL'
                         % url.split('::', 1)[0][:20])
    parts = urlsplit(url)
    if parts.scheme not in PROTOCOLS:
        raise ValueError('%s: use a file://, ssh://, https:// or git:// URL' % (
            'no scheme' if not parts.scheme else 'scheme %r is not allowed' % parts.scheme[:20]))
    if parts.scheme == 'file':
        if parts.netloc not in ('', 'localhost') or not parts.path.startswith('/'):
            raise ValueError('a file:// URL names an absolute path on this machine: file:///path/to/repo.git')
    else:
        host = parts.hostname or ''
        if not host:
            raise ValueError('the %s:// URL names no host' % parts.scheme)
        if host.startswith('-'):
            raise ValueError("the host starts with '-': ssh would read it as an option")
    if not parts.path.strip('/'):
        raise ValueError('the URL names no repository path')
    return url


def check_branch(name: str) -> str:
    """`name` when it is a branch name git accepts, else ValueError. The checks that keep it
    from being read as anything else come first; git itself (`git check-ref-format --branch`)
    has the last word where it is installed. A machine without git (a bridged database host
    sharing the settings file) never fetches, and a worker without git fails each job saying so."""
    if not name or name.startswith('-') or any(ord(character) < 0x20 or ord(character) == 0x7f
                                               for character in name):
        raise ValueError("not a branch name: empty, starting with '-', or with a control character")
    if '@{' in name:
        raise ValueError("'@{' is refused: name the branch itself")
    git = shutil.which('git')
    if git is None:
        return name
    # Run outside any repository, so that nothing is resolved against one.
    checked = subprocess.run([git, 'check-ref-format', '--branch', name], capture_output=True, text=True,
                             cwd='/', env=dict(os.environ, GIT_DIR='/nonexistent', LC_ALL='C'), timeout=30)
    if checked.returncode != 0:
        raise ValueError('not a valid git branch name (git check-ref-format --branch)')
    return name


def protocol(url: str) -> str:
    """The URL's protocol as GIT_ALLOW_PROTOCOL names it."""
    return urlsplit(url).scheme


def redact_url(url: str) -> str:
    """`url` fit to show: a password is hidden, and every https user name too (it is often a token)."""
    parts = urlsplit(url)
    if '@' not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit('@', 1)
    if ':' in userinfo:
        shown = '%s:%s' % (userinfo.split(':', 1)[0] if parts.scheme != 'https' else HIDDEN, HIDDEN)
    else:
        shown = HIDDEN if parts.scheme == 'https' else userinfo
    return parts._replace(netloc='%s@%s' % (shown, host)).geturl()


def without_credentials(url: str) -> str:
    """`url` with no user name nor password: which repository it names, whoever asks."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rsplit('@', 1)[-1]).geturl()


def redact_text(text: str, url: str) -> str:
    """`text` (what git printed) with the URL shown as redact_url shows it, and whatever secret
    the URL carries removed wherever else it appears (raw or percent-decoded)."""
    text = text.replace(url, redact_url(url))
    netloc = urlsplit(url).netloc
    if '@' in netloc:
        userinfo = netloc.rsplit('@', 1)[0]
        user, _, password = userinfo.partition(':')
        secrets = [password] if password else []
        if urlsplit(url).scheme == 'https':
            secrets.append(user)
        for secret in sorted({value for item in secrets for value in (item, unquote(item)) if value},
                             key=len, reverse=True):
            text = text.replace(secret, HIDDEN)
    return text
