"""schedules.source_host: the host a schedule's source names, indexed

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

Each bridged host's agent asks for its crontab entries every minute; with the host only inside
the JSON `source`, every such request read every schedule. Existing rows are filled in from
their source.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schedules') as batch:
        batch.add_column(sa.Column('source_host', sa.String(255), nullable=True))
        batch.create_index(batch.f('ix_schedules_source_host'), ['source_host'])
    schedules = sa.table('schedules', sa.column('id', sa.String(32)), sa.column('source', sa.Text()),
                         sa.column('source_host', sa.String(255)))
    connection = op.get_bind()
    for schedule_id, source in connection.execute(sa.select(schedules.c.id, schedules.c.source)
                                                  .where(schedules.c.source.is_not(None))).all():
        try:
            value = json.loads(source) if isinstance(source, (str, bytes)) else source
        except ValueError:
            continue
        host = value.get('host') if isinstance(value, dict) else None
        if isinstance(host, str):
            connection.execute(schedules.update().where(schedules.c.id == schedule_id)
                               .values(source_host=host[:255]))


def downgrade() -> None:
    with op.batch_alter_table('schedules') as batch:
        batch.drop_index(batch.f('ix_schedules_source_host'))
        batch.drop_column('source_host')
