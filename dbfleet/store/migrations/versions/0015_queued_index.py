"""jobs (status, enqueued_at) index: the reconciler's recently queued jobs

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05

Between its full passes the reconciler checks only the jobs queued since its last pass
(runner_service.jobs.reconciler.Presence): with 10,000 queued, the index reads those few
instead of every queued row.
"""

from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_jobs_status_enqueued_at', 'jobs', ['status', 'enqueued_at'])


def downgrade() -> None:
    op.drop_index('ix_jobs_status_enqueued_at', table_name='jobs')
