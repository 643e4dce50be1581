"""jobs.project_revision: the git commit a job ran from

Revision ID: 0013
Revises: 0011 (re-pointed to 0012 when both are merged)
Create Date: 2026-12-05

With DBFLEET_PROJECT_URL the playbook project comes from git: the worker fetches the branch
before each job and records the commit it runs (40 hex digits). Jobs that ran from a local
project directory, and every job before this revision, have none.
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('project_revision', sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('project_revision')
