"""notifiers, notifications, notification_deliveries, notify_cursors; schedules.notify; indexes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

Notifications go through an outbox: a watcher stores each notification and one delivery row per
subscribed notifier before anything is sent; senders claim due deliveries with a conditional
UPDATE, send, and retry them with backoff (runner_service.notify). A notifier's secrets are sealed
with the service key, as credentials' are. A schedule names the notifiers of its events, as a
template does. The watcher reads, every few seconds, the jobs that ended since its last pass
(jobs.finished_at), the slots recorded since (schedule_slots.recorded_at), the crontab runs that
failed (cron_runs.status, finished_at) and the backups recorded (backups.created_at): an index
for each.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


def upgrade() -> None:
    op.create_table(
        'notifiers',
        sa.Column('id', BIG_ID, nullable=False, autoincrement=True),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('public', sa.JSON(), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('sealed', sa.Text(), nullable=True),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('created_by', sa.String(255), nullable=True),
        sa.CheckConstraint(sa.column('kind').in_(('webhook', 'email', 'slack')), name=op.f('ck_notifiers_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifiers')),
        sa.UniqueConstraint('name', name=op.f('uq_notifiers_name')),
        **MYSQL,
    )
    op.create_table(
        'notifications',
        sa.Column('id', BIG_ID, nullable=False, autoincrement=True),
        sa.Column('key', sa.String(255), nullable=False),
        sa.Column('event', sa.String(32), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('template', sa.String(255), nullable=True),
        sa.Column('schedule', sa.String(255), nullable=True),
        sa.Column('job_id', sa.String(32), nullable=True),
        sa.Column('silenced_by', sa.String(255), nullable=True),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
        sa.UniqueConstraint('key', name=op.f('uq_notifications_key')),
        **MYSQL,
    )
    op.create_index('ix_notifications_created_at', 'notifications', ['created_at'])
    op.create_table(
        'notification_deliveries',
        sa.Column('id', BIG_ID, nullable=False, autoincrement=True),
        sa.Column('notification_id', BIG_ID, nullable=False),
        sa.Column('notifier', sa.String(255), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', DATETIME, nullable=True),
        sa.Column('claimed_by', sa.String(255), nullable=True),
        sa.Column('claimed_until', DATETIME, nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('attempt_log', sa.JSON(), nullable=False),
        sa.Column('delivered_at', DATETIME, nullable=True),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.CheckConstraint(sa.column('status').in_(('pending', 'sending', 'delivered', 'failed', 'silenced')),
                           name=op.f('ck_notification_deliveries_status')),
        sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], ondelete='CASCADE',
                                name=op.f('fk_notification_deliveries_notification_id_notifications')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_deliveries')),
        **MYSQL,
    )
    op.create_index('ix_notification_deliveries_notification_id', 'notification_deliveries', ['notification_id'])
    op.create_index('ix_notification_deliveries_status_next_attempt_at', 'notification_deliveries',
                    ['status', 'next_attempt_at'])
    op.create_index('ix_notification_deliveries_notifier_created_at', 'notification_deliveries',
                    ['notifier', 'created_at'])
    op.create_table(
        'notify_cursors',
        sa.Column('name', sa.String(64), nullable=False),
        sa.Column('position', DATETIME, nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_notify_cursors')),
        **MYSQL,
    )
    op.create_index('ix_jobs_finished_at', 'jobs', ['finished_at'])
    with op.batch_alter_table('schedules') as batch:
        batch.add_column(sa.Column('notify', sa.JSON(none_as_null=True), nullable=True))
    op.create_index('ix_backups_created_at', 'backups', ['created_at'])
    op.create_index('ix_schedule_slots_recorded_at', 'schedule_slots', ['recorded_at'])
    op.create_index('ix_cron_runs_status_finished_at', 'cron_runs', ['status', 'finished_at'])


def downgrade() -> None:
    op.drop_index('ix_cron_runs_status_finished_at', table_name='cron_runs')
    op.drop_index('ix_schedule_slots_recorded_at', table_name='schedule_slots')
    op.drop_index('ix_backups_created_at', table_name='backups')
    # Not a batch: on SQLite that copies `schedules` and drops the old one, and the drop cascades to
    # every schedule's slots and runs. ALTER TABLE ... DROP COLUMN (SQLite 3.35+) keeps them.
    op.drop_column('schedules', 'notify')
    op.drop_index('ix_jobs_finished_at', table_name='jobs')
    op.drop_table('notify_cursors')
    op.drop_table('notification_deliveries')
    op.drop_table('notifications')
    op.drop_table('notifiers')
