"""Tags: the definitions with how many hosts carry each, and manual tags set or taken off by hand,
with an optional expiry; every change goes to the tag trail and the audit log under the caller's name."""

from __future__ import annotations

from dbfleet.inspection import InspectionError, TagRequest, apply_manual_tags
from dbfleet.store import Store
from dbfleet.tags import is_valid_tag_name
from runner_service.errors import NotFound, Unprocessable
from runner_service.fleet.hosts import unknown_host
from runner_service.fleet.schemas import ManualTags


def check_tag_names(tags: list[str]) -> None:
    for tag in tags:
        if not is_valid_tag_name(tag):
            raise Unprocessable('invalid tag name %r: use letters, digits and _ - . : (and not and/or/not), '
                                'as tag filters read them' % str(tag)[:100])


class TagService:
    def __init__(self, store: Store):
        self.store = store

    def list(self) -> list[dict]:
        return self.store.tags.list()

    def add(self, request: ManualTags, actor: str) -> dict:
        return self._change(request, 'present', actor)

    def remove(self, request: ManualTags, actor: str) -> dict:
        if request.expires is not None or request.create:
            raise Unprocessable('expires and create are for adding tags, not removing them')
        return self._change(request, 'absent', actor)

    def _change(self, request: ManualTags, state: str, actor: str) -> dict:
        check_tag_names(request.tags)
        if state == 'absent' and self.store.hosts.get(request.host) is None:
            raise unknown_host(request.host)
        try:
            outcome = apply_manual_tags(self.store, TagRequest(
                host=request.host, manual_tags=list(dict.fromkeys(request.tags)), state=state,
                expires=request.expires, who=actor, create_host=request.create))
        except (InspectionError, ValueError) as exc:
            if str(exc).startswith('unknown host'):
                raise NotFound(str(exc)) from None
            raise Unprocessable(str(exc)[:300]) from None
        changed = outcome.added if state == 'present' else outcome.removed
        if changed:
            detail = {'tags': changed}
            if request.expires is not None:
                detail['expires'] = request.expires
            self.store.audit.record(actor, 'tag.add' if state == 'present' else 'tag.remove', request.host, detail)
        return dict(host=request.host, added=outcome.added, removed=outcome.removed, tags=outcome.after)
