"""Bearer tokens on API calls: our access tokens and self-signed JWTs from our keys. No IO.

Self-signed JWTs are google-auth's way to skip the token endpoint
(https://google.aip.dev/auth/4111). A bearer token is a credential the caller presents: one
that is not valid here — ours but expired or revoked, or in no format of ours at all (a real
Google token from the user's ADC, garbage) — is refused with 401, never taken as anonymous;
see docs/security.md.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import jwt

from cloudlet.core.errors import Unauthenticated
from cloudlet.iam.naming import split_email
from cloudlet.iam.tokens import (
    ACCESS_TOKEN_PREFIX,
    ISSUER,
    SKEW,
    USER,
    KeySource,
    Principal,
    api_audience_ok,
    int_claim,
    lifetime_ok,
    scopes_of,
    unverified,
    verify_signature,
    when,
)

__all__ = ["verify_bearer"]

logger = logging.getLogger(__name__)


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
            issuer=ISSUER,
            options={"verify_exp": False, "verify_aud": False, "require": ["exp", "sub", "key"]},
        )
    except jwt.InvalidTokenError:
        raise _reject(
            "the access token is not one this gateway issued (bad signature or malformed)",
            "Get a new token from this gateway's /token endpoint with a key file it issued.",
        ) from None
    if claims.get("typ") == "refresh":
        raise _reject("a refresh token is not an access token", "Exchange it at /token first.")
    exp = int_claim(claims, "exp") or 0
    if exp <= now - SKEW:
        raise _reject(
            f"the access token expired at {when(exp)}",
            "Refresh the credentials (google-auth does so by itself) to get a new one.",
            reason="ACCESS_TOKEN_EXPIRED",
        )
    email, kid = str(claims["sub"]), str(claims["key"])
    if claims.get("kind") == USER:
        return _principal_for_user(
            source, email, str(claims.get("sid", "")), scopes_of(claims), exp
        )
    if not kid:  # worker credentials: no key backs them, only the account
        return _principal_for_account(source, email, scopes_of(claims), exp)
    return _principal_for_key(source, kid, email, "access_token", scopes_of(claims), exp)


def _principal_for_account(
    source: KeySource, email: str, scopes: tuple[str, ...], exp: int
) -> Principal:
    account = source.account(email)
    if account is None:
        raise _reject(
            f"service account [{email}] no longer exists",
            "Run the job (or get credentials) as an account that exists.",
        )
    if account.disabled:
        raise _reject(
            f"service account [{email}] is disabled",
            f"Enable it with: cloudlet iam service-accounts enable {email}",
        )
    return Principal(
        email=account.email,
        project_id=account.project_id,
        unique_id=account.unique_id,
        key_id="",
        via="access_token",
        scopes=scopes,
        expires_at=exp,
    )


def _principal_for_user(
    source: KeySource, email: str, session_id: str, scopes: tuple[str, ...], exp: int
) -> Principal:
    found = source.session(session_id) if session_id else None
    if found is None or found.email != email:
        raise _reject(
            f"the sign-in of [{email}] this token belongs to was revoked or has expired",
            f"Sign in again with: cloudlet auth login {email}",
        )
    user = source.user(email)
    if user is None:
        raise _reject(f"user [{email}] no longer exists", "Sign in as a user that exists.")
    if user.disabled:
        raise _reject(f"user [{email}] is disabled", "Ask the owner to enable the account.")
    return Principal(
        email=user.email,
        project_id="",
        unique_id=user.unique_id,
        key_id="",
        via="access_token",
        scopes=scopes,
        expires_at=exp,
        kind=USER,
        session_id=session_id,
    )


def _principal_for_key(
    source: KeySource, kid: str, email: str, via: str, scopes: tuple[str, ...], exp: int
) -> Principal:
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
        problem = (
            f"the JWT names key [{kid}] of [{email}], which does not exist here (deleted, or "
            "never issued by this gateway)"
            if kid
            else f"the JWT for [{email}] has no kid (the key's private_key_id)"
        )
        raise _reject(problem, _NEW_KEY + str(email))
    if header.get("alg") != "RS256" or verify_signature(token, record.public_key) is None:
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
    if not lifetime_ok(claims, now):
        exp = int_claim(claims, "exp")
        expired = exp is not None and exp <= now - SKEW
        raise _reject(
            f"the self-signed JWT expired at {when(exp)}"
            if expired and exp is not None
            else "the self-signed JWT's iat/exp are missing or span more than an hour",
            "Sign a fresh JWT (google-auth does so by itself).",
            reason="ACCESS_TOKEN_EXPIRED" if expired else "ACCESS_TOKEN_INVALID",
        )
    aud = claims.get("aud")
    if aud is None and not claims.get("scope"):
        raise _reject(
            "the self-signed JWT has neither aud nor scope",
            "Give it aud (the API root URL) or scope.",
        )
    if aud is not None and not api_audience_ok(aud, own):
        raise _reject(
            f"the self-signed JWT's aud [{aud}] is not this gateway or a googleapis.com API",
            "Set aud to the API root URL, such as https://storage.googleapis.com/.",
        )
    exp = int_claim(claims, "exp") or 0
    return _principal_for_key(
        source, record.key_id, record.email, "self_signed_jwt", scopes_of(claims), exp
    )


_FOREIGN_FIX = (
    'Call this gateway without Google credentials (`eval "$(cloudlet env-init)"` turns '
    "them off for gcloud; unset GOOGLE_APPLICATION_CREDENTIALS for the client libraries), or "
    "with a key it issued: cloudlet iam service-accounts keys create key.json --iam-account EMAIL"
)


def verify_bearer(
    source: KeySource,
    token: str,
    *,
    own: Collection[tuple[str, int]],
    now: int,
) -> Principal:
    """The principal of a bearer token, or Unauthenticated.

    Ours are our access tokens and JWTs signed by one of our keys; they must be valid. Any
    other token (a real Google access token from a user's ADC, a JWT of another cloud's account,
    garbage) cannot be checked here and is refused too: a caller that presents a credential
    is never treated as one that presented none.
    """
    if token.startswith(ACCESS_TOKEN_PREFIX):
        return _verify_access_token(source, token, now)
    parsed = unverified(token)
    if parsed is None:
        google = token.startswith("ya29.")
        raise _reject(
            "the bearer token is a Google access token, which this gateway cannot check"
            if google
            else "the bearer token is in no format this gateway issues",
            _FOREIGN_FIX,
        )
    header, claims = parsed
    principal = _verify_self_signed(source, token, header, claims, own, now)
    if principal is None:
        issuer = str(claims.get("iss"))[:100]
        raise _reject(
            f"the JWT's issuer [{issuer}] is not a service account of this gateway", _FOREIGN_FIX
        )
    return principal
