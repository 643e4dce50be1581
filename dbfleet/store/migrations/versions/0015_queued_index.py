"""jobs (status, enqueued_at) and (status, deadline) indexes: the reconciler's reads of queued jobs

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

Between its full passes the reconciler checks only the jobs queued since its last pass
(runner_service.jobs.reconciler.Presence), and every pass looks for queued jobs whose deadline
passed: with 10,000 queued, these indexes read those few instead of every queued row, every
few seconds.
"""

from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_jobs_status_enqueued_at', 'jobs', ['status', 'enqueued_at'])
    op.create_index('ix_jobs_status_deadline', 'jobs', ['status', 'deadline'])


def downgrade() -> None:
    op.drop_index('ix_jobs_status_deadline', table_name='jobs')
    op.drop_index('ix_jobs_status_enqueued_at', table_name='jobs')
