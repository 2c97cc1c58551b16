"""RSA keys of service accounts and Google's `service_account` key file. No IO.

A key is an RSA 2048 pair. The private half goes into the JSON key file that google-auth reads
(https://cloud.google.com/iam/docs/keys-create-delete#creating) and is never stored; the public
half is kept as a self-signed X.509 certificate, which is how Google publishes it
(https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "KEY_VALID_BEFORE",
    "NewKey",
    "encode_key_file",
    "generate_key",
    "key_file",
    "load_public_key",
    "new_key_id",
]

# Google's user-managed keys never expire unless an org policy says so; the API shows this.
KEY_VALID_BEFORE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@dataclass(frozen=True)
class NewKey:
    key_id: str
    private_key_pem: str  # PKCS#8, as in Google's key files
    public_cert_pem: str
    valid_after: datetime
    valid_before: datetime


def new_key_id() -> str:
    """40 hex digits, the shape of Google's private_key_id."""
    return secrets.token_hex(20)


def generate_key(unique_id: str, now: datetime) -> NewKey:
    """A fresh RSA 2048 key with its self-signed certificate (CN = the account's unique id)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    valid_after = now.replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, unique_id)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_after - timedelta(minutes=5))
        .not_valid_after(KEY_VALID_BEFORE)
        .sign(private, hashes.SHA256())
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return NewKey(
        key_id=new_key_id(),
        private_key_pem=private_pem,
        public_cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        valid_after=valid_after,
        valid_before=KEY_VALID_BEFORE,
    )


def load_public_key(cert_pem: str) -> rsa.RSAPublicKey:
    key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    if not isinstance(key, rsa.RSAPublicKey):  # pragma: no cover - we only ever store RSA
        raise ValueError("not an RSA certificate")
    return key


def key_file(
    *,
    project_id: str,
    email: str,
    unique_id: str,
    key: NewKey,
    gateway_url: str,
) -> dict[str, Any]:
    """Google's `service_account` JSON key file, with token_uri pointing at our gateway.

    google-auth posts its signed JWT-bearer grant to `token_uri`, so a key we issue gets its
    access tokens from our own `/token` endpoint, offline.
    """
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key.key_id,
        "private_key": key.private_key_pem,
        "client_email": email,
        "client_id": unique_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": f"{gateway_url}/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"{gateway_url}/robot/v1/metadata/x509/{quote(email)}",
        "universe_domain": "googleapis.com",
    }


def encode_key_file(data: dict[str, Any]) -> str:
    """`privateKeyData` of the API: the key file's JSON, base64-encoded."""
    text = json.dumps(data, indent=2) + "\n"
    return base64.b64encode(text.encode()).decode()
