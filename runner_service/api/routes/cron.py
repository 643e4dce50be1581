"""/api/v1/cron: the crontab bridge. Admins import crontab files (the commands); operators move
entries between modes; the wrapper on each host reports runs and each host's agent reads the
entries of its host to make its crontab files match, both with that host's agent token (an
agent token is refused for any other host; admins may report for any host, operators no longer
do); viewers read entries, runs and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from runner_service.api.deps import Admin, AdminOrAgent, Bridge, Operator, Viewer, ViewerOrAgent, own_host
from runner_service.api.errors import error_responses
from runner_service.schemas import (
    CronEntryOut,
    CronHistoryItem,
    CronImport,
    CronImported,
    CronImportedEntry,
    CronLineNote,
    CronModeChange,
    CronReport,
    CronReportAnswer,
    CronRunOut,
)

router = APIRouter(prefix='/api/v1/cron', tags=['cron'])
ERRORS = error_responses(400, 401, 403, 404, 409, 422)
Ref = Annotated[str, Path(min_length=1, max_length=255, description='schedule id or name of a crontab entry')]


def entry_view(schedule: dict) -> CronEntryOut:
    source = schedule['source']
    return CronEntryOut(schedule_id=schedule['id'], name=schedule['name'], mode=source['mode'], host=source['host'],
                        file=source['file'], line=source['line'], original=source['original'],
                        expression=schedule['expression'], timezone=schedule['timezone'], paused=schedule['paused'],
                        next_fire_at=schedule['next_fire_at'], updated_at=schedule['updated_at'])


@router.post('/import', status_code=201, response_model=CronImported, responses=ERRORS)
def import_file(body: CronImport, bridge: Bridge, caller: Admin) -> CronImported:
    """Each entry of the file becomes a schedule in mode observe, with where it came from (host,
    file, line, the exact text). Importing the same file again finds its entries again."""
    result = bridge.import_file(body, caller['name'])
    return CronImported(host=result['host'], file=result['file'],
                        entries=[CronImportedEntry(line=item['line'], created=item['created'],
                                                   entry=entry_view(item['schedule'])) for item in result['entries']],
                        reboot=[CronLineNote(**note) for note in result['reboot']],
                        errors=[CronLineNote(**note) for note in result['errors']],
                        warnings=[CronLineNote(**note) for note in result['warnings']])


@router.get('/entries', response_model=list[CronEntryOut], responses=ERRORS)
def entries(bridge: Bridge, caller: ViewerOrAgent,
            host: Annotated[str | None, Query(max_length=255, description='only this host\'s entries (an agent token: '
                                                                          'its own host, which it must name)')] = None
            ) -> list[CronEntryOut]:
    own_host(caller, host)
    return [entry_view(schedule) for schedule in bridge.bridged(host)]


@router.get('/entries/{ref}', response_model=CronEntryOut, responses=ERRORS)
def entry(ref: Ref, bridge: Bridge, caller: ViewerOrAgent) -> CronEntryOut:
    schedule = bridge.get(ref)
    own_host(caller, schedule['source']['host'])
    return entry_view(schedule)


@router.post('/entries/{ref}/mode', response_model=CronEntryOut, responses=ERRORS)
def set_mode(ref: Ref, body: CronModeChange, bridge: Bridge, caller: Operator) -> CronEntryOut:
    """Operators may: the mode moves who runs the entry's command, never what the command is
    (only an admin sets that, by import or by editing the schedule's job). observe: crontab runs it, wrapped; takeover: the platform runs it, the line is commented out;
    reverted: the line comes back exactly as it was, the schedule is paused. The host's agent
    (`dbfleet cron sync`, or its watchdog within a minute) writes the change."""
    return entry_view(bridge.set_mode(ref, body.mode, caller['name']))


@router.get('/entries/{ref}/history', response_model=list[CronHistoryItem], responses=ERRORS)
def history(ref: Ref, bridge: Bridge, caller: Viewer,
            limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[CronHistoryItem]:
    """Each recent slot: run by crontab (ok, failed, running), missed (no report by the slot plus
    the grace), or run by the platform (job); newest first."""
    return [CronHistoryItem(**item) for item in bridge.history(ref, limit)]


@router.post('/runs', response_model=CronReportAnswer, responses=ERRORS)
def report(body: CronReport, bridge: Bridge, caller: AdminOrAgent) -> CronReportAnswer:
    """A run's start or end, from `dbfleet cron exec` with the host's agent token (or an admin's).
    The same report twice changes nothing. An agent token reports only its own host's entries."""
    own_host(caller, body.host)
    run, action = bridge.report(body, caller['name'], host=caller['host'] if caller['role'] == 'agent' else None)
    return CronReportAnswer(action=action, run=CronRunOut(**run))


@router.get('/runs', response_model=list[CronRunOut], responses=ERRORS)
def runs(bridge: Bridge, caller: Viewer,
         entry: Annotated[str | None, Query(max_length=255, description='schedule id or name')] = None,
         host: Annotated[str | None, Query(max_length=255)] = None,
         limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[CronRunOut]:
    schedule_id = bridge.get(entry)['id'] if entry else None
    return [CronRunOut(**run) for run in bridge.store.cron.list_runs(schedule_id, host=host, limit=limit)]
