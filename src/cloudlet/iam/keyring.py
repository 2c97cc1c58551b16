"""The gateway's view of service-account keys: a `KeySource` over the metadata store, cached.

Bearer checks run on every authenticated request, so public keys are cached for a short time;
deleting or disabling a key or account clears the cache at once (see `Keyring.clear`).
"""

from __future__ import annotations

import secrets
import threading
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from cloudlet.core.db import Database, utcnow
from cloudlet.core.state import Slot, StateSource, gateway_state
from cloudlet.iam.keys import load_public_key
from cloudlet.iam.models import IamSecret, ServiceAccount, ServiceAccountKey
from cloudlet.iam.tokens import AccountRecord, KeyRecord, Principal

__all__ = ["KEYRING", "CacheMiss", "Keyring", "keyring_for"]

_SECRET_NAME = "access-token-hs256"
_TTL = 30.0
_MAX_TOKENS = 10_000


class CacheMiss(Exception):
    """The cache-only view of a keyring would have to read the database."""


class Keyring:
    """Looks keys up in the database, remembering them for a few seconds."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, KeyRecord]] = {}
        self._accounts: dict[str, tuple[float, AccountRecord]] = {}
        self._tokens: dict[str, tuple[float, Principal]] = {}  # verified bearer tokens
        self._projects: dict[str, float] = {}
        self._secret: bytes | None = None

    def clear(self) -> None:
        """Forget every cached key and account (after deleting or disabling keys or accounts)."""
        with self._lock:
            self._keys.clear()
            self._accounts.clear()
            self._tokens.clear()

    def remembered(self, token: str) -> Principal | None:
        """The principal of a bearer token verified in the last few seconds, if any."""
        hit = self._tokens.get(token)
        if hit is not None and hit[0] > time.time():
            return hit[1]
        return None

    def remember(self, token: str, principal: Principal) -> None:
        """Skip re-verifying a token for a few seconds (never past its expiry)."""
        until = min(float(principal.expires_at), time.time() + _TTL)
        with self._lock:
            if len(self._tokens) >= _MAX_TOKENS:
                self._tokens.clear()
            self._tokens[token] = (until, principal)

    @staticmethod
    def _record(account: ServiceAccount, key: ServiceAccountKey) -> KeyRecord:
        return KeyRecord(
            key_id=key.key_id,
            email=account.email,
            project_id=account.project_id,
            unique_id=account.unique_id,
            public_key=load_public_key(key.public_cert_pem),
            disabled=account.disabled or key.disabled,
        )

    def cached(self) -> _CachedKeys:
        """A view that answers from memory only and raises CacheMiss otherwise.

        Lets the middleware check a warm token on the event loop, without a thread hop.
        """
        return _CachedKeys(self)

    def key(self, key_id: str) -> KeyRecord | None:
        now = time.monotonic()
        with self._lock:
            hit = self._keys.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._db.session() as session:
            row = session.execute(
                select(ServiceAccount, ServiceAccountKey)
                .join(ServiceAccountKey, ServiceAccountKey.email == ServiceAccount.email)
                .where(ServiceAccountKey.key_id == key_id)
            ).first()
            record = None if row is None else self._record(row[0], row[1])
        if record is not None:
            with self._lock:
                self._keys[key_id] = (now + _TTL, record)
        return record

    def account(self, email: str) -> AccountRecord | None:
        now = time.monotonic()
        with self._lock:
            hit = self._accounts.get(email)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._db.session() as session:
            row = session.get(ServiceAccount, email)
            record = (
                None
                if row is None
                else AccountRecord(row.email, row.project_id, row.unique_id, row.disabled)
            )
        if record is not None:
            with self._lock:
                self._accounts[email] = (now + _TTL, record)
        return record

    def account_keys(self, email: str) -> list[KeyRecord] | None:
        with self._db.session() as session:
            account = session.get(ServiceAccount, email)
            if account is None:
                return None
            keys = session.scalars(
                select(ServiceAccountKey).where(ServiceAccountKey.email == email)
            )
            return [self._record(account, key) for key in keys]

    def knows_project(self, project_id: str) -> bool:
        from cloudlet.projects import Project

        now = time.monotonic()
        with self._lock:
            if self._projects.get(project_id, 0.0) > now:
                return True
        with self._db.session() as session:
            known = session.get(Project, project_id) is not None
        if known:
            with self._lock:
                self._projects[project_id] = now + _TTL
        return known

    def secret(self) -> bytes:
        """The HMAC key of access tokens, made once per metadata store and kept there."""
        if self._secret is not None:
            return self._secret
        with self._lock:
            if self._secret is None:
                self._secret = self._load_or_create_secret()
            return self._secret

    def _load_or_create_secret(self) -> bytes:
        with self._db.session() as session:
            row = session.get(IamSecret, _SECRET_NAME)
            if row is not None:
                return bytes.fromhex(row.value)
        try:
            with self._db.session() as session:
                value = secrets.token_hex(32)
                session.add(IamSecret(name=_SECRET_NAME, value=value, create_time=utcnow()))
            return bytes.fromhex(value)
        except IntegrityError:  # another process made it first
            with self._db.session() as session:
                row = session.get(IamSecret, _SECRET_NAME)
                assert row is not None
                return bytes.fromhex(row.value)


class _CachedKeys:
    def __init__(self, ring: Keyring) -> None:
        self._ring = ring

    def key(self, key_id: str) -> KeyRecord | None:
        hit = self._ring._keys.get(key_id)
        if hit is None or hit[0] <= time.monotonic():
            raise CacheMiss(key_id)
        return hit[1]

    def account(self, email: str) -> AccountRecord | None:
        hit = self._ring._accounts.get(email)
        if hit is None or hit[0] <= time.monotonic():
            raise CacheMiss(email)
        return hit[1]

    def account_keys(self, email: str) -> list[KeyRecord] | None:
        raise CacheMiss(email)

    def knows_project(self, project_id: str) -> bool:
        if self._ring._projects.get(project_id, 0.0) > time.monotonic():
            return True
        raise CacheMiss(project_id)

    def secret(self) -> bytes:
        if self._ring._secret is None:
            raise CacheMiss("secret")
        return self._ring._secret


_CREATE_LOCK = threading.Lock()


KEYRING: Slot[Keyring] = Slot("iam.keyring")


def keyring_for(source: StateSource) -> Keyring:
    """The keyring of a gateway (one per gateway state and database, made on first use)."""
    state = gateway_state(source)
    keyring = state.get(KEYRING)
    if keyring is None or keyring._db is not state.db:
        with _CREATE_LOCK:
            keyring = state.get(KEYRING)
            if keyring is None or keyring._db is not state.db:
                keyring = Keyring(state.db)
                state[KEYRING] = keyring
    return keyring
