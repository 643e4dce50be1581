"""The front door for credentials: admins create, list, show and delete them; templates name them.

A credential's secret fields are sealed with the service key (runner_service.secret_box, the
same Fernet key as secret extra vars) before the store sees them; what comes back out is its
name, kind, public fields and fingerprint, never a secret. A credential a template names cannot
be deleted (409 naming the templates). Create and delete are audited, without secrets.
"""

from __future__ import annotations

from dbfleet.store import UnknownCredential
from runner_service.credentials.kinds import CredentialInvalid, split
from runner_service.errors import Conflict, NotFound, Unprocessable
from runner_service.runtime import Runtime
from runner_service.schemas import CredentialCreate


class CredentialService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store

    def create(self, request: CredentialCreate, actor: str) -> dict:
        fields = request.model_dump(exclude={'name', 'kind'})
        try:
            public, secret, fingerprint = split(request.kind, fields, self.runtime.secrets.digest)
        except CredentialInvalid as exc:
            raise Unprocessable('credential %s: %s' % (request.name, exc)) from None
        try:
            credential = self.store.credentials.create(request.name, request.kind, public, fingerprint,
                                                       self.runtime.secrets.seal(secret), created_by=actor)
        except ValueError as exc:
            raise Conflict(str(exc)) from None
        self.store.audit.record(actor, 'credential.create', request.name,
                                {'kind': request.kind, 'fingerprint': fingerprint, **public})
        return credential

    def get(self, name: str) -> dict:
        try:
            return self.store.credentials.get(name)
        except UnknownCredential as exc:
            raise NotFound(str(exc)) from None

    def list(self) -> list[dict]:
        return self.store.credentials.list()

    def delete(self, name: str, actor: str) -> dict:
        """Conflict while a template names it: change or delete those first."""
        self.get(name)
        users = self.templates_using(name)
        if users:
            raise Conflict('credential %s is used by the templates %s%s: remove it from them (PATCH credentials) '
                           'or delete them first' % (name, ', '.join(users[:5]),
                                                     ' and %d more' % (len(users) - 5) if len(users) > 5 else ''))
        try:
            credential = self.store.credentials.delete(name)
        except UnknownCredential as exc:
            raise NotFound(str(exc)) from None
        self.store.audit.record(actor, 'credential.delete', name,
                                {'kind': credential['kind'], 'fingerprint': credential['fingerprint']})
        return credential

    def templates_using(self, name: str) -> list[str]:
        return [template['name'] for template in self.store.templates.list()
                if name in (template['definition'].get('credentials') or [])]

    def check_names(self, names: list[str]) -> list[str]:
        """A template's credentials: each exists, at most one of each kind (Ansible takes one key,
        one become password...); Unprocessable naming the problem."""
        kinds: dict[str, str] = {}
        for name in names:
            try:
                kind = self.store.credentials.get(name)['kind']
            except UnknownCredential:
                raise Unprocessable('credentials: no credential %r: `dbfleet credentials list` shows them'
                                    % name[:200]) from None
            if kind in kinds:
                raise Unprocessable('credentials: %s and %s are both %s credentials; a template takes at most one '
                                    'of each kind' % (kinds[kind], name, kind))
            kinds[kind] = name
        return list(names)
