"""The OAuth2 JWT-bearer grant and the bearer tokens the gateway accepts. No IO of its own.

Two kinds of credential are ours:

- **access tokens**, issued by `/token` for a signed JWT-bearer grant (RFC 7523, as google-auth's
  `service_account.Credentials` sends it:
  https://developers.google.com/identity/protocols/oauth2/service-account#httprest). They are
  `ya29.cloudlet.` followed by an HS256 JWT signed with the gateway's secret, so they are checked
  without a database write and survive restarts (the secret is in the metadata store);
- **self-signed JWTs**, which google-auth sends straight to an API instead of asking for a token
  (https://google.aip.dev/auth/4111), signed RS256 with one of our service-account keys.

Keys are found through a `KeySource` (the gateway's `Keyring`), so this module stays pure.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from cloudlet.core.errors import Unauthenticated
from cloudlet.iam.naming import split_email

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "ACCESS_TOKEN_TTL",
    "JWT_BEARER",
    "KeyRecord",
    "KeySource",
    "OAuthError",
    "Principal",
    "TokenGrant",
    "exchange_assertion",
    "issue_access_token",
    "verify_bearer",
]

logger = logging.getLogger(__name__)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TOKEN_PREFIX = "ya29.cloudlet."
ACCESS_TOKEN_TTL = 3600
# Google accepts assertions that live at most an hour; allow this much clock skew around it.
MAX_ASSERTION_LIFETIME = 3600
SKEW = 60
_ISSUER = "cloudlet"
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


class KeySource(Protocol):
    def key(self, key_id: str) -> KeyRecord | None: ...

    def account_keys(self, email: str) -> list[KeyRecord] | None:
        """The keys of an account, or None when there is no such account."""
        ...

    def knows_project(self, project_id: str) -> bool: ...

    def secret(self) -> bytes: ...


@dataclass(frozen=True)
class Principal:
    """Who made a request: a service account, proven by one of its keys."""

    email: str
    project_id: str
    unique_id: str
    key_id: str
    via: str  # "access_token" or "self_signed_jwt"
    scopes: tuple[str, ...] = ()
    expires_at: int = 0

    @property
    def member(self) -> str:
        """The IAM policy member string of this principal."""
        return f"serviceAccount:{self.email}"


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: int
    principal: Principal

    def response(self) -> dict[str, Any]:
        """The token endpoint's JSON answer."""
        return {
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
        }


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


def _host_port(url: str) -> tuple[str, int | None] | None:
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
    found = _host_port(url)
    if found is None:
        return False
    host, port = found
    if (host, port) in own:
        return True
    return host in _LOCAL_HOSTS and any(h in _LOCAL_HOSTS and p == port for h, p in own)


def _token_audience_ok(aud: Any, own: Collection[tuple[str, int]]) -> bool:
    audiences = aud if isinstance(aud, list) else [aud]
    for value in audiences:
        if not isinstance(value, str):
            continue
        if value in GOOGLE_TOKEN_AUDIENCES:
            return True
        if is_own_url(value, own) and urlsplit(value).path.rstrip("/") == "/token":
            return True
    return False


def _api_audience_ok(aud: Any, own: Collection[tuple[str, int]]) -> bool:
    """A self-signed JWT names the API root it is for, such as https://storage.googleapis.com/."""
    audiences = aud if isinstance(aud, list) else [aud]
    for value in audiences:
        if not isinstance(value, str):
            continue
        found = _host_port(value)
        if found and (found[0].endswith(".googleapis.com") or is_own_url(value, own)):
            return True
    return False


# -- parsing -------------------------------------------------------------------------------------


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a JWT, unverified, or None when it is not a JWT at all."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except (jwt.InvalidTokenError, ValueError, json.JSONDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    return header, claims


def _verify_signature(token: str, key: RSAPublicKey) -> dict[str, Any] | None:
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


def _int_claim(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _lifetime_ok(claims: dict[str, Any], now: int) -> bool:
    iat, exp = _int_claim(claims, "iat"), _int_claim(claims, "exp")
    if iat is None or exp is None:
        return False
    return (
        iat <= now + SKEW
        and exp > now - SKEW
        and exp > iat
        and exp - iat <= MAX_ASSERTION_LIFETIME + SKEW
    )


def _scopes(claims: dict[str, Any]) -> tuple[str, ...]:
    scope = claims.get("scope")
    return tuple(scope.split()) if isinstance(scope, str) else ()


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the token endpoint --------------------------------------------------------------------------


def _grant_key(source: KeySource, header: dict[str, Any], claims: dict[str, Any],
               token: str) -> tuple[KeyRecord, dict[str, Any]]:  # fmt: skip
    email = claims.get("iss")
    if not isinstance(email, str) or not email:
        raise OAuthError("invalid_grant", "Invalid JWT: the iss claim must be the service "
                         "account's email (client_email of the key file).")  # fmt: skip
    account_keys = source.account_keys(email)
    if account_keys is None:
        raise OAuthError(
            "invalid_grant",
            f"Invalid grant: account not found. No service account [{email}] exists here "
            "(it may have been deleted); create one with: cloudlet iam service-accounts create "
            "NAME",
        )
    kid = header.get("kid")
    if isinstance(kid, str) and kid:
        candidates = [k for k in account_keys if k.key_id == kid]
        if not candidates:
            raise OAuthError(
                "invalid_grant",
                f"Invalid JWT Signature. Key [{kid}] of [{email}] does not exist (it was deleted, "
                "or was never issued here). Create a new key with: cloudlet iam service-accounts "
                f"keys create key.json --iam-account {email}",
            )
    else:  # no kid: any of the account's keys may have signed it, as Google allows
        candidates = account_keys
    for record in candidates:
        verified = _verify_signature(token, record.public_key)
        if verified is not None:
            return record, verified
    which = f"key [{kid}]" if kid else "any key"
    raise OAuthError(
        "invalid_grant",
        f"Invalid JWT Signature. The assertion was not signed by {which} of [{email}]; use the "
        "key file cloudlet issued, unmodified.",
    )


def exchange_assertion(
    source: KeySource,
    assertion: str,
    *,
    own: Collection[tuple[str, int]],
    now: int,
) -> TokenGrant:
    """Check a JWT-bearer grant's assertion and issue an access token for its account."""
    parsed = _unverified(assertion)
    if parsed is None:
        raise OAuthError("invalid_grant", "Invalid JWT: the assertion is not a well-formed "
                         "JWT (header.claims.signature, base64url).")  # fmt: skip
    header, claims = parsed
    if header.get("alg") != "RS256":
        raise OAuthError("invalid_grant", f"Invalid JWT: alg [{header.get('alg')}] is not "
                         "supported; sign the assertion with RS256.")  # fmt: skip
    record, claims = _grant_key(source, header, claims, assertion)
    if not _token_audience_ok(claims.get("aud"), own):
        raise OAuthError(
            "invalid_grant",
            f"Invalid JWT: Failed audience check. The aud claim [{claims.get('aud')}] must be "
            "https://oauth2.googleapis.com/token or this gateway's /token URL.",
        )
    if not _lifetime_ok(claims, now):
        raise OAuthError(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
            "timeframe. Check your iat and exp values in the JWT claim (and the clock of this "
            "machine).",
        )
    if record.disabled:
        raise OAuthError("invalid_grant", f"Invalid grant: account or key disabled. Enable "
                         f"[{record.email}] or its key [{record.key_id}] first.")  # fmt: skip
    if "target_audience" in claims:
        raise OAuthError(
            "unsupported_grant_type",
            "ID tokens (target_audience) are not issued by cloudlet yet; request an access "
            "token (give scopes instead of a target audience).",
        )
    principal = Principal(
        email=record.email,
        project_id=record.project_id,
        unique_id=record.unique_id,
        key_id=record.key_id,
        via="access_token",
        scopes=_scopes(claims),
        expires_at=now + ACCESS_TOKEN_TTL,
    )
    token = issue_access_token(source.secret(), principal, now)
    return TokenGrant(token, ACCESS_TOKEN_TTL, principal)


def issue_access_token(secret: bytes, principal: Principal, now: int) -> str:
    """An access token for `principal`, valid for ACCESS_TOKEN_TTL seconds from `now`."""
    claims = {
        "iss": _ISSUER,
        "sub": principal.email,
        "azp": principal.unique_id,
        "key": principal.key_id,
        "scope": " ".join(principal.scopes),
        "iat": now,
        "exp": now + ACCESS_TOKEN_TTL,
        "jti": secrets.token_hex(8),
    }
    return ACCESS_TOKEN_PREFIX + jwt.encode(claims, secret, algorithm="HS256")


# -- bearer tokens on API calls ------------------------------------------------------------------


def _reject(problem: str, fix: str, reason: str = "ACCESS_TOKEN_INVALID") -> Unauthenticated:
    message = f"Request had invalid authentication credentials: {problem}. {fix}"
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
        }
    ]
    return Unauthenticated(
        message,
        reason="authError",
        details=details,
        headers={"WWW-Authenticate": 'Bearer realm="cloudlet", error="invalid_token"'},
    )


_NEW_KEY = "Create a key with: cloudlet iam service-accounts keys create key.json --iam-account "


def _verify_access_token(source: KeySource, token: str, now: int) -> Principal:
    raw = token[len(ACCESS_TOKEN_PREFIX) :]
    try:
        claims: dict[str, Any] = jwt.decode(
            raw,
            key=source.secret(),
            algorithms=["HS256"],
            issuer=_ISSUER,
            options={"verify_exp": False, "verify_aud": False, "require": ["exp", "sub", "key"]},
        )
    except jwt.InvalidTokenError:
        raise _reject(
            "the access token is not one this gateway issued (bad signature or malformed)",
            "Get a new token from this gateway's /token endpoint with a key file it issued.",
        ) from None
    exp = _int_claim(claims, "exp") or 0
    if exp <= now - SKEW:
        raise _reject(
            f"the access token expired at {_when(exp)}",
            "Refresh the credentials (google-auth does so by itself) to get a new one.",
            reason="ACCESS_TOKEN_EXPIRED",
        )
    return _principal_for_key(
        source, str(claims["key"]), str(claims["sub"]), "access_token", _scopes(claims), exp
    )


def _principal_for_key(source: KeySource, kid: str, email: str, via: str,
                       scopes: tuple[str, ...], exp: int) -> Principal:  # fmt: skip
    record = source.key(kid)
    if record is None or record.email != email:
        raise _reject(
            f"key [{kid}] of service account [{email}] no longer exists (the key or the "
            "account was deleted)",
            _NEW_KEY + email,
        )
    if record.disabled:
        raise _reject(
            f"service account [{email}] or its key [{kid}] is disabled",
            f"Enable it with: cloudlet iam service-accounts enable {email}",
        )
    return Principal(
        email=record.email,
        project_id=record.project_id,
        unique_id=record.unique_id,
        key_id=record.key_id,
        via=via,
        scopes=scopes,
        expires_at=exp,
    )


def _verify_self_signed(
    source: KeySource,
    token: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    own: Collection[tuple[str, int]],
    now: int,
) -> Principal | None:
    email = claims.get("iss")
    parts = split_email(email) if isinstance(email, str) else None
    kid = header.get("kid")
    record = source.key(kid) if isinstance(kid, str) and kid else None
    if record is None:
        if parts is None or not source.knows_project(parts[1]):
            return None  # a service account of some other cloud: not ours to judge
        raise _reject(
            f"the JWT names key [{kid}] of [{email}], which does not exist here (deleted, or "
            "never issued by this gateway)",
            _NEW_KEY + str(email),
        )
    if header.get("alg") != "RS256" or _verify_signature(token, record.public_key) is None:
        raise _reject(
            f"the self-signed JWT's signature does not match key [{record.key_id}] of "
            f"[{record.email}]",
            "Sign it with the key file cloudlet issued, unmodified.",
        )
    if email != record.email:
        raise _reject(
            f"the JWT's iss [{email}] is not the owner of key [{record.key_id}]",
            "Set iss (and sub) to the key's client_email.",
        )
    if not _lifetime_ok(claims, now):
        exp = _int_claim(claims, "exp")
        expired = exp is not None and exp <= now - SKEW
        raise _reject(
            f"the self-signed JWT expired at {_when(exp)}"
            if expired and exp is not None
            else "the self-signed JWT's iat/exp are missing or span more than an hour",
            "Sign a fresh JWT (google-auth does so by itself).",
            reason="ACCESS_TOKEN_EXPIRED" if expired else "ACCESS_TOKEN_INVALID",
        )
    aud = claims.get("aud")
    if aud is None and not claims.get("scope"):
        raise _reject("the self-signed JWT has neither aud nor scope",
                      "Give it aud (the API root URL) or scope.")  # fmt: skip
    if aud is not None and not _api_audience_ok(aud, own):
        raise _reject(
            f"the self-signed JWT's aud [{aud}] is not this gateway or a googleapis.com API",
            "Set aud to the API root URL, such as https://storage.googleapis.com/.",
        )
    exp = _int_claim(claims, "exp") or 0
    return _principal_for_key(
        source, record.key_id, record.email, "self_signed_jwt", _scopes(claims), exp
    )


def verify_bearer(
    source: KeySource,
    token: str,
    *,
    own: Collection[tuple[str, int]],
    now: int,
) -> Principal | None:
    """The principal of a bearer token, None if the token is not ours, or Unauthenticated.

    A token that is ours (our access token, or a JWT signed by — or claiming — one of our keys)
    must be valid. Anything else, such as a real Google token from a user's ADC, is not ours to
    judge and the request stays anonymous.
    """
    if token.startswith(ACCESS_TOKEN_PREFIX):
        return _verify_access_token(source, token, now)
    parsed = _unverified(token)
    if parsed is None:
        logger.debug("bearer token is not in a cloudlet format; treating request as anonymous")
        return None
    header, claims = parsed
    principal = _verify_self_signed(source, token, header, claims, own, now)
    if principal is None:
        logger.debug("JWT from an unknown issuer %r; treating request as anonymous",
                     claims.get("iss"))  # fmt: skip
    return principal
