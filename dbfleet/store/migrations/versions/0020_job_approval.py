"""jobs awaiting an admin's approval: statuses awaiting_approval, rejected, expired, and who decided

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05

A job template may require approval (runner_service.templates: `approval: {required, timeout}`):
its jobs are created awaiting_approval, wait outside the queue until a second admin approves
(they are then queued, or wait for their dependencies) or rejects them, or until
approval_expires_at passes (expired). approval_timeout_seconds says the job needed approval and
for how long (a relaunch needs it again); approval_decided_by / approval_decided_at say who
approved or rejected it and when.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BEFORE = ('queued', 'waiting', 'running', 'successful', 'failed', 'canceled', 'timed_out', 'dependency_failed',
          'worker_lost')
AFTER = BEFORE + ('awaiting_approval', 'rejected', 'expired')


def _status_check(batch, statuses) -> None:
    batch.drop_constraint(op.f('ck_jobs_status'), type_='check')
    batch.create_check_constraint(op.f('ck_jobs_status'), sa.column('status').in_(statuses))


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('approval_timeout_seconds', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('approval_expires_at', DATETIME, nullable=True))
        batch.add_column(sa.Column('approval_decided_by', sa.String(255), nullable=True))
        batch.add_column(sa.Column('approval_decided_at', DATETIME, nullable=True))
        _status_check(batch, AFTER)


def downgrade() -> None:
    op.execute("UPDATE jobs SET status = 'canceled' WHERE status IN ('awaiting_approval', 'rejected', 'expired')")
    with op.batch_alter_table('jobs') as batch:
        _status_check(batch, BEFORE)
        for name in ('approval_decided_at', 'approval_decided_by', 'approval_expires_at', 'approval_timeout_seconds'):
            batch.drop_column(name)
