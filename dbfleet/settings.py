"""dbfleet's configuration: one place, read from DBFLEET_* environment variables."""

from __future__ import annotations

import socket
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dbfleet.git_remote import check_branch, check_project_url
from dbfleet.paths import CHECKOUT, config_file, state_directory


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix='DBFLEET_', extra='ignore', env_file=config_file())

    # var_dir comes first: the store's and the project's defaults are inside it.
    var_dir: Path = Field(default_factory=state_directory, description='runtime files: job run directories, '
                          'secret key, the default store (default: the checkout\'s var/, else /var/lib/dbfleet '
                          'for root, else $XDG_STATE_HOME/dbfleet)')
    store_url: str = Field(default_factory=lambda data: 'sqlite:///%s' % (data['var_dir'] / 'dbfleet.db'),
                           description='SQLAlchemy URL of the store (sqlite:///path or mysql+pymysql://...)')
    redis_url: str = Field(default='redis://127.0.0.1:6379/0', pattern=r'^(redis|rediss|unix|redis\+sentinel)://\S+$',
                           description='Redis holding the job queues: redis://, rediss://, unix:// or, for a master '
                           'found through Sentinel, redis+sentinel://host:26379,host2:26379/MASTER_NAME')
    project_dir: Path = Field(default_factory=lambda data: CHECKOUT or data['var_dir'] / 'project',
                              description='playbook root (default: the checkout, else var_dir/project)')
    project_url: str | None = Field(default=None, repr=False, description='git URL (file://, ssh://, https://, '
                                    'git://) the playbook project comes from: each worker fetches its branch before a '
                                    'job and runs the job from that commit (unset: the project is project_dir)')
    project_branch: str = Field(default='main', description='the branch of project_url jobs run')
    project_fetch_seconds: float = Field(default=120.0, gt=0, description='time limit of fetching project_url '
                                         'before a job: the job fails when it is reached')
    tag_rules: Path = Field(default_factory=lambda data: data['project_dir'] / 'inventories' / 'tag_rules.yml',
                            description='tag rules file')
    api_url: str = Field(default='http://127.0.0.1:8080', description='where the CLI finds the API')
    token: str | None = Field(default=None, description='bearer token the CLI sends', repr=False)
    secret_key: str | None = Field(default=None, repr=False,
                                   description='Fernet key for secret extra vars at rest (else var/secret.key)')
    keep_runs: int = Field(default=200, ge=1, description='job run directories (ansible-runner artifacts) kept: '
                           'the newest this many')
    keep_runs_days: float | None = Field(default=None, gt=0, description='job run directories older than this many '
                                         'days are removed too, however few there are (default: no age limit)')
    keep_events_days: float | None = Field(default=None, gt=0, description='the events (output, per-task results) '
                                           'of jobs that ended more than this many days ago are deleted by the '
                                           'API\'s reconciler, hourly, in small batches; the jobs stay (default: '
                                           'kept for ever)')
    keep_notifications_days: float | None = Field(default=90, gt=0, description='notifications stored more '
                                                  'than this many days ago, whose deliveries are all over, are deleted '
                                                  'with their deliveries by the API\'s reconciler, hourly')
    untested_backup_days: float = Field(default=30, gt=0, description='a host with a successful backup and no '
                                        'successful restore drill for this many days (counted from its first backup '
                                        'when never drilled) is told to the notifiers that take backup_untested; the '
                                        'tag rule untested_backup has its own threshold (vars.untested_backup_days)')
    max_extra_vars_bytes: int = Field(default=65536, ge=1024, description='size cap of a job\'s extra_vars as JSON')
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, description='a request body larger than this is '
                                   'refused (413) before it is parsed')
    ansible_call_seconds: float = Field(default=30.0, gt=0, description='time limit of an API call that runs Ansible '
                                        '(plan previews list hosts): 504 when reached')
    ansible_call_memory_bytes: int = Field(default=2 * 1024 ** 3, ge=64 * 1024 ** 2, description='address space '
                                           '(RLIMIT_AS) of each Ansible process an API call starts: 413 when reached')
    inventory_dirs: list[str] = Field(default_factory=lambda: ['inventories'], description='where inventories are, '
                                      'relative to the project directory (JSON list in the environment)')
    worker_stop_seconds: float = Field(default=60.0, gt=0, description='a worker asked to stop (SIGTERM) takes no '
                                       'new job and gives its running one this long to end; then it stops the play '
                                       'and records the job worker_lost (retried when its policy allows)')
    lanes_per_worker: int | None = Field(default=None, ge=1, description='the most lanes of one job a worker runs '
                                         'at once (default: an even share, the job\'s lanes divided by the workers '
                                         'listening to its queue); the worker that took the job asks the queue\'s '
                                         'other workers to run the rest')
    reconcile_seconds: float = Field(default=5.0, gt=0, description='how often the reconciler runs')
    reconcile_full_seconds: float = Field(default=300.0, gt=0, description='how often the reconciler checks every '
                                          'queued job against Redis; between, only the jobs queued since its last '
                                          'pass, unless Redis may have lost data (restarted, failed over, flushed)')
    lost_after_seconds: float = Field(default=15.0, gt=0,
                                      description='a running job without a heartbeat this long is worker_lost')
    notify_seconds: float = Field(default=2.0, gt=0, le=3600, description='how often the API notices job ends '
                                  'and sends the notifications that are due')
    notify_backoff_seconds: float = Field(default=30.0, gt=0, le=86400, description='a failed delivery is tried '
                                          'again after this long, doubling each time (at most an hour)')
    notify_attempts: int = Field(default=8, ge=1, le=100, description='attempts of a delivery before it is failed')
    notify_timeout_seconds: float = Field(default=10.0, gt=0, le=300, description='time limit of one delivery '
                                          'attempt (HTTP request or SMTP session)')

    api_host: str = Field(default='127.0.0.1', min_length=1, description='address `dbfleet api` listens on')
    api_port: int = Field(default=8080, ge=1, le=65535, description='port `dbfleet api` listens on')
    api_tls_cert: Path | None = Field(default=None, description='PEM certificate (chain) of the API: with '
                                      'api_tls_key, `dbfleet api` serves HTTPS only')
    api_tls_key: Path | None = Field(default=None, description='PEM private key of api_tls_cert (unencrypted)')
    api_proxy_headers: bool = Field(default=False, description='behind a reverse proxy: take the client address '
                                    '(X-Forwarded-For) and scheme (X-Forwarded-Proto) from the proxies of '
                                    'api_forwarded_allow_ips')
    api_forwarded_allow_ips: str = Field(default='127.0.0.1,::1', min_length=1, description='comma-separated '
                                         'addresses or networks of the proxies whose X-Forwarded-* headers are '
                                         'believed (with api_proxy_headers); anyone else\'s are ignored')
    api_access_log: bool = Field(default=False, description='one log line per request with the client address')
    metrics_auth: bool = Field(default=True, description='GET /metrics asks for a bearer token of role viewer or '
                               'above (Prometheus: authorization credentials_file); off: anyone who reaches the API '
                               'reads it (host, template, schedule and queue names, counts and times)')

    host: str = Field(default_factory=socket.gethostname, description='this host\'s name on the platform '
                      '(crontab bridge: the host its imported entries belong to)')
    cron_spool: Path | None = Field(default=None, description='where `dbfleet cron exec` keeps reports the API did '
                                    'not take yet, and the watchdog its state (default var/cron-spool)')
    cron_fallback_seconds: float = Field(default=300.0, gt=0, description='the watchdog gives taken-over entries '
                                         'back to crontab after the platform has been unreachable this long')

    @field_validator('project_url')
    @classmethod
    def _project_url(cls, value: str | None) -> str | None:
        return check_project_url(value) if value else None  # empty: unset (a job's own plays see it so)

    @model_validator(mode='after')
    def _project_branch(self) -> 'Settings':
        if self.project_url is not None:  # git checks the name: only needed (and installed) with a URL
            try:
                check_branch(self.project_branch)
            except ValueError as exc:
                raise ValueError('DBFLEET_PROJECT_BRANCH: %s' % exc) from None
        return self

    def model_post_init(self, context) -> None:
        if self.cron_spool is None:
            self.cron_spool = self.var_dir / 'cron-spool'

    @property
    def runs_dir(self) -> Path:
        return self.var_dir / 'runs'

    @property
    def secret_key_file(self) -> Path:
        return self.var_dir / 'secret.key'


class SettingsError(ValueError):
    """A DBFLEET_* value the settings refuse, in one line naming the variable (never its value:
    a project URL may carry a password)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(settings_message(exc)) from None


def settings_message(error: ValidationError) -> str:
    # A default computed from a refused value is not a second mistake.
    errors = [item for item in error.errors(include_input=False) if item['type'] != 'default_factory_not_called']
    first = errors[0]
    message = first['msg'].removeprefix('Value error, ')
    if first['loc']:  # a field's own check; a check of several fields names its variable itself
        message = 'DBFLEET_%s: %s' % (str(first['loc'][0]).upper(), message)
    more = ' (and %d more)' % (len(errors) - 1) if len(errors) > 1 else ''
    return message + more
