"""api_tokens: role agent, the host an agent token belongs to, an expiry; audit_log by target

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

An agent token (one per bridged host) may only report its host's cron runs and read its host's
entries, so the token names its host. Any token may expire. Admins read the audit log by
target (a job, a schedule, a token), newest first.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD_ROLES = ('viewer', 'operator', 'admin')
NEW_ROLES = OLD_ROLES + ('agent',)
DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def _roles(batch, roles) -> None:
    batch.drop_constraint(op.f('ck_api_tokens_role'), type_='check')
    batch.create_check_constraint(op.f('ck_api_tokens_role'), sa.column('role').in_(roles))


def upgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('host', sa.String(255), nullable=True))
        batch.add_column(sa.Column('expires_at', DATETIME, nullable=True))
        _roles(batch, NEW_ROLES)
    with op.batch_alter_table('audit_log') as batch:
        batch.create_index(batch.f('ix_audit_log_target_at'), ['target', 'at'])


def downgrade() -> None:
    with op.batch_alter_table('audit_log') as batch:
        batch.drop_index(batch.f('ix_audit_log_target_at'))
    # An agent token has no role the old schema knows: it goes (it could not be used there anyway).
    op.execute(sa.text("DELETE FROM api_tokens WHERE role = 'agent'"))
    with op.batch_alter_table('api_tokens') as batch:
        _roles(batch, OLD_ROLES)
        batch.drop_column('expires_at')
        batch.drop_column('host')
