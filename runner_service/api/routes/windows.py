"""/api/v1/windows: maintenance windows. Admins create and delete them; viewers read them, with
their current and next occurrences. A schedule's preview shows which of its slots they block."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from runner_service.api.deps import Admin, Viewer, Windows
from runner_service.api.errors import error_responses
from runner_service.schedules.windows import WindowService
from runner_service.schemas import Occurrence, WindowCreate, WindowOut

router = APIRouter(prefix='/api/v1/windows', tags=['windows'])
ERRORS = error_responses(400, 401, 403, 404, 422)
Ref = Annotated[str, Path(min_length=1, max_length=255, description='window id or name')]


def window_view(window: dict, windows: WindowService) -> WindowOut:
    occurrences = [Occurrence(start=start, end=end) for start, end in windows.upcoming(window)]
    return WindowOut(**window, occurrences=occurrences, links={'self': '/api/v1/windows/%s' % window['id']})


@router.post('', status_code=201, response_model=WindowOut, responses=ERRORS)
def create(body: WindowCreate, windows: Windows, caller: Admin) -> WindowOut:
    return window_view(windows.create(body, caller['name']), windows)


@router.get('', response_model=list[WindowOut], responses=ERRORS)
def list_windows(windows: Windows, caller: Viewer) -> list[WindowOut]:
    return [window_view(window, windows) for window in windows.list()]


@router.get('/{ref}', response_model=WindowOut, responses=ERRORS)
def show(ref: Ref, windows: Windows, caller: Viewer) -> WindowOut:
    return window_view(windows.get(ref), windows)


@router.delete('/{ref}', response_model=WindowOut, responses=ERRORS)
def delete(ref: Ref, windows: Windows, caller: Admin) -> WindowOut:
    return window_view(windows.delete(ref, caller['name']), windows)
