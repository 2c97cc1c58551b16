"""Types and JWT helpers shared by the token endpoint (grant.py) and bearer checks (bearer.py).

No IO. Two kinds of credential are ours:

- **access tokens**, issued by `/token` for a signed JWT-bearer grant (RFC 7523, as google-auth's
  `service_account.Credentials` sends it:
  https://developers.google.com/identity/protocols/oauth2/service-account#httprest). They are
  `ya29.cloudlet.` followed by an HS256 JWT signed with the gateway's secret, so they are checked
  without a database write and survive restarts (the secret is in the metadata store);
- **self-signed JWTs**, which google-auth sends straight to an API instead of asking for a token
  (https://google.aip.dev/auth/4111), signed RS256 with one of our service-account keys.

Keys are found through a `KeySource` (the gateway's `Keyring`), so these modules stay pure.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from cloudlet.core.times import rfc3339

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "ACCESS_TOKEN_TTL",
    "ISSUER",
    "JWT_BEARER",
    "REFRESH_TOKEN_PREFIX",
    "SERVICE_ACCOUNT",
    "SKEW",
    "USER",
    "AccountRecord",
    "KeyRecord",
    "KeySource",
    "OAuthError",
    "Principal",
    "SessionRecord",
    "TokenGrant",
    "UserRecord",
    "api_audience_ok",
    "int_claim",
    "is_own_url",
    "issue_access_token",
    "issue_refresh_token",
    "lifetime_ok",
    "scopes_of",
    "token_audience_ok",
    "unverified",
    "verify_signature",
    "when",
]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TOKEN_PREFIX = "ya29.cloudlet."
# Google's refresh tokens start with "1//"; ours are HS256 JWTs like our access tokens.
REFRESH_TOKEN_PREFIX = "1//cloudlet."
ACCESS_TOKEN_TTL = 3600
# Google accepts assertions that live at most an hour; allow this much clock skew around it.
MAX_ASSERTION_LIFETIME = 3600
SKEW = 60
ISSUER = "cloudlet"
# google-auth signs its grant for Google's token endpoint whatever token_uri says, so these
# audiences are accepted next to our own /token URL.
GOOGLE_TOKEN_AUDIENCES = frozenset(
    {
        "https://oauth2.googleapis.com/token",
        "https://accounts.google.com/o/oauth2/token",
        "https://www.googleapis.com/oauth2/v4/token",
    }
)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass(frozen=True)
class KeyRecord:
    """The public half of a key, with the account it belongs to."""

    key_id: str
    email: str
    project_id: str
    unique_id: str
    public_key: RSAPublicKey
    disabled: bool  # the key or its account is disabled


@dataclass(frozen=True)
class AccountRecord:
    email: str
    project_id: str
    unique_id: str
    disabled: bool


@dataclass(frozen=True)
class UserRecord:
    """A local user account (a person), as bearer checks need it."""

    email: str
    unique_id: str
    disabled: bool


@dataclass(frozen=True)
class SessionRecord:
    """A sign-in of a user (CLI login or console cookie); gone once revoked."""

    session_id: str
    email: str
    principal_kind: str  # "user", or "serviceAccount" (console sign-in with an SA's token)
    expires_at: int


class KeySource(Protocol):
    def key(self, key_id: str) -> KeyRecord | None: ...

    def account(self, email: str) -> AccountRecord | None: ...

    def account_keys(self, email: str) -> list[KeyRecord] | None:
        """The keys of an account, or None when there is no such account."""
        ...

    def knows_project(self, project_id: str) -> bool: ...

    def user(self, email: str) -> UserRecord | None: ...

    def session(self, session_id: str) -> SessionRecord | None:
        """A live (unrevoked, unexpired) session, or None."""
        ...

    def secret(self) -> bytes: ...


SERVICE_ACCOUNT = "serviceAccount"
USER = "user"


@dataclass(frozen=True)
class Principal:
    """Who made a request: a service account proven by one of its keys (or by the worker
    credentials the gateway gave it), or a person's user account.

    `kind` is the IAM member type (https://cloud.google.com/iam/docs/principal-identifiers):
    "serviceAccount" or "user"; `.member` is the one place the member string is made. A user
    has no project and no key; `session_id` names the sign-in its token or cookie belongs to,
    so revoking the session stops it."""

    email: str
    project_id: str  # a service account's project; "" for a user
    unique_id: str
    key_id: str  # empty for worker credentials and users, which no key backs
    via: str  # "access_token", "self_signed_jwt", "session" (console sign-in) or "local"
    scopes: tuple[str, ...] = ()
    expires_at: int = 0
    kind: str = SERVICE_ACCOUNT  # "serviceAccount" or "user": IAM's member type
    session_id: str = ""

    @property
    def member(self) -> str:
        """The IAM policy member string of this principal: `serviceAccount:E` or `user:E`."""
        return f"{self.kind}:{self.email}"


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: int
    principal: Principal
    refresh_token: str = ""  # only a user's password sign-in gets one

    def response(self) -> dict[str, Any]:
        """The token endpoint's JSON answer."""
        out: dict[str, Any] = {
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
        }
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
            out["scope"] = " ".join(self.principal.scopes)
        return out


class OAuthError(Exception):
    """An error of the token endpoint, rendered as RFC 6749 §5.2: error, error_description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


# -- audiences -----------------------------------------------------------------------------------


def host_port(url: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def is_own_url(url: str, own: Collection[tuple[str, int]]) -> bool:
    """Whether a URL names this gateway. localhost, 127.0.0.1 and ::1 are one host here."""
    found = host_port(url)
    if found is None:
        return False
    host, port = found
    if (host, port) in own:
        return True
    return host in _LOCAL_HOSTS and any(h in _LOCAL_HOSTS and p == port for h, p in own)


def token_audience_ok(aud: Any, own: Collection[tuple[str, int]]) -> bool:
    audiences = aud if isinstance(aud, list) else [aud]
    for value in audiences:
        if not isinstance(value, str):
            continue
        if value in GOOGLE_TOKEN_AUDIENCES:
            return True
        if is_own_url(value, own) and urlsplit(value).path.rstrip("/") == "/token":
            return True
    return False


def api_audience_ok(aud: Any, own: Collection[tuple[str, int]]) -> bool:
    """A self-signed JWT names the API root it is for, such as https://storage.googleapis.com/."""
    audiences = aud if isinstance(aud, list) else [aud]
    for value in audiences:
        if not isinstance(value, str):
            continue
        found = host_port(value)
        if found and (found[0].endswith(".googleapis.com") or is_own_url(value, own)):
            return True
    return False


# -- parsing -------------------------------------------------------------------------------------


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a JWT, unverified, or None when it is not a JWT at all."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.InvalidTokenError, ValueError, json.JSONDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    return header, claims


def verify_signature(token: str, key: RSAPublicKey) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidTokenError:
        return None
    return claims


def int_claim(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def lifetime_ok(claims: dict[str, Any], now: int) -> bool:
    iat, exp = int_claim(claims, "iat"), int_claim(claims, "exp")
    if iat is None or exp is None:
        return False
    return (
        iat <= now + SKEW
        and exp > now - SKEW
        and exp > iat
        and exp - iat <= MAX_ASSERTION_LIFETIME + SKEW
    )


def scopes_of(claims: dict[str, Any]) -> tuple[str, ...]:
    scope = claims.get("scope")
    return tuple(scope.split()) if isinstance(scope, str) else ()


def when(epoch: int) -> str:
    return rfc3339(datetime.fromtimestamp(epoch, UTC), "seconds")


def issue_access_token(secret: bytes, principal: Principal, now: int) -> str:
    """An access token for `principal`, valid for ACCESS_TOKEN_TTL seconds from `now`."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": principal.email,
        "azp": principal.unique_id,
        "key": principal.key_id,
        "scope": " ".join(principal.scopes),
        "iat": now,
        "exp": now + ACCESS_TOKEN_TTL,
        "jti": secrets.token_hex(8),
    }
    if principal.kind == USER:  # a user's token lives only as long as its session
        claims.update(kind=USER, sid=principal.session_id)
    return ACCESS_TOKEN_PREFIX + jwt.encode(claims, secret, algorithm="HS256")


def issue_refresh_token(
    secret: bytes, account: AccountRecord, now: int, lifetime: int, scopes: tuple[str, ...]
) -> str:
    """A refresh token for worker credentials: it names the account and expires by itself."""
    claims = {
        "iss": ISSUER,
        "typ": "refresh",
        "sub": account.email,
        "azp": account.unique_id,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_hex(8),
    }
    return REFRESH_TOKEN_PREFIX + jwt.encode(claims, secret, algorithm="HS256")
