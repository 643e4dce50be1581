"""the runner service's jobs, job dependencies, job events, per-host results and audit log

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

Only new tables: an upgrade leaves the hosts, facts and tags of 0001 as they are. Types
are spelled out here rather than imported from models.py, as in 0001.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql', 'mariadb')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}

JOB_STATUSES = ('queued', 'waiting', 'running', 'successful', 'failed', 'canceled', 'timed_out', 'dependency_failed',
                'worker_lost')


def _in(name, values):
    # An expression, not text: the dialect quotes the column (`on` is a keyword in SQL).
    return sa.column(name).in_(values)


def upgrade() -> None:
    op.create_table(
        'jobs',
        sa.Column('id', sa.String(32), nullable=False),
        sa.Column('playbook', sa.String(512), nullable=False),
        sa.Column('inventory', sa.Text(), nullable=False),
        sa.Column('inventory_kind', sa.String(8), nullable=False),
        sa.Column('limit_pattern', sa.Text(), nullable=True),
        sa.Column('extra_vars', sa.JSON(), nullable=False),
        sa.Column('check_mode', sa.Boolean(), nullable=False),
        sa.Column('diff_mode', sa.Boolean(), nullable=False),
        sa.Column('forks', sa.Integer(), nullable=True),
        sa.Column('timeout_seconds', sa.Integer(), nullable=True),
        sa.Column('deadline', DATETIME, nullable=True),
        sa.Column('queue', sa.String(64), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('idempotency_key', sa.String(255), nullable=True),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('enqueued_at', DATETIME, nullable=True),
        sa.Column('started_at', DATETIME, nullable=True),
        sa.Column('finished_at', DATETIME, nullable=True),
        sa.Column('worker', sa.String(255), nullable=True),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('max_retries', sa.Integer(), nullable=False),
        sa.Column('retry_backoff_seconds', sa.Integer(), nullable=False),
        sa.Column('return_code', sa.Integer(), nullable=True),
        sa.Column('status_reason', sa.Text(), nullable=True),
        sa.Column('created_by', sa.String(255), nullable=True),
        sa.Column('relaunch_of', sa.String(32), nullable=True),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.CheckConstraint(_in('status', JOB_STATUSES), name=op.f('ck_jobs_status')),
        sa.CheckConstraint(_in('inventory_kind', ('file', 'tags')), name=op.f('ck_jobs_inventory_kind')),
        sa.ForeignKeyConstraint(['relaunch_of'], ['jobs.id'], name=op.f('fk_jobs_relaunch_of_jobs'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
        sa.UniqueConstraint('idempotency_key', name=op.f('uq_jobs_idempotency_key')),
        **MYSQL,
    )
    op.create_index(op.f('ix_jobs_status_created_at'), 'jobs', ['status', 'created_at'])
    op.create_index(op.f('ix_jobs_created_at_id'), 'jobs', ['created_at', 'id'])
    op.create_index(op.f('ix_jobs_playbook_created_at'), 'jobs', ['playbook', 'created_at'])
    op.create_index(op.f('ix_jobs_relaunch_of'), 'jobs', ['relaunch_of'])
    op.create_table(
        'job_dependencies',
        sa.Column('job_id', sa.String(32), nullable=False),
        sa.Column('depends_on_id', sa.String(32), nullable=False),
        sa.Column('on', sa.String(8), nullable=False),
        sa.CheckConstraint(_in('on', ('success', 'failure', 'always')), name=op.f('ck_job_dependencies_on')),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_dependencies_job_id_jobs'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['depends_on_id'], ['jobs.id'], name=op.f('fk_job_dependencies_depends_on_id_jobs')),
        sa.PrimaryKeyConstraint('job_id', 'depends_on_id', name=op.f('pk_job_dependencies')),
        **MYSQL,
    )
    op.create_index(op.f('ix_job_dependencies_depends_on_id'), 'job_dependencies', ['depends_on_id'])
    op.create_table(
        'job_events',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('job_id', sa.String(32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(64), nullable=True),
        sa.Column('event', sa.String(64), nullable=False),
        sa.Column('host', sa.String(255), nullable=True),
        sa.Column('task', sa.Text(), nullable=True),
        sa.Column('play', sa.Text(), nullable=True),
        sa.Column('changed', sa.Boolean(), nullable=True),
        sa.Column('failed', sa.Boolean(), nullable=True),
        sa.Column('created', DATETIME, nullable=False),
        sa.Column('stdout', LONG_TEXT, nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_events_job_id_jobs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_events')),
        sa.UniqueConstraint('job_id', 'uuid', name=op.f('uq_job_events_job_id_uuid')),
        **MYSQL,
    )
    op.create_index(op.f('ix_job_events_job_id_seq'), 'job_events', ['job_id', 'seq'])
    op.create_index(op.f('ix_job_events_job_id_host'), 'job_events', ['job_id', 'host'])
    op.create_table(
        'job_host_results',
        sa.Column('job_id', sa.String(32), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False)
          for name in ('ok', 'changed', 'failed', 'unreachable', 'skipped', 'rescued', 'ignored')],
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_host_results_job_id_jobs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'host', name=op.f('pk_job_host_results')),
        **MYSQL,
    )
    op.create_table(
        'audit_log',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('at', DATETIME, nullable=False),
        sa.Column('actor', sa.String(255), nullable=False),
        sa.Column('action', sa.String(32), nullable=False),
        sa.Column('target', sa.String(255), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
        **MYSQL,
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'])
    op.create_index(op.f('ix_audit_log_actor_at'), 'audit_log', ['actor', 'at'])
    op.create_index(op.f('ix_audit_log_action_at'), 'audit_log', ['action', 'at'])


def downgrade() -> None:
    op.drop_table('audit_log')
    op.drop_table('job_host_results')
    op.drop_table('job_events')
    op.drop_table('job_dependencies')
    op.drop_table('jobs')
