"""drills: restore drills of each host - the backup restored, the measured recovery time (RTO) and
the age of the data at the restored point (RPO)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05

Written by the dbfleet.mysql.restore_drill action plugin (playbooks/drill.yml, the `drill` template,
`dbfleet backups drill`): one row per host and drill, ok or failed with why. The backup drilled gets
its restore_tested_at / restore_test_status (columns of 0018) in the same transaction; a backup's
row going away leaves the drill with no backup_id.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def upgrade() -> None:
    op.create_table(
        'drills',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('backup_id', BIG_ID, nullable=True),
        sa.Column('job_id', sa.String(32), nullable=True),
        sa.Column('status', sa.String(8), nullable=False),
        sa.Column('started_at', DATETIME, nullable=False),
        sa.Column('finished_at', DATETIME, nullable=False),
        sa.Column('rto_seconds', sa.Double(), nullable=True),
        sa.Column('restored_to', DATETIME, nullable=True),
        sa.Column('restored_gtid', sa.Text(), nullable=True),
        sa.Column('rpo_seconds', sa.Double(), nullable=True),
        sa.Column('bytes', sa.BigInteger(), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.CheckConstraint(sa.column('status').in_(('ok', 'failed')), name=op.f('ck_drills_status')),
        sa.ForeignKeyConstraint(['backup_id'], ['backups.id'], name=op.f('fk_drills_backup_id_backups'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_drills')),
        **MYSQL,
    )
    op.create_index(op.f('ix_drills_host_started_at'), 'drills', ['host', 'started_at'])
    op.create_index(op.f('ix_drills_started_at'), 'drills', ['started_at'])


def downgrade() -> None:
    op.drop_table('drills')
