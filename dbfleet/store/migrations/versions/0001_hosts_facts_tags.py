"""hosts, fact snapshots, tags, host tags and the tag audit trail

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Types are spelled out here rather than imported from models.py, so this revision keeps
creating the same schema when the models move on; tests compare the result with models.py.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# Naive UTC with microseconds on every backend (MySQL's plain DATETIME drops them).
DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def upgrade() -> None:
    op.create_table(
        'hosts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('address', sa.String(255), nullable=True),
        sa.Column('port', sa.Integer(), nullable=True),
        sa.Column('attributes', sa.JSON(), nullable=False),
        sa.Column('facts_at', DATETIME, nullable=True),
        sa.Column('facts_summary', sa.JSON(), nullable=True),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('updated_at', DATETIME, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_hosts')),
        sa.UniqueConstraint('name', name=op.f('uq_hosts_name')),
        **MYSQL,
    )
    op.create_table(
        'fact_snapshots',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('host_id', sa.Integer(), nullable=False),
        sa.Column('collected_at', DATETIME, nullable=False),
        sa.Column('facts', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_fact_snapshots_host_id_hosts'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_fact_snapshots')),
        **MYSQL,
    )
    op.create_index(op.f('ix_fact_snapshots_host_id_collected_at'), 'fact_snapshots', ['host_id', 'collected_at'])
    op.create_table(
        'tags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('dimension', sa.String(64), nullable=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.CheckConstraint("kind IN ('manual', 'rule', 'derived')", name=op.f('ck_tags_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tags')),
        sa.UniqueConstraint('name', name=op.f('uq_tags_name')),
        **MYSQL,
    )
    op.create_table(
        'host_tags',
        sa.Column('host_id', sa.Integer(), nullable=False),
        sa.Column('tag_id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(16), nullable=False),
        sa.Column('since', DATETIME, nullable=False),
        sa.Column('expires_at', DATETIME, nullable=True),
        sa.Column('evidence', sa.JSON(), nullable=True),
        sa.Column('set_by', sa.String(255), nullable=True),
        sa.CheckConstraint("source IN ('manual', 'rule', 'derived')", name=op.f('ck_host_tags_source')),
        sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_host_tags_host_id_hosts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tag_id'], ['tags.id'], name=op.f('fk_host_tags_tag_id_tags'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('host_id', 'tag_id', name=op.f('pk_host_tags')),
        **MYSQL,
    )
    op.create_index(op.f('ix_host_tags_tag_id'), 'host_tags', ['tag_id'])
    op.create_index(op.f('ix_host_tags_expires_at'), 'host_tags', ['expires_at'])
    op.create_table(
        'tag_events',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('at', DATETIME, nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('tag', sa.String(255), nullable=False),
        sa.Column('action', sa.String(16), nullable=False),
        sa.Column('old', sa.JSON(), nullable=True),
        sa.Column('new', sa.JSON(), nullable=True),
        sa.Column('who', sa.String(255), nullable=True),
        sa.CheckConstraint("action IN ('added', 'removed', 'expired', 'updated')",
                           name=op.f('ck_tag_events_action')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tag_events')),
        **MYSQL,
    )
    op.create_index(op.f('ix_tag_events_at'), 'tag_events', ['at'])
    op.create_index(op.f('ix_tag_events_host_at'), 'tag_events', ['host', 'at'])
    op.create_index(op.f('ix_tag_events_tag_at'), 'tag_events', ['tag', 'at'])


def downgrade() -> None:
    op.drop_table('tag_events')
    op.drop_table('host_tags')
    op.drop_table('tags')
    op.drop_table('fact_snapshots')
    op.drop_table('hosts')
