"""V4 signed URLs: the canonical request and its check. Pure: no IO, keys come from the caller.

https://cloud.google.com/storage/docs/access-control/signed-urls
https://cloud.google.com/storage/docs/authentication/canonical-requests
https://cloud.google.com/storage/docs/authentication/signatures#string-to-sign

A signed URL is `/BUCKET/OBJECT?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=EMAIL/
DATE/LOCATION/storage/goog4_request&X-Goog-Date=...&X-Goog-Expires=...&X-Goog-SignedHeaders=
host&X-Goog-Signature=HEX`. The signature is RSA-SHA256 by a service account's private key over
a string that hashes the canonical request, so checking it needs only the account's public keys.
"""

from __future__ import annotations

import binascii
import hashlib
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = ["SignedRequest", "SignedUrlError", "canonical_request", "is_signed", "parse", "verify"]

ALGORITHM = "GOOG4-RSA-SHA256"
MAX_EXPIRES = 7 * 24 * 3600  # "up to 7 days (604800 seconds)"
_REQUIRED = (
    "X-Goog-Algorithm",
    "X-Goog-Credential",
    "X-Goog-Date",
    "X-Goog-Expires",
    "X-Goog-SignedHeaders",
    "X-Goog-Signature",
)


class SignedUrlError(Exception):
    """A signed URL that cannot be honoured, as the XML API's error: status, code, details."""

    def __init__(self, status: int, code: str, message: str, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class SignedRequest:
    email: str
    scope: str  # DATE/LOCATION/storage/goog4_request
    timestamp: str  # X-Goog-Date, e.g. 20261128T193000Z
    signed_at: datetime
    expires_at: datetime
    signed_headers: tuple[str, ...]
    signature: bytes
    string_to_sign: str
    canonical: str


def is_signed(query: Iterable[tuple[str, str]]) -> bool:
    return any(k == "X-Goog-Signature" for k, _ in query)


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="~")


def canonical_request(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, Sequence[str]],
    signed_headers: Sequence[str],
) -> str:
    """The canonical request, as the signer built it (google-cloud-storage's _signing.py).

    `path` is the URL-encoded path as sent; `query` the decoded pairs without the signature;
    `headers` maps lower-case names to every value the request carried.
    """
    canonical_query = "&".join(sorted(f"{_quote(k)}={_quote(v)}" for k, v in query))
    lines = [
        f"{name}:{','.join(' '.join(v.split()) for v in headers.get(name, ()))}"
        for name in signed_headers
    ]
    payload = "UNSIGNED-PAYLOAD"
    if "x-goog-content-sha256" in signed_headers:
        payload = ",".join(headers.get("x-goog-content-sha256", ())) or payload
    return "\n".join(
        [method, path, canonical_query, "\n".join(lines) + "\n", ";".join(signed_headers), payload]
    )


def _bad(details: str) -> SignedUrlError:
    return SignedUrlError(400, "AuthenticationRequired", "Invalid argument.", details)


def parse(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, Sequence[str]],
    now: datetime,
) -> SignedRequest:
    """Read and check everything but the signature itself (see `verify`)."""
    params: dict[str, str] = {}
    for key, value in query:
        params.setdefault(key, value)
    missing = [k for k in _REQUIRED if not params.get(k)]
    if missing:
        raise _bad(
            f"The signed URL lacks {', '.join(missing)}: sign it again with "
            "generate_signed_url(version='v4') or `gcloud storage sign-url`."
        )
    if params["X-Goog-Algorithm"] != ALGORITHM:
        raise _bad(
            f"Unsupported X-Goog-Algorithm [{params['X-Goog-Algorithm']}]: only "
            f"{ALGORITHM} (service account keys) is supported."
        )
    email, _, scope = params["X-Goog-Credential"].partition("/")
    parts = scope.split("/")
    if not email or len(parts) != 4 or parts[2:] != ["storage", "goog4_request"]:
        raise _bad(
            f"Invalid X-Goog-Credential [{params['X-Goog-Credential']}]: expected "
            "EMAIL/YYYYMMDD/LOCATION/storage/goog4_request."
        )
    try:
        signed_at = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params["X-Goog-Expires"])
    except ValueError:
        raise _bad(
            "X-Goog-Date must be YYYYMMDDTHHMMSSZ and X-Goog-Expires a number of seconds."
        ) from None
    if not 1 <= expires <= MAX_EXPIRES:
        raise _bad(f"X-Goog-Expires [{expires}] must be between 1 and {MAX_EXPIRES} seconds.")
    if parts[0] != params["X-Goog-Date"][:8]:
        raise _bad("The date in X-Goog-Credential does not match X-Goog-Date.")
    expires_at = signed_at + timedelta(seconds=expires)
    if now >= expires_at:
        raise SignedUrlError(
            400,
            "ExpiredToken",
            "Invalid argument.",
            f"Request has expired: {params['X-Goog-Date']} + {expires} s. Sign a new URL.",
        )
    if signed_at > now + timedelta(minutes=15):
        raise _bad("The signed URL is not valid yet (X-Goog-Date is in the future).")
    signed_headers = tuple(params["X-Goog-SignedHeaders"].lower().split(";"))
    if "host" not in signed_headers:
        raise _bad("X-Goog-SignedHeaders must include host.")
    try:
        signature = binascii.unhexlify(params["X-Goog-Signature"])
    except (binascii.Error, ValueError):
        raise _bad("X-Goog-Signature is not hexadecimal.") from None
    rest = [(k, v) for k, v in query if k != "X-Goog-Signature"]
    canonical = canonical_request(method, path, rest, headers, signed_headers)
    string_to_sign = "\n".join(
        [ALGORITHM, params["X-Goog-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    return SignedRequest(
        email,
        scope,
        params["X-Goog-Date"],
        signed_at,
        expires_at,
        signed_headers,
        signature,
        string_to_sign,
        canonical,
    )


def verify(request: SignedRequest, keys: Iterable[RSAPublicKey]) -> None:
    """Pass if any of the account's keys made the signature; else SignatureDoesNotMatch."""
    for key in keys:
        try:
            key.verify(
                request.signature,
                request.string_to_sign.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            return
        except InvalidSignature:
            continue
    raise SignedUrlError(
        403,
        "SignatureDoesNotMatch",
        "Access denied.",
        "The request signature we calculated does not match the signature you provided. "
        "Check your Google secret key and signing method. (The canonical request is "
        f"below; sign exactly this, with a key of {request.email}.)\n{request.canonical}",
    )
