"""Service accounts and their keys over a database session.

Shapes follow IAM v1: https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts
and https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudlet.core.db import utcnow
from cloudlet.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from cloudlet.core.times import rfc3339
from cloudlet.iam.keys import encode_key_file, generate_key, key_file
from cloudlet.iam.models import ServiceAccount, ServiceAccountKey
from cloudlet.iam.naming import (
    check_account_id,
    check_description,
    check_display_name,
    service_account_email,
    split_email,
)
from cloudlet.projects import get_active_project, get_project

__all__ = [
    "IAM_SERVICE",
    "account_resource",
    "create_account",
    "create_key",
    "delete_account",
    "delete_key",
    "get_account",
    "get_key",
    "key_resource",
    "list_accounts",
    "list_keys",
    "resolve_project",
    "set_account_disabled",
]

IAM_SERVICE = "iam.googleapis.com"


def _time(value: datetime) -> str:
    return rfc3339(value, "seconds")


def account_resource(account: ServiceAccount) -> dict[str, Any]:
    """A service account as IAM v1 shows it (empty optional strings are left out, as there)."""
    out: dict[str, Any] = {
        "name": f"projects/{account.project_id}/serviceAccounts/{account.email}",
        "projectId": account.project_id,
        "uniqueId": account.unique_id,
        "email": account.email,
        "oauth2ClientId": account.unique_id,
        "disabled": account.disabled,
    }
    if account.display_name:
        out["displayName"] = account.display_name
    if account.description:
        out["description"] = account.description
    return out


def key_resource(account: ServiceAccount, key: ServiceAccountKey) -> dict[str, Any]:
    return {
        "name": f"projects/{account.project_id}/serviceAccounts/{account.email}/keys/{key.key_id}",
        "keyAlgorithm": key.key_algorithm,
        "validAfterTime": _time(key.valid_after),
        "validBeforeTime": _time(key.valid_before),
        "keyOrigin": "GOOGLE_PROVIDED",
        "keyType": "USER_MANAGED",
        "disabled": key.disabled,
    }


def resolve_project(session: Session, project: str, account: str) -> str:
    """The project of a request path: `-` means "the account's own", as in IAM v1."""
    if project != "-":
        return project
    parts = split_email(account)
    if parts is not None:
        return parts[1]
    found = _find(session, account)
    if found is None:
        raise NotFound(_missing(account, None))
    return found.project_id


def _find(session: Session, account: str) -> ServiceAccount | None:
    """By email or by uniqueId, both of which IAM v1 accepts in the path."""
    if account.isascii() and account.isdigit():
        return session.scalar(select(ServiceAccount).where(ServiceAccount.unique_id == account))
    return session.get(ServiceAccount, account)


def _missing(account: str, project_id: str | None) -> str:
    where = f" in project [{project_id}]" if project_id else ""
    listing = "cloudlet iam service-accounts list" + (
        f" --project {project_id}" if project_id else ""
    )
    return f"Service account [{account}] does not exist{where}. List them with: {listing}"


def _new_unique_id(session: Session) -> str:
    # Google's uniqueIds are 21 digits starting with 1.
    while True:
        candidate = "1" + "".join(str(secrets.randbelow(10)) for _ in range(20))
        if (
            session.scalar(
                select(ServiceAccount.email).where(ServiceAccount.unique_id == candidate)
            )
            is None
        ):
            return candidate


def create_account(
    session: Session,
    project_id: str,
    account_id: str,
    display_name: str = "",
    description: str = "",
) -> ServiceAccount:
    check_account_id(account_id)
    check_display_name(display_name)
    check_description(description)
    get_active_project(session, project_id)
    email = service_account_email(account_id, project_id)
    if session.get(ServiceAccount, email) is not None:
        raise AlreadyExists(_exists(account_id, project_id))
    account = ServiceAccount(
        email=email,
        project_id=project_id,
        account_id=account_id,
        unique_id=_new_unique_id(session),
        display_name=display_name,
        description=description,
        disabled=False,
        create_time=utcnow(),
    )
    session.add(account)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create of the same account won the race
        raise AlreadyExists(_exists(account_id, project_id)) from None
    return account


def _exists(account_id: str, project_id: str) -> str:
    return (
        f"Service account {account_id} already exists within project projects/{project_id}. "
        f"Use it, or choose another name; see: cloudlet iam service-accounts list "
        f"--project {project_id}"
    )


def list_accounts(session: Session, project_id: str) -> list[ServiceAccount]:
    get_project(session, project_id)
    query = (
        select(ServiceAccount)
        .where(ServiceAccount.project_id == project_id)
        .order_by(ServiceAccount.email)
    )
    return list(session.scalars(query))


def get_account(session: Session, project_id: str, account: str) -> ServiceAccount:
    get_project(session, project_id)
    found = _find(session, account)
    if found is None or found.project_id != project_id:
        raise NotFound(_missing(account, project_id))
    return found


def delete_account(session: Session, project_id: str, account: str) -> ServiceAccount:
    """Delete an account and its keys; tokens it holds stop working at once."""
    found = get_account(session, project_id, account)
    session.execute(delete(ServiceAccountKey).where(ServiceAccountKey.email == found.email))
    session.delete(found)
    session.flush()
    return found


def set_account_disabled(
    session: Session, project_id: str, account: str, disabled: bool
) -> ServiceAccount:
    found = get_account(session, project_id, account)
    found.disabled = disabled
    session.flush()
    return found


def create_key(
    session: Session,
    project_id: str,
    account: str,
    gateway_url: str,
    key_algorithm: str = "KEY_ALG_RSA_2048",
    private_key_type: str = "TYPE_GOOGLE_CREDENTIALS_FILE",
) -> dict[str, Any]:
    """Create a key; the returned resource carries the only copy of the private key."""
    if key_algorithm not in ("KEY_ALG_RSA_2048", "KEY_ALG_UNSPECIFIED", ""):
        raise InvalidArgument(
            f"Key algorithm [{key_algorithm}] is not supported; cloudlet issues "
            "KEY_ALG_RSA_2048 keys. Leave keyAlgorithm out or set it to KEY_ALG_RSA_2048."
        )
    if private_key_type not in ("TYPE_GOOGLE_CREDENTIALS_FILE", "TYPE_UNSPECIFIED", ""):
        raise InvalidArgument(
            f"Private key type [{private_key_type}] is not supported; cloudlet writes JSON key "
            "files (TYPE_GOOGLE_CREDENTIALS_FILE). Leave privateKeyType out."
        )
    found = get_account(session, project_id, account)
    if found.disabled:
        raise FailedPrecondition(
            f"Service account [{found.email}] is disabled. Enable it with: "
            f"cloudlet iam service-accounts enable {found.email}"
        )
    new = generate_key(found.unique_id, utcnow())
    row = ServiceAccountKey(
        key_id=new.key_id,
        email=found.email,
        public_cert_pem=new.public_cert_pem,
        key_algorithm="KEY_ALG_RSA_2048",
        disabled=False,
        valid_after=new.valid_after,
        valid_before=new.valid_before,
    )
    session.add(row)
    session.flush()
    data = key_file(
        project_id=found.project_id,
        email=found.email,
        unique_id=found.unique_id,
        key=new,
        gateway_url=gateway_url,
    )
    out = key_resource(found, row)
    out["privateKeyType"] = "TYPE_GOOGLE_CREDENTIALS_FILE"
    out["privateKeyData"] = encode_key_file(data)
    return out


def list_keys(
    session: Session, project_id: str, account: str
) -> tuple[ServiceAccount, list[ServiceAccountKey]]:
    found = get_account(session, project_id, account)
    query = (
        select(ServiceAccountKey)
        .where(ServiceAccountKey.email == found.email)
        .order_by(ServiceAccountKey.valid_after, ServiceAccountKey.key_id)
    )
    return found, list(session.scalars(query))


def get_key(
    session: Session, project_id: str, account: str, key_id: str
) -> tuple[ServiceAccount, ServiceAccountKey]:
    found = get_account(session, project_id, account)
    key = session.get(ServiceAccountKey, key_id)
    if key is None or key.email != found.email:
        raise NotFound(
            f"Key [{key_id}] of service account [{found.email}] does not exist. List its keys "
            f"with: cloudlet iam service-accounts keys list --iam-account {found.email}"
        )
    return found, key


def delete_key(session: Session, project_id: str, account: str, key_id: str) -> None:
    _, key = get_key(session, project_id, account, key_id)
    session.delete(key)
    session.flush()
