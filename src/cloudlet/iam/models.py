"""Tables of the iam subsystem: service accounts, their keys, the token secret and IAM policies.

Only public halves of keys are stored: the private key lives in the file handed to the user
once, as on Google Cloud.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloudlet.core.db import Base, UTCDateTime

__all__ = [
    "BucketPolicy",
    "IamSecret",
    "ProjectPolicy",
    "ServiceAccount",
    "ServiceAccountKey",
]


class ServiceAccount(Base):
    """https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts"""

    __tablename__ = "iam_service_accounts"

    email: Mapped[str] = mapped_column(String(100), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.project_id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(String(30))
    unique_id: Mapped[str] = mapped_column(String(21), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(String(256), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())


class ServiceAccountKey(Base):
    """https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys"""

    __tablename__ = "iam_service_account_keys"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(
        ForeignKey("iam_service_accounts.email", ondelete="CASCADE"), index=True
    )
    # The self-signed X.509 certificate (PEM) that carries the public key, as Google keeps it.
    public_cert_pem: Mapped[str] = mapped_column(Text)
    key_algorithm: Mapped[str] = mapped_column(String(32), default="KEY_ALG_RSA_2048")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_after: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_before: Mapped[datetime] = mapped_column(UTCDateTime())


class IamSecret(Base):
    """Gateway-wide secrets (the HMAC key of access tokens), so tokens outlive a restart."""

    __tablename__ = "iam_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    create_time: Mapped[datetime] = mapped_column(UTCDateTime())


class ProjectPolicy(Base):
    """A project's IAM policy (Resource Manager v1 getIamPolicy/setIamPolicy).

    `bindings` is `[{"role", "members"}]` as in Google's Policy; the etag is derived from it
    (iam/policy.py), so it is not stored.
    """

    __tablename__ = "iam_project_policies"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.project_id", ondelete="CASCADE"), primary_key=True
    )
    bindings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime())


class BucketPolicy(Base):
    """A bucket's IAM policy (GCS buckets.getIamPolicy/setIamPolicy); gone with its bucket."""

    __tablename__ = "iam_bucket_policies"

    bucket: Mapped[str] = mapped_column(
        ForeignKey("storage_buckets.name", ondelete="CASCADE"), primary_key=True
    )
    bindings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime())
