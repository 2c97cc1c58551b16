"""The token endpoint's logic: check a JWT-bearer grant, issue an access token. No IO.

The grant is RFC 7523 as google-auth's `service_account.Credentials` sends it
(https://developers.google.com/identity/protocols/oauth2/service-account#httprest); errors are
RFC 6749 §5.2 bodies with Google's wording, plus what to do.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import jwt

from cloudlet.iam.tokens import (
    ACCESS_TOKEN_TTL,
    ISSUER,
    REFRESH_TOKEN_PREFIX,
    USER,
    KeyRecord,
    KeySource,
    OAuthError,
    Principal,
    TokenGrant,
    issue_access_token,
    lifetime_ok,
    scopes_of,
    token_audience_ok,
    unverified,
    verify_signature,
)

__all__ = ["exchange_assertion", "exchange_refresh_token"]


def _grant_key(
    source: KeySource, header: dict[str, Any], claims: dict[str, Any], token: str
) -> tuple[KeyRecord, dict[str, Any]]:
    email = claims.get("iss")
    if not isinstance(email, str) or not email:
        raise OAuthError(
            "invalid_grant",
            "Invalid JWT: the iss claim must be the service "
            "account's email (client_email of the key file).",
        )
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
        verified = verify_signature(token, record.public_key)
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
    parsed = unverified(assertion)
    if parsed is None:
        raise OAuthError(
            "invalid_grant",
            "Invalid JWT: the assertion is not a well-formed "
            "JWT (header.claims.signature, base64url).",
        )
    header, claims = parsed
    if header.get("alg") != "RS256":
        raise OAuthError(
            "invalid_grant",
            f"Invalid JWT: alg [{header.get('alg')}] is not "
            "supported; sign the assertion with RS256.",
        )
    record, claims = _grant_key(source, header, claims, assertion)
    if not token_audience_ok(claims.get("aud"), own):
        raise OAuthError(
            "invalid_grant",
            f"Invalid JWT: Failed audience check. The aud claim [{claims.get('aud')}] must be "
            "https://oauth2.googleapis.com/token or this gateway's /token URL.",
        )
    if not lifetime_ok(claims, now):
        raise OAuthError(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
            "timeframe. Check your iat and exp values in the JWT claim (and the clock of this "
            "machine).",
        )
    if record.disabled:
        raise OAuthError(
            "invalid_grant",
            f"Invalid grant: account or key disabled. Enable "
            f"[{record.email}] or its key [{record.key_id}] first.",
        )
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
        scopes=scopes_of(claims),
        expires_at=now + ACCESS_TOKEN_TTL,
    )
    token = issue_access_token(source.secret(), principal, now)
    return TokenGrant(token, ACCESS_TOKEN_TTL, principal)


def exchange_refresh_token(
    source: KeySource, refresh_token: str, scopes: tuple[str, ...], *, now: int
) -> TokenGrant:
    """The refresh-token grant (RFC 6749 §6) for worker credentials (see credentials.py) and
    for users signed in by `cloudlet auth login` (see usergrant.py)."""
    revoked = OAuthError("invalid_grant", "Token has been expired or revoked.")
    if not refresh_token.startswith(REFRESH_TOKEN_PREFIX):
        raise revoked
    try:
        claims: dict[str, Any] = jwt.decode(
            refresh_token[len(REFRESH_TOKEN_PREFIX) :],
            key=source.secret(),
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "typ"]},
        )
    except jwt.InvalidTokenError:
        raise revoked from None
    if claims.get("typ") != "refresh":
        raise revoked
    if claims.get("kind") == USER:  # a person's `cloudlet auth login`
        from cloudlet.iam.usergrant import exchange_user_refresh

        return exchange_user_refresh(source, claims, scopes, now=now)
    email = str(claims["sub"])
    account = source.account(email)
    if account is None:
        raise OAuthError(
            "invalid_grant",
            f"Invalid grant: account not found. Service account [{email}] was deleted.",
        )
    if account.disabled:
        raise OAuthError(
            "invalid_grant", f"Invalid grant: account disabled. Enable [{email}] first."
        )
    principal = Principal(
        email=account.email,
        project_id=account.project_id,
        unique_id=account.unique_id,
        key_id="",
        via="access_token",
        scopes=scopes or scopes_of(claims),  # the grant's own scope, else the token's
        expires_at=now + ACCESS_TOKEN_TTL,
    )
    token = issue_access_token(source.secret(), principal, now)
    return TokenGrant(token, ACCESS_TOKEN_TTL, principal)
