"""/api/v1/tags: tag definitions with how many hosts carry each (viewers), and manual tags set on
or taken off a host, with an optional expiry (operators)."""

from __future__ import annotations

from fastapi import APIRouter

from runner_service.api.deps import Operator, TagsDep, Viewer
from runner_service.api.errors import error_responses
from runner_service.fleet.schemas import ManualTags, TagChange, TagOut

router = APIRouter(prefix='/api/v1/tags', tags=['tags'])
ERRORS = error_responses(400, 401, 403, 404, 413, 422)


@router.get('', response_model=list[TagOut], responses=ERRORS)
def list_tags(tags: TagsDep, caller: Viewer) -> list[TagOut]:
    return [TagOut(**tag) for tag in tags.list()]


@router.post('/add', response_model=TagChange, responses=ERRORS)
def add(body: ManualTags, tags: TagsDep, caller: Operator) -> TagChange:
    """Set manual tags on a host (a known one, unless `create`), until `expires` if given; rules
    no longer remove them. Recorded in the tag history and the audit log."""
    return TagChange(**tags.add(body, caller['name']))


@router.post('/remove', response_model=TagChange, responses=ERRORS)
def remove(body: ManualTags, tags: TagsDep, caller: Operator) -> TagChange:
    """Take tags off a host, whatever set them (a rule still true puts its tag back at the next
    inspection)."""
    return TagChange(**tags.remove(body, caller['name']))
