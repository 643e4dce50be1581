"""`dbfleet version`: what a bug report needs to say about this installation."""

from __future__ import annotations

from runner_service import __version__
from runner_service.cli.output import console, table


def version() -> None:
    """Print the versions of dbfleet and of the Ansible it drives."""
    from importlib.metadata import version as installed_version

    from dbfleet.settings import get_settings

    settings = get_settings()
    rows = table('component', 'version')
    rows.add_row('dbfleet', __version__)
    rows.add_row('ansible-core', installed_version('ansible-core'))
    rows.add_row('ansible-runner', installed_version('ansible-runner'))
    if settings.project_url:
        from dbfleet.git_remote import redact_url
        rows.add_row('project', '%s, branch %s' % (redact_url(settings.project_url), settings.project_branch))
    else:
        rows.add_row('project dir', str(settings.project_dir))
    rows.add_row('tag rules', str(settings.tag_rules))
    console.print(rows)
