"""The `dbfleet` command line (the console script is runner_service.cli:main).

app.py assembles the commands; each group lives in its own module: hosts, tags, store, tokens,
audit, jobs, schedules, pools, plans, windows, cron, templates, service (api, worker, scheduler,
up, reconcile) and version. What they share sits below them: options (options declared once),
inputs (what the user typed, read into the API's request models), output (printing) and
job_view (following a launched job).
"""

from runner_service.cli.app import app, main

__all__ = ['app', 'main']
