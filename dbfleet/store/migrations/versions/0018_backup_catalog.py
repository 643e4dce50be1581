"""backups: pinned, removed_at, partial_path, kept_partial, restore_tested_at, restore_test_status

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05

The backup catalog knows which backups still exist and which must stay: retention marks the ones it
removed (removed_at; the row stays, history is kept), a pinned backup (`dbfleet backups keep ID`) is
handed to the module as one it must never remove. A failed attempt says where its partial directory
was (partial_path) and whether it was kept for debugging (kept_partial). Restore drills fill
restore_tested_at and restore_test_status ('ok' | 'failed') later.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade() -> None:
    with op.batch_alter_table('backups') as batch:
        batch.add_column(sa.Column('pinned', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('removed_at', DATETIME, nullable=True))
        batch.add_column(sa.Column('partial_path', sa.Text(), nullable=True))
        batch.add_column(sa.Column('kept_partial', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('restore_tested_at', DATETIME, nullable=True))
        batch.add_column(sa.Column('restore_test_status', sa.String(8), nullable=True))
        batch.create_check_constraint('restore_test_status', sa.column('restore_test_status').in_(('ok', 'failed')))
        batch.create_index(op.f('ix_backups_host_pinned'), ['host', 'pinned'])
    # The defaults fill the rows already there; new rows get theirs from the store, as other flags do.
    with op.batch_alter_table('backups') as batch:
        for column in ('pinned', 'kept_partial'):
            batch.alter_column(column, existing_type=sa.Boolean(), existing_nullable=False, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('backups') as batch:
        batch.drop_index(op.f('ix_backups_host_pinned'))
        batch.drop_constraint('restore_test_status', type_='check')
        for column in ('restore_test_status', 'restore_tested_at', 'kept_partial', 'partial_path', 'removed_at',
                       'pinned'):
            batch.drop_column(column)
