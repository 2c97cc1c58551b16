"""Tables of people and their sign-ins: local user accounts and their sessions.

On Google Cloud people come from Google accounts; here they are local accounts of the gateway
(`user:EMAIL` in IAM). Only argon2 hashes of passwords are stored (cloudlet.iam.users), and a
session row holds no secret either: a console cookie is stored as its SHA-256, a refresh
token names its session by an id that only the gateway's signing secret makes usable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime

__all__ = ["UserAccount", "UserSession"]


class UserAccount(Base):
    """A person who signs in: the local owner, and the users the owner creates."""

    __tablename__ = "iam_users"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    unique_id: Mapped[str] = mapped_column(String(21), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    # argon2id PHC string (argon2-cffi); empty: no password sign-in.
    password_hash: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())


class UserSession(Base):
    """One sign-in: a CLI login (its refresh token) or a console cookie.

    Revoking deletes the row; every refresh token, access token and cookie of the session stops
    working at once. `principal_kind` is "user", or "serviceAccount" for a console sign-in with
    a service account's access token.
    """

    __tablename__ = "iam_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    principal_kind: Mapped[str] = mapped_column(String(16), default="user")
    purpose: Mapped[str] = mapped_column(String(16))  # "cli" (refresh token) or "console"
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())
    expire_time: Mapped[datetime] = mapped_column(UTCDateTime())
