"""schedules and the record of each of their slots

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

A schedule is a trigger (cron, interval or once, in a time zone), the policies that decide
what a due slot does, and a job template. schedule_slots keeps what happened at each slot
(fired, skipped, missed); its primary key is what lets two schedulers fire a slot only once.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def _in(name, values):
    return sa.column(name).in_(values)


def upgrade() -> None:
    op.create_table(
        'schedules',
        sa.Column('id', sa.String(32), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('kind', sa.String(8), nullable=False),
        sa.Column('expression', sa.String(255), nullable=False),
        sa.Column('timezone', sa.String(64), nullable=False),
        sa.Column('job', sa.JSON(), nullable=False),
        sa.Column('secret_vars', sa.Text(), nullable=True),
        sa.Column('overlap', sa.String(8), nullable=False),
        sa.Column('misfire_grace_seconds', sa.Integer(), nullable=False),
        sa.Column('catch_up', sa.String(8), nullable=False),
        sa.Column('jitter_seconds', sa.Integer(), nullable=False),
        sa.Column('paused', sa.Boolean(), nullable=False),
        sa.Column('next_fire_at', DATETIME, nullable=True),
        sa.Column('last_fire_at', DATETIME, nullable=True),
        sa.Column('last_job_id', sa.String(32), nullable=True),
        sa.Column('source', sa.JSON(), nullable=True),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('updated_at', DATETIME, nullable=False),
        sa.Column('created_by', sa.String(255), nullable=True),
        sa.CheckConstraint(_in('kind', ('cron', 'interval', 'once')), name=op.f('ck_schedules_kind')),
        sa.CheckConstraint(_in('overlap', ('allow', 'forbid', 'replace')), name=op.f('ck_schedules_overlap')),
        sa.CheckConstraint(_in('catch_up', ('skip', 'once')), name=op.f('ck_schedules_catch_up')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_schedules')),
        sa.UniqueConstraint('name', name=op.f('uq_schedules_name')),
        **MYSQL,
    )
    op.create_index(op.f('ix_schedules_paused_next_fire_at'), 'schedules', ['paused', 'next_fire_at'])
    op.create_table(
        'schedule_slots',
        sa.Column('schedule_id', sa.String(32), nullable=False),
        sa.Column('slot_at', DATETIME, nullable=False),
        sa.Column('outcome', sa.String(8), nullable=False),
        sa.Column('job_id', sa.String(32), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('recorded_at', DATETIME, nullable=False),
        sa.CheckConstraint(_in('outcome', ('fired', 'skipped', 'missed')), name=op.f('ck_schedule_slots_outcome')),
        sa.ForeignKeyConstraint(['schedule_id'], ['schedules.id'], name=op.f('fk_schedule_slots_schedule_id_schedules'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('schedule_id', 'slot_at', name=op.f('pk_schedule_slots')),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table('schedule_slots')
    op.drop_table('schedules')
