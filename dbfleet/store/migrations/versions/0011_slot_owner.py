"""schedule_slots.claimed_by: who took a slot, the platform or crontab, as a column

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

Who ran a slot of a crontab-bridged schedule was told by words in the slot's `reason`
('run by crontab ...', 'claimed by the scheduler'), and the scheduler and the bridge decided
by matching those words. It is now `claimed_by`: 'platform' (the scheduler fired or skipped
it), 'crontab' (crontab ran it: an observed entry's reported run, or a taken-over entry's
fallback run), NULL for a missed slot (nobody ran it). Existing rows are classified from
their reason text; the scheduler's bare claim marker is dropped from `reason` (the column
says it now), other reasons stay as written.

Also: interval schedules changed from another kind before this revision may have no stored
start (job.start_at), and were read as anchored at 'now' on every scheduler pass (a job per
pass). Each gets the start its next fire implies (else its creation time), so its slots
stay where they were.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

CRON_WORDS = 'run by crontab'
PLATFORM_WORDS = 'claimed by the scheduler'

slots = sa.table('schedule_slots', sa.column('schedule_id', sa.String(32)), sa.column('slot_at', sa.DateTime()),
                 sa.column('outcome', sa.String(8)), sa.column('job_id', sa.String(32)),
                 sa.column('reason', sa.Text()), sa.column('claimed_by', sa.String(8)))
schedules = sa.table('schedules', sa.column('id', sa.String(32)), sa.column('kind', sa.String(8)),
                     sa.column('job', sa.Text()), sa.column('next_fire_at', sa.DateTime()),
                     sa.column('created_at', sa.DateTime()))


def upgrade() -> None:
    with op.batch_alter_table('schedule_slots') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(8), nullable=True))
        batch.create_check_constraint(op.f('ck_schedule_slots_claimed_by'),
                                      sa.column('claimed_by').in_(('platform', 'crontab')))
    connection = op.get_bind()
    connection.execute(slots.update().where(slots.c.reason.like(CRON_WORDS + '%')).values(claimed_by='crontab'))
    connection.execute(slots.update().where(slots.c.reason == PLATFORM_WORDS)
                       .values(claimed_by='platform', reason=None))
    connection.execute(slots.update().where(slots.c.claimed_by.is_(None), slots.c.outcome != 'missed')
                       .values(claimed_by='platform'))
    _anchor_intervals(connection)


def _anchor_intervals(connection) -> None:
    rows = connection.execute(sa.select(schedules.c.id, schedules.c.job, schedules.c.next_fire_at,
                                        schedules.c.created_at).where(schedules.c.kind == 'interval')).all()
    for schedule_id, job, next_fire_at, created_at in rows:
        value = json.loads(job) if isinstance(job, (str, bytes)) else job
        if not isinstance(value, dict) or value.get('start_at'):
            continue
        start = next_fire_at or created_at
        value['start_at'] = start.replace(tzinfo=None).isoformat() + '+00:00'
        connection.execute(schedules.update().where(schedules.c.id == schedule_id)
                           .values(job=json.dumps(value, separators=(',', ':'))))


def downgrade() -> None:
    connection = op.get_bind()
    connection.execute(slots.update().where(slots.c.claimed_by == 'crontab', sa.or_(
        slots.c.reason.is_(None), sa.not_(slots.c.reason.like(CRON_WORDS + '%'))))
        .values(reason=sa.func.coalesce(sa.literal(CRON_WORDS + ': ') + slots.c.reason, CRON_WORDS)))
    connection.execute(slots.update().where(slots.c.claimed_by == 'platform', slots.c.outcome == 'fired',
                                            slots.c.job_id.is_(None)).values(reason=PLATFORM_WORDS))
    with op.batch_alter_table('schedule_slots') as batch:
        batch.drop_constraint(op.f('ck_schedule_slots_claimed_by'), type_='check')
        batch.drop_column('claimed_by')
