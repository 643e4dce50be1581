"""binlogs, binlog_archive_state: the binary log archive of each host and how far behind it is

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05

Written by the dbfleet.mysql.binlog_archive action plugin and `dbfleet archive run`: one row per
complete archived binary log (unique per host and file), with the gap before it when there is one,
and one row per host with the archive's lag, the server's current file and the gaps last reported.
The restorable window of a host is computed from these rows and its backups.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def upgrade() -> None:
    op.create_table(
        'binlogs',
        sa.Column('id', BIG_ID, nullable=False, autoincrement=True),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('file', sa.String(255), nullable=False),
        sa.Column('server_id', sa.BigInteger(), nullable=True),
        sa.Column('first_gtid', sa.String(255), nullable=True),
        sa.Column('last_gtid', sa.String(255), nullable=True),
        sa.Column('first_event_at', DATETIME, nullable=False),
        sa.Column('last_event_at', DATETIME, nullable=False),
        sa.Column('bytes', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('path', sa.Text(), nullable=True),
        sa.Column('gap', sa.JSON(none_as_null=True), nullable=True),
        sa.Column('archived_at', DATETIME, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_binlogs')),
        sa.UniqueConstraint('host', 'file', name=op.f('uq_binlogs_host')),
        **MYSQL,
    )
    op.create_index(op.f('ix_binlogs_host_last_event_at'), 'binlogs', ['host', 'last_event_at'])
    op.create_table(
        'binlog_archive_state',
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('lag_seconds', sa.Double(), nullable=True),
        sa.Column('current_file', sa.String(255), nullable=True),
        sa.Column('gaps', sa.JSON(none_as_null=True), nullable=True),
        sa.Column('checked_at', DATETIME, nullable=False),
        sa.PrimaryKeyConstraint('host', name=op.f('pk_binlog_archive_state')),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table('binlog_archive_state')
    op.drop_table('binlogs')
