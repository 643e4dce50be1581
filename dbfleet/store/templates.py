"""Job templates in the store (`store.templates`): a name and its definition.

The definition is kept as the caller gives it (a JSON mapping); checking it is the job of
runner_service.templates.service. Templates come out as plain dicts {id, name, definition, created_at,
created_by, updated_at, updated_by}; bad input is a ValueError, an unknown name UnknownTemplate.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbfleet.clock import utcnow
from dbfleet.store.errors import StoreError
from dbfleet.store.models import NAME_LENGTH, Template
from dbfleet.store.transactions import Transactions

_COLUMNS = tuple(column.key for column in Template.__table__.columns)


class UnknownTemplate(StoreError, LookupError):
    def __init__(self, name: str):
        super().__init__('no template %r in the store: `dbfleet templates list` shows them' % (str(name)[:200],))
        self.name = name


class Templates:
    """store.templates: job templates by name."""

    def __init__(self, transactions: Transactions):
        self._transactions = transactions

    def create(self, name: str, definition: dict, created_by: str | None = None) -> dict:
        """ValueError when the name is taken (also when processes race to create it)."""
        _check_name(name)
        _check_definition(definition)

        def work(session: Session) -> dict:
            if session.scalar(select(Template.id).where(Template.name == name)) is not None:
                raise _taken(name)
            now = utcnow()
            template = Template(name=name, definition=definition, created_at=now, created_by=created_by,
                                updated_at=now, updated_by=created_by)
            session.add(template)
            try:
                session.flush()
            except IntegrityError:
                raise _taken(name) from None
            return _dict(template)

        return self._transactions.run(work, write=True)

    def get(self, name: str) -> dict:
        def work(session: Session) -> dict:
            return _dict(_find(session, name))

        return self._transactions.run(work)

    def list(self) -> list[dict]:
        query = select(Template).order_by(Template.name)
        return self._transactions.run(lambda session: [_dict(template) for template in session.scalars(query)])

    def update(self, name: str, definition: dict, updated_by: str | None = None) -> dict:
        """Replace the definition (the caller merges the changes it was given)."""
        _check_definition(definition)

        def work(session: Session) -> dict:
            template = _find(session, name, lock=True)
            template.definition = definition
            template.updated_at, template.updated_by = utcnow(), updated_by
            session.flush()
            return _dict(template)

        return self._transactions.run(work, write=True)

    def delete(self, name: str) -> dict:
        """The jobs it launched keep its name."""
        def work(session: Session) -> dict:
            template = _find(session, name, lock=True)
            gone = _dict(template)
            session.delete(template)
            return gone

        return self._transactions.run(work, write=True)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name or len(name) > NAME_LENGTH or not name.isprintable() \
            or any(character.isspace() for character in name):
        raise ValueError('template name must be a non-empty string of at most %d printable characters without '
                         'spaces, got %r' % (NAME_LENGTH, str(name)[:200]))


def _check_definition(definition: Any) -> None:
    if not isinstance(definition, dict):
        raise ValueError('template definition must be a mapping, got %s' % type(definition).__name__)


def _taken(name: str) -> ValueError:
    return ValueError('a template named %s already exists: pick another name, or edit that one' % name)


def _find(session: Session, name: str, lock: bool = False) -> Template:
    if not isinstance(name, str) or not name:
        raise UnknownTemplate(str(name))
    query = select(Template).where(Template.name == name)
    if lock:
        query = query.with_for_update()
    template = session.scalar(query)
    if template is None:
        raise UnknownTemplate(name)
    return template


def _dict(template: Template) -> dict:
    return {name: getattr(template, name) for name in _COLUMNS}
