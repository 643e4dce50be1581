"""Schedules and crontab imports made the way several test modules here need them."""

from __future__ import annotations

from runner_service.bridge.platform import CronBridge
from runner_service.schedules.service import ScheduleService
from runner_service.schemas import CronFile, CronImport, JobTemplate, ScheduleCreate

TEMPLATE = JobTemplate(playbook='tests/service/playbooks/hello.yml', inventory='tests/service/inventory.yml')
CRON_FILE = CronFile(kind='path', name='/var/spool/cron/crontabs/dba', system=False)


def create(runtime, name='every-10s', expression='*/10 * * * * *', **options):
    request = ScheduleCreate(name=name, kind=options.pop('kind', 'cron'), expression=expression,
                             job=options.pop('job', TEMPLATE), **options)
    return ScheduleService(runtime).create(request, 'admin')


def slot_jobs(runtime, schedule_id):
    return [slot for slot in runtime.store.schedules.slots(schedule_id, limit=1000) if slot['outcome'] == 'fired']


def import_text(runtime, text, host='db1', **options):
    request = CronImport(host=host, file=options.pop('file', CRON_FILE), text=text,
                         inventory='tests/service/inventory.yml', inventory_host='node1', **options)
    return CronBridge(runtime).import_file(request, 'admin')


def minutely(runtime, text='* * * * * /usr/bin/true\n', **options):
    """The schedule of a one-line crontab's only entry."""
    return import_text(runtime, text=text, **options)['entries'][0]['schedule']
