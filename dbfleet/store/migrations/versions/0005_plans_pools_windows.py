"""batch plans on jobs (lanes, rolling batches, pools), per-host runs, pools and their leases,
maintenance windows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

jobs.plan holds a job's batch plan; job_host_runs records when each host of a planned job ran,
in which lane or batch (timelines, and the proof that lanes never overlap). pools are named
concurrency limits; pool_leases are the slots taken (a lease whose holder stops renewing it
expires). maintenance_windows are blackout periods; schedules.window_policy says whether a
schedule's slot inside one is skipped or deferred to the window's end.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def _in(name, values):
    return sa.column(name).in_(values)


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('plan', sa.JSON(), nullable=True))
    with op.batch_alter_table('schedules') as batch:
        batch.add_column(sa.Column('window_policy', sa.String(8), nullable=False, server_default='skip'))
    op.create_table(
        'job_host_runs',
        sa.Column('job_id', sa.String(32), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('lane', sa.Integer(), nullable=True),
        sa.Column('batch', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(12), nullable=False),
        sa.Column('estimate_seconds', sa.Float(), nullable=True),
        sa.Column('started_at', DATETIME, nullable=True),
        sa.Column('finished_at', DATETIME, nullable=True),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_host_runs_job_id_jobs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'host', name=op.f('pk_job_host_runs')),
        **MYSQL,
    )
    op.create_table(
        'pools',
        sa.Column('name', sa.String(64), nullable=False),
        sa.Column('slots', sa.Integer(), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_pools')),
        **MYSQL,
    )
    op.create_table(
        'pool_leases',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('pool', sa.String(64), nullable=False),
        sa.Column('holder', sa.String(255), nullable=False),
        sa.Column('acquired_at', DATETIME, nullable=False),
        sa.Column('renewed_at', DATETIME, nullable=False),
        sa.ForeignKeyConstraint(['pool'], ['pools.name'], name=op.f('fk_pool_leases_pool_pools'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pool_leases')),
        sa.UniqueConstraint('pool', 'holder', name=op.f('uq_pool_leases_pool')),
        **MYSQL,
    )
    op.create_table(
        'maintenance_windows',
        sa.Column('id', sa.String(32), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('kind', sa.String(10), nullable=False),
        sa.Column('start', sa.String(255), nullable=False),
        sa.Column('duration_seconds', sa.Integer(), nullable=False),
        sa.Column('timezone', sa.String(64), nullable=False),
        sa.Column('tags', sa.Text(), nullable=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('created_by', sa.String(255), nullable=True),
        sa.CheckConstraint(_in('kind', ('recurring', 'absolute')), name=op.f('ck_maintenance_windows_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows')),
        sa.UniqueConstraint('name', name=op.f('uq_maintenance_windows_name')),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table('maintenance_windows')
    op.drop_table('pool_leases')
    op.drop_table('pools')
    op.drop_table('job_host_runs')
    with op.batch_alter_table('schedules') as batch:
        batch.drop_column('window_policy')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('plan')
