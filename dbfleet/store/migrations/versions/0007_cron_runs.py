"""cron_runs: what crontab entries bridged to dbfleet did, as their wrapper reported it

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

One row per run of a crontab entry wrapped by `dbfleet cron exec` (observe mode, or a
taken-over entry that crontab ran while the platform was unreachable). The wrapper makes the
id, so a report spooled while the API was down and delivered later lands on the same row.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def _in(name, values):
    return sa.column(name).in_(values)


def upgrade() -> None:
    op.create_table(
        'cron_runs',
        sa.Column('id', sa.String(32), nullable=False),
        sa.Column('schedule_id', sa.String(32), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('via', sa.String(8), nullable=False),
        sa.Column('status', sa.String(8), nullable=False),
        sa.Column('slot_at', DATETIME, nullable=True),
        sa.Column('started_at', DATETIME, nullable=False),
        sa.Column('finished_at', DATETIME, nullable=True),
        sa.Column('exit_code', sa.Integer(), nullable=True),
        sa.Column('duration_seconds', sa.Double(), nullable=True),
        sa.Column('output_tail', sa.Text(), nullable=True),
        sa.Column('received_at', DATETIME, nullable=False),
        sa.CheckConstraint(_in('status', ('running', 'ok', 'failed', 'skipped')), name=op.f('ck_cron_runs_status')),
        sa.CheckConstraint(_in('via', ('observe', 'fallback')), name=op.f('ck_cron_runs_via')),
        sa.ForeignKeyConstraint(['schedule_id'], ['schedules.id'], name=op.f('fk_cron_runs_schedule_id_schedules'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cron_runs')),
        **MYSQL,
    )
    op.create_index(op.f('ix_cron_runs_schedule_id_started_at'), 'cron_runs', ['schedule_id', 'started_at'])
    op.create_index(op.f('ix_cron_runs_schedule_id_slot_at'), 'cron_runs', ['schedule_id', 'slot_at'])


def downgrade() -> None:
    op.drop_table('cron_runs')
