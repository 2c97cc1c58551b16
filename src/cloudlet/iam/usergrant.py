"""The token endpoint's grants for people: password sign-in, refresh, and revocation.

`cloudlet auth login` signs in with the OAuth 2.0 resource-owner password grant (RFC 6749 §4.3:
`grant_type=password&username=EMAIL&password=...`) and gets a refresh token, as gcloud gets one
from Google's sign-in; afterwards it uses the refresh-token grant (RFC 6749 §6), exactly as
google-auth's user credentials do. Revocation is Google's endpoint
(https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke): `POST /revoke`
with `token=` a refresh or access token of the sign-in; both stop working at once.

A user's refresh token is `1//cloudlet.` + an HS256 JWT naming its session (`sid`); its access
tokens carry the same `sid`, so a bearer check fails as soon as the session row is gone.
"""

from __future__ import annotations

import secrets
from typing import Any

import jwt

from cloudlet.core.db import Database
from cloudlet.iam.keyring import Keyring
from cloudlet.iam.tokens import (
    ACCESS_TOKEN_PREFIX,
    ACCESS_TOKEN_TTL,
    ISSUER,
    REFRESH_TOKEN_PREFIX,
    USER,
    KeySource,
    OAuthError,
    Principal,
    TokenGrant,
    issue_access_token,
    scopes_of,
)
from cloudlet.iam.users import CLI_SESSION_LIFETIME, end_session, password_user, start_session

__all__ = [
    "CLOUD_PLATFORM",
    "exchange_password",
    "exchange_user_refresh",
    "revoke_token",
    "user_principal",
]

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
_REVOKED = "Token has been expired or revoked."


def user_principal(
    email: str,
    unique_id: str,
    session_id: str,
    scopes: tuple[str, ...],
    expires_at: int,
    via: str = "access_token",
) -> Principal:
    return Principal(
        email=email,
        project_id="",
        unique_id=unique_id,
        key_id="",
        via=via,
        scopes=scopes,
        expires_at=expires_at,
        kind=USER,
        session_id=session_id,
    )


def _refresh_token(secret: bytes, principal: Principal, now: int, expires_at: int) -> str:
    claims = {
        "iss": ISSUER,
        "typ": "refresh",
        "kind": USER,
        "sub": principal.email,
        "azp": principal.unique_id,
        "sid": principal.session_id,
        "scope": " ".join(principal.scopes),
        "iat": now,
        "exp": expires_at,
        "jti": secrets.token_hex(8),
    }
    return REFRESH_TOKEN_PREFIX + jwt.encode(claims, secret, algorithm="HS256")


def exchange_password(
    keyring: Keyring,
    db: Database,
    username: str,
    password: str,
    scopes: tuple[str, ...],
    *,
    now: int,
) -> TokenGrant:
    """Sign a user in: a new session, its refresh token and a first access token (blocking)."""
    with db.session() as session:
        user = password_user(session, username, password)
        if user is None:
            # One answer for every failure, so it tells nothing about which accounts exist.
            raise OAuthError(
                "invalid_grant", "Invalid username or password (or the account is disabled)."
            )
        row = start_session(session, user.email, "cli", CLI_SESSION_LIFETIME)
        email, unique_id, session_id = user.email, user.unique_id, row.session_id
    scopes = scopes or (CLOUD_PLATFORM,)
    principal = user_principal(email, unique_id, session_id, scopes, now + ACCESS_TOKEN_TTL)
    secret = keyring.secret()
    return TokenGrant(
        issue_access_token(secret, principal, now),
        ACCESS_TOKEN_TTL,
        principal,
        refresh_token=_refresh_token(secret, principal, now, now + CLI_SESSION_LIFETIME),
    )


def exchange_user_refresh(
    source: KeySource, claims: dict[str, Any], scopes: tuple[str, ...], *, now: int
) -> TokenGrant:
    """The refresh-token grant for a user's (already verified) refresh-token claims."""
    email, session_id = str(claims.get("sub", "")), str(claims.get("sid", ""))
    found = source.session(session_id) if session_id else None
    if found is None or found.email != email:
        raise OAuthError("invalid_grant", _REVOKED)
    user = source.user(email)
    if user is None:
        raise OAuthError("invalid_grant", f"Invalid grant: user [{email}] was deleted.")
    if user.disabled:
        raise OAuthError("invalid_grant", f"Invalid grant: user [{email}] is disabled.")
    principal = user_principal(
        email, user.unique_id, session_id, scopes or scopes_of(claims), now + ACCESS_TOKEN_TTL
    )
    return TokenGrant(
        issue_access_token(source.secret(), principal, now), ACCESS_TOKEN_TTL, principal
    )


def revoke_token(keyring: Keyring, db: Database, token: str) -> None:
    """End the sign-in a user's refresh or access token belongs to (blocking).

    Raises OAuthError("invalid_token") for a token that is not a live user token of ours.
    """
    invalid = OAuthError("invalid_token", "Token expired or revoked")
    for prefix in (REFRESH_TOKEN_PREFIX, ACCESS_TOKEN_PREFIX):
        if token.startswith(prefix):
            raw = token[len(prefix) :]
            break
    else:
        raise invalid
    try:
        claims: dict[str, Any] = jwt.decode(
            raw,
            key=keyring.secret(),
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"verify_exp": False, "require": ["sub"]},
        )
    except jwt.InvalidTokenError:
        raise invalid from None
    session_id = claims.get("sid")
    if claims.get("kind") != USER or not isinstance(session_id, str) or not session_id:
        # Service-account tokens are not stored, so there is nothing to revoke: they expire
        # within the hour (delete the key or disable the account to stop them at once).
        raise OAuthError(
            "invalid_token",
            "Only tokens of user sign-ins can be revoked; a "
            "service account's token expires by itself within an hour.",
        )
    with db.session() as session:
        ended = end_session(session, session_id)
    keyring.clear()
    if not ended:
        raise invalid
