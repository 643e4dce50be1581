"""/api/v1/credentials: admins create, list, show and delete credentials; nobody reads a secret
back (the API answers with the name, kind, public fields and fingerprint)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from runner_service.api.deps import Admin, CredentialsDep
from runner_service.api.errors import error_responses
from runner_service.schemas import CredentialCreate, CredentialOut

router = APIRouter(prefix='/api/v1/credentials', tags=['credentials'])
ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422)
Name = Annotated[str, Path(min_length=1, max_length=255, description='a credential name')]


def credential_view(credential: dict) -> CredentialOut:
    """Only what may be shown: the sealed secret stays behind."""
    return CredentialOut(name=credential['name'], kind=credential['kind'], fingerprint=credential['fingerprint'],
                         created_at=credential['created_at'], created_by=credential['created_by'],
                         links={'self': '/api/v1/credentials/%s' % credential['name']}, **credential['public'])


@router.post('', status_code=201, response_model=CredentialOut, responses=ERRORS)
def create(body: CredentialCreate, credentials: CredentialsDep, caller: Admin) -> CredentialOut:
    """The secret fields are sealed with the service key and never returned."""
    return credential_view(credentials.create(body, caller['name']))


@router.get('', response_model=list[CredentialOut], responses=ERRORS)
def list_credentials(credentials: CredentialsDep, caller: Admin) -> list[CredentialOut]:
    return [credential_view(credential) for credential in credentials.list()]


@router.get('/{name}', response_model=CredentialOut, responses=ERRORS)
def show(name: Name, credentials: CredentialsDep, caller: Admin) -> CredentialOut:
    return credential_view(credentials.get(name))


@router.delete('/{name}', response_model=CredentialOut, responses=ERRORS)
def delete(name: Name, credentials: CredentialsDep, caller: Admin) -> CredentialOut:
    """Refused (409) while a template names it."""
    return credential_view(credentials.delete(name, caller['name']))
