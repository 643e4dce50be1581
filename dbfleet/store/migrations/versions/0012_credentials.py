"""credentials; jobs.credentials

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

A credential is a secret a job's run needs (an SSH key, a MySQL login, an Ansible Vault or a
become password), sealed with the service key beside the fields the API may show
(runner_service.credentials). A template names the credentials its launches use; each job
records their names as launched, so a relaunch or a retry gets the same ones.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def upgrade() -> None:
    op.create_table(
        'credentials',
        sa.Column('id', BIG_ID, nullable=False, autoincrement=True),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('public', sa.JSON(), nullable=False),
        sa.Column('fingerprint', sa.String(128), nullable=False),
        sa.Column('sealed', sa.Text(), nullable=False),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('created_by', sa.String(255), nullable=True),
        sa.CheckConstraint(sa.column('kind').in_(('ssh', 'mysql', 'vault', 'become')),
                           name=op.f('ck_credentials_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credentials')),
        sa.UniqueConstraint('name', name=op.f('uq_credentials_name')),
        **MYSQL,
    )
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('credentials', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('credentials')
    op.drop_table('credentials')
