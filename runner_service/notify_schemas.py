"""Request and response models of notifiers and notifications (/api/v1/notifiers, /api/v1/notifications).

Which fields each kind takes, and which of them are secrets, is checked by runner_service.notify.kinds.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from runner_service.schemas import TemplateName

NotifierKind = Literal['webhook', 'email', 'slack']
# What a notifier may take for every job, whatever launched it, and for the fleet (a template
# subscribes notifiers to its own jobs' events: schemas.TemplateEvent).
NotifierEvent = Literal['failed', 'recovered', 'timed_out', 'window_overrun', 'window_overrun_predicted', 'worker_lost',
                        'slot_missed', 'slot_skipped', 'cron_missed', 'cron_failed', 'queue_unattended',
                        'backup_anomaly', 'awaiting_approval', 'backup_untested']
SecretText = Annotated[str, StringConstraints(min_length=1, max_length=65536)]
# One address, never a header of its own (no CR/LF, no comma lists).
MailAddress = Annotated[str, StringConstraints(min_length=3, max_length=254, pattern=r'^[^@\s,;<>]+@[^@\s,;<>]+$')]


class NotifierCreate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    name: TemplateName
    kind: NotifierKind
    events: list[NotifierEvent] = Field(default_factory=list, max_length=10, description="events of every job "
                                        "(and the fleet's worker_lost) this notifier hears of, whatever launched them; "
                                        "templates subscribe notifiers to their own jobs' events with `notify`")
    url: str | None = Field(default=None, min_length=1, max_length=2048, description='webhook: where to POST '
                            '(http or https); slack: the incoming webhook URL, a secret, never shown again')
    secret: SecretText | None = Field(default=None, description='webhook: the HMAC-SHA256 key that signs each '
                                      'body (header X-Dbfleet-Signature: sha256=HEX); never shown again')
    smtp_host: str | None = Field(default=None, min_length=1, max_length=255, pattern=r'^[A-Za-z0-9.:\[\]_-]+$')
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = Field(default=True, description='email: upgrade the SMTP session with STARTTLS (refused '
                           'when the server does not offer it)')
    ca_cert: SecretText | None = Field(default=None, description="email: the CA (PEM) of the SMTP server's "
                                       'certificate, else the system CAs')
    username: str | None = Field(default=None, min_length=1, max_length=255, pattern=r'^[^\x00-\x1f\x7f]+$',
                                 description='email: SMTP AUTH user')
    password: SecretText | None = Field(default=None, description='email: SMTP AUTH password; never shown again')
    mail_from: MailAddress | None = None
    mail_to: list[MailAddress] | None = Field(default=None, min_length=1, max_length=50)
    timeout_seconds: float | None = Field(default=None, gt=0, le=120, description='time limit of one attempt '
                                          '(default DBFLEET_NOTIFY_TIMEOUT_SECONDS)')


class NotifierOut(BaseModel):
    """What the API shows of a notifier: never a secret (no HMAC key, SMTP password or Slack URL)."""

    name: str
    kind: NotifierKind
    events: list[str]
    url: str | None = Field(default=None, description='webhook only (a Slack URL is a secret)')
    smtp_host: str | None = None
    smtp_port: int | None = None
    starttls: bool | None = None
    username: str | None = None
    mail_from: str | None = None
    mail_to: list[str] | None = None
    timeout_seconds: float | None = None
    signed: bool | None = Field(default=None, description='webhook: bodies carry an HMAC signature')
    created_at: dt.datetime
    created_by: str | None = None
    links: dict[str, str]


class DeliveryOut(BaseModel):
    id: int
    notifier: str
    status: Literal['pending', 'sending', 'delivered', 'failed', 'silenced']
    attempts: int
    next_attempt_at: dt.datetime | None = None
    last_error: str | None = None
    delivered_at: dt.datetime | None = None
    attempt_log: list[dict[str, Any]] = Field(description='each attempt: at, sender, ok, error')
    created_at: dt.datetime


class NotificationOut(BaseModel):
    id: int
    event: str
    subject: str
    template: str | None = None
    schedule: str | None = None
    job_id: str | None = None
    silenced_by: str | None = Field(default=None, description='the maintenance window that silenced it')
    created_at: dt.datetime
    deliveries: list[DeliveryOut]
