"""backup_copies: off-host copies of backups and archived binlogs; backups.source_replica/gtid;
credential kind age_identity

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05

The copy step of playbooks/backup.yml (dbfleet.mysql.backup_copy) uploads each backup and each
completed archived binlog file to the repositories configured, checks the remote file's SHA-256
against the manifest's, and records one row per file and repository: ok with when it was
verified, or failed with why. A binlog's copy names the host and the file (the binlog archive
has its own table). A backup taken from a replica of its host (prefer=replica) records the
replica and the GTID position it had reached. age_identity credentials hold the private key
that opens encrypted backups, for restores.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}
OLD_KINDS = ('ssh', 'mysql', 'vault', 'become')
NEW_KINDS = OLD_KINDS + ('age_identity',)


def _kinds(batch, kinds) -> None:
    batch.drop_constraint(op.f('ck_credentials_kind'), type_='check')
    batch.create_check_constraint(op.f('ck_credentials_kind'), sa.column('kind').in_(kinds))


def upgrade() -> None:
    op.create_table(
        'backup_copies',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('backup_id', BIG_ID, nullable=True),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('binlog_file', sa.String(255), nullable=True),
        sa.Column('repository', sa.String(255), nullable=False),
        sa.Column('location', sa.Text(), nullable=False),
        sa.Column('sha256', sa.String(64), nullable=True),
        sa.Column('status', sa.String(8), nullable=False),
        sa.Column('verified_at', DATETIME, nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.CheckConstraint(sa.column('status').in_(('ok', 'failed')), name=op.f('ck_backup_copies_status')),
        sa.ForeignKeyConstraint(['backup_id'], ['backups.id'], name=op.f('fk_backup_copies_backup_id_backups'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_copies')),
        **MYSQL,
    )
    op.create_index(op.f('ix_backup_copies_backup_id'), 'backup_copies', ['backup_id'])
    op.create_index(op.f('ix_backup_copies_host_binlog_file'), 'backup_copies', ['host', 'binlog_file'])
    with op.batch_alter_table('backups') as batch:
        batch.add_column(sa.Column('source_replica', sa.String(255), nullable=True))
        batch.add_column(sa.Column('source_gtid', sa.Text(), nullable=True))
    with op.batch_alter_table('credentials') as batch:
        _kinds(batch, NEW_KINDS)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM credentials WHERE kind = 'age_identity'"))
    with op.batch_alter_table('credentials') as batch:
        _kinds(batch, OLD_KINDS)
    with op.batch_alter_table('backups') as batch:
        batch.drop_column('source_gtid')
        batch.drop_column('source_replica')
    op.drop_table('backup_copies')
