"""Local user accounts: the store, password hashing, sessions, and the owner's first start.

People sign in to cloudlet with local accounts (IAM member `user:EMAIL`). Passwords are hashed
with argon2id by argon2-cffi (its `PasswordHasher` defaults follow RFC 9106's recommendations)
and never stored, logged or returned. A sign-in is a row of `iam_sessions`; deleting the row
revokes every token and cookie of that sign-in.

The first start of a gateway creates the local owner, `owner@cloudlet.localhost`, with a random
password written to `DATA_DIR/owner-password` (mode 0600): the log says where, never what.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudlet.core.db import Database, utcnow
from cloudlet.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from cloudlet.core.times import rfc3339
from cloudlet.iam.tokens import USER, SessionRecord, UserRecord
from cloudlet.iam.user_models import UserAccount, UserSession

__all__ = [
    "CLI_SESSION_LIFETIME",
    "CONSOLE_SESSION_LIFETIME",
    "OWNER_EMAIL",
    "bootstrap_owner",
    "check_email",
    "create_user",
    "delete_user",
    "end_session",
    "get_user",
    "list_users",
    "password_user",
    "session_record",
    "set_password",
    "start_session",
    "user_record",
    "user_resource",
]

logger = logging.getLogger(__name__)

OWNER_EMAIL = "owner@cloudlet.localhost"
CLI_SESSION_LIFETIME = 180 * 24 * 3600  # `cloudlet auth login` lasts until revoked, like gcloud's
CONSOLE_SESSION_LIFETIME = 7 * 24 * 3600
MIN_PASSWORD = 8

_hasher = PasswordHasher()
# Verified when the account does not exist, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
_EMAIL = re.compile(r"^[a-z0-9._%+-]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$")


def check_email(email: str) -> str:
    """The normalized (lowercase) email, or InvalidArgument naming what is wrong."""
    normalized = email.strip().lower()
    if len(normalized) > 254 or not _EMAIL.match(normalized):
        raise InvalidArgument(
            f"[{email}] is not a valid email for a user account: give NAME@DOMAIN, such as "
            "ada@example.com (local accounts may use any domain, e.g. ada@cloudlet.localhost)."
        )
    return normalized


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidArgument(f"The password is too short: use at least {MIN_PASSWORD} characters.")


def _new_unique_id(session: Session) -> str:
    # Google's user ids are 21 digits; start with 1 so they never look like a project number.
    while True:
        candidate = "1" + "".join(secrets.choice("0123456789") for _ in range(20))
        taken = session.scalar(select(UserAccount).where(UserAccount.unique_id == candidate))
        if taken is None:
            return candidate


def user_resource(user: UserAccount) -> dict[str, Any]:
    """The REST shape of a user account (never its password hash)."""
    return {
        "email": user.email,
        "uniqueId": user.unique_id,
        "displayName": user.display_name,
        "owner": user.owner,
        "disabled": user.disabled,
        "member": f"{USER}:{user.email}",
        "createTime": rfc3339(user.create_time),
    }


def create_user(
    session: Session, email: str, password: str, display_name: str = "", *, owner: bool = False
) -> UserAccount:
    email = check_email(email)
    _check_password(password)
    if session.get(UserAccount, email) is not None:
        raise AlreadyExists(f"User [{email}] already exists.")
    user = UserAccount(
        email=email,
        unique_id=_new_unique_id(session),
        display_name=display_name,
        password_hash=_hasher.hash(password),
        owner=owner,
        disabled=False,
        create_time=utcnow(),
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[UserAccount]:
    return list(session.scalars(select(UserAccount).order_by(UserAccount.email)))


def get_user(session: Session, email: str) -> UserAccount:
    user = session.get(UserAccount, email.strip().lower())
    if user is None:
        raise NotFound(f"User [{email}] does not exist (see: cloudlet auth users list).")
    return user


def delete_user(session: Session, email: str) -> None:
    """Delete a user and end all of its sessions. The local owner cannot be deleted."""
    user = get_user(session, email)
    if user.owner:
        raise FailedPrecondition(f"[{user.email}] is the local owner and cannot be deleted.")
    session.execute(delete(UserSession).where(UserSession.email == user.email))
    session.delete(user)


def set_password(session: Session, email: str, password: str) -> UserAccount:
    """Change a password. Existing sign-ins stay (revoke them with `cloudlet auth revoke`)."""
    _check_password(password)
    user = get_user(session, email)
    user.password_hash = _hasher.hash(password)
    return user


def password_user(session: Session, email: str, password: str) -> UserAccount | None:
    """The enabled user whose password this is, or None (wrong email, password, or disabled).

    Slow on purpose (argon2): call it off the event loop.
    """
    user = session.get(UserAccount, email.strip().lower())
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):  # parameters were raised since
        user.password_hash = _hasher.hash(password)
    return user


def user_record(session: Session, email: str) -> UserRecord | None:
    user = session.get(UserAccount, email)
    return None if user is None else UserRecord(user.email, user.unique_id, user.disabled)


# -- sessions ------------------------------------------------------------------------------------


def start_session(
    session: Session,
    email: str,
    purpose: str,
    lifetime: int,
    *,
    principal_kind: str = USER,
    session_id: str = "",
) -> UserSession:
    """Record a sign-in; its id is random unless given (a console cookie's hash)."""
    now = utcnow()
    row = UserSession(
        session_id=session_id or secrets.token_hex(16),
        email=email,
        principal_kind=principal_kind,
        purpose=purpose,
        create_time=now,
        expire_time=now + timedelta(seconds=lifetime),
    )
    session.add(row)
    session.flush()
    return row


def end_session(session: Session, session_id: str) -> bool:
    """Revoke a sign-in; whether there was one."""
    row = session.get(UserSession, session_id)
    if row is None:
        return False
    session.delete(row)
    return True


def session_record(session: Session, session_id: str) -> SessionRecord | None:
    """A live session, or None once revoked or expired."""
    row = session.get(UserSession, session_id)
    if row is None:
        return None
    expires = int(row.expire_time.timestamp())
    if expires <= time.time():
        return None
    return SessionRecord(row.session_id, row.email, row.principal_kind, expires)


# -- first start ---------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def bootstrap_owner(db: Database, password_file: Path, url: str) -> None:
    """Create the local owner on the first start of a metadata store, and say how to sign in.
    (Also forgets sessions that have expired.)

    The random password goes to `password_file` (0600) only; the log names the file.
    """
    with db.session() as session:
        exists = session.get(UserAccount, OWNER_EMAIL) is not None
        session.execute(delete(UserSession).where(UserSession.expire_time < utcnow()))
    if not exists:
        password = secrets.token_urlsafe(18)
        try:
            with db.session() as session:
                create_user(session, OWNER_EMAIL, password, "Local owner", owner=True)
        except IntegrityError:  # another gateway on the same database made it first
            return
        _write_private(password_file, password + "\n")
        logger.info("created the local owner account %s", OWNER_EMAIL)
    if password_file.exists():
        logger.info(
            "sign in as %s with the password in %s (mode 0600): cloudlet auth login %s "
            "--password-file %s, or at %s/console/signin",
            OWNER_EMAIL,
            password_file,
            OWNER_EMAIL,
            password_file,
            url,
        )
