"""dbfleet's configuration: one place, read from DBFLEET_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runner_service.paths import REPO_ROOT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix='DBFLEET_', extra='ignore')

    store_url: str = Field(default_factory=lambda: 'sqlite:///%s' % (REPO_ROOT / 'var' / 'dbfleet.db'),
                           description='SQLAlchemy URL of the store (sqlite:///path or mysql+pymysql://...)')
    redis_url: str = Field(default='redis://127.0.0.1:6379/0', description='Redis holding the job queues')
    project_dir: Path = Field(default=REPO_ROOT, description='playbook root')
    tag_rules: Path = Field(default=REPO_ROOT / 'inventories' / 'tag_rules.yml', description='tag rules file')
    api_url: str = Field(default='http://127.0.0.1:8080', description='where the CLI finds the API')
    token: str | None = Field(default=None, description='bearer token the CLI sends', repr=False)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
