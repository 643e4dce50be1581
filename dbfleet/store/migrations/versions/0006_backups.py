"""backups: every backup attempt of a host, with its duration, size, checksum and binlog position

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Written by the dbfleet.mysql.mysql_backup action plugin, successful and failed attempts alike
(status, error). The host is kept by name, as in tag_events, so history outlives the host; the
durations of successful backups feed the planner's lane estimates.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def _in(name, values):
    return sa.column(name).in_(values)


def upgrade() -> None:
    op.create_table(
        'backups',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('method', sa.String(16), nullable=False),
        sa.Column('status', sa.String(8), nullable=False),
        sa.Column('started_at', DATETIME, nullable=False),
        sa.Column('finished_at', DATETIME, nullable=True),
        sa.Column('duration_seconds', sa.Double(), nullable=True),
        sa.Column('bytes', sa.BigInteger(), nullable=True),
        sa.Column('path', sa.Text(), nullable=True),
        sa.Column('checksum', sa.String(64), nullable=True),
        sa.Column('binlog_file', sa.String(255), nullable=True),
        sa.Column('binlog_position', sa.BigInteger(), nullable=True),
        sa.Column('gtid', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.CheckConstraint(_in('method', ('logical', 'physical')), name=op.f('ck_backups_method')),
        sa.CheckConstraint(_in('status', ('ok', 'failed')), name=op.f('ck_backups_status')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_backups')),
        **MYSQL,
    )
    op.create_index(op.f('ix_backups_host_started_at'), 'backups', ['host', 'started_at'])
    op.create_index(op.f('ix_backups_started_at'), 'backups', ['started_at'])


def downgrade() -> None:
    op.drop_table('backups')
