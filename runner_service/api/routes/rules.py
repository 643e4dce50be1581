"""/api/v1/rules: the tag rules the service has loaded (viewers), and a check of a rules file's text
(admins): its errors, or the tags it would give each host; nothing is written."""

from __future__ import annotations

from fastapi import APIRouter

from runner_service.api.deps import Admin, RulesDep, Viewer
from runner_service.api.errors import error_responses
from runner_service.fleet.schemas import Rules, RulesCheck, RulesChecked

router = APIRouter(prefix='/api/v1/rules', tags=['rules'])
ERRORS = error_responses(400, 401, 403, 409, 413, 422)


@router.get('', response_model=Rules, responses=ERRORS)
def loaded(rules: RulesDep, caller: Viewer) -> Rules:
    return Rules(**rules.loaded())


@router.post('/check', response_model=RulesChecked, responses=ERRORS)
def check(body: RulesCheck, rules: RulesDep, caller: Admin) -> RulesChecked:
    """The YAML text of a rules file, checked as `dbfleet tags rules check` does (syntax, unknown
    tags, unsafe expressions, cycles) and tried on every host's latest facts."""
    return RulesChecked(**rules.check(body.text))
