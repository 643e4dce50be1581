"""job_templates; jobs.template; api_tokens.templates

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

A job template is what an operator may launch: an admin-defined playbook, inventory and
defaults, and a survey of the extra vars a launch may set (runner_service.templates.service). A job
records the template that launched it; a token may be limited to a list of templates.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def upgrade() -> None:
    op.create_table(
        'job_templates',
        sa.Column('id', BIG_ID, nullable=False, autoincrement=True),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('definition', sa.JSON(), nullable=False),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('created_by', sa.String(255), nullable=True),
        sa.Column('updated_at', DATETIME, nullable=False),
        sa.Column('updated_by', sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_templates')),
        sa.UniqueConstraint('name', name=op.f('uq_job_templates_name')),
        **MYSQL,
    )
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('template', sa.String(255), nullable=True))
        batch.create_index(batch.f('ix_jobs_template_created_at'), ['template', 'created_at'])
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('templates', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('templates')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_index(batch.f('ix_jobs_template_created_at'))
        batch.drop_column('template')
    op.drop_table('job_templates')
