"""what the running service needs: job heartbeats and secrets, job tags, API tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

jobs gains the encrypted secret extra vars (never readable through the API), the heartbeat
its worker writes while it runs (the reconciler marks a job worker_lost when it stops) and
where its ansible-playbook runs (so a lost job's processes can be killed). job_tags records the
tags a tag-expression job names, for `GET /jobs?tag=`. api_tokens holds bearer tokens, hashed.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}
ROLES = ('viewer', 'operator', 'admin')


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('secret_vars', sa.Text(), nullable=True))
        batch.add_column(sa.Column('heartbeat_at', DATETIME, nullable=True))
        batch.add_column(sa.Column('runner_host', sa.String(255), nullable=True))
        batch.add_column(sa.Column('runner_pid', sa.Integer(), nullable=True))
    op.create_table(
        'job_tags',
        sa.Column('job_id', sa.String(32), nullable=False),
        sa.Column('tag', sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_tags_job_id_jobs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'tag', name=op.f('pk_job_tags')),
        **MYSQL,
    )
    op.create_index(op.f('ix_job_tags_tag'), 'job_tags', ['tag'])
    op.create_table(
        'api_tokens',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('role', sa.String(16), nullable=False),
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('created_by', sa.String(255), nullable=True),
        sa.Column('revoked_at', DATETIME, nullable=True),
        sa.Column('last_used_at', DATETIME, nullable=True),
        sa.CheckConstraint(sa.column('role').in_(ROLES), name=op.f('ck_api_tokens_role')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('name', name=op.f('uq_api_tokens_name')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash')),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table('api_tokens')
    op.drop_table('job_tags')
    with op.batch_alter_table('jobs') as batch:
        for name in ('runner_pid', 'runner_host', 'heartbeat_at', 'secret_vars'):
            batch.drop_column(name)
