"""job_host_runs.worker: which worker ran each host of a planned job

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

A job's lanes are spread over the workers of its queue: each host's run records the worker
(host/pid) that ran it, and a host whose worker was lost is 'worker_lost'. Rows from before
this revision have none.
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job_host_runs') as batch:
        batch.add_column(sa.Column('worker', sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('job_host_runs') as batch:
        batch.drop_column('worker')
