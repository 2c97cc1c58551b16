"""IAM policies: Google's `Policy` shape, bindings, etags and permission checks. Pure, no IO.

A policy is `{"version": 1, "bindings": [{"role": "roles/R", "members": [...]}], "etag": E}`:
https://cloud.google.com/iam/docs/reference/rest/v1/Policy. Members are written as Google writes
them (https://cloud.google.com/iam/docs/principal-identifiers): `user:EMAIL`,
`serviceAccount:EMAIL`, `group:EMAIL`, `domain:DOMAIN`, `allUsers`, `allAuthenticatedUsers`
(plus `deleted:` forms, kept as given). Conditions (version 3) are refused: cloudlet does not
evaluate them.

The etag is a digest of the bindings (base64, as Google's `BwX…=` etags), so a read-modify-
write that carries the etag it read fails with 409 ABORTED when another write came between:
https://cloud.google.com/iam/docs/policies#etag.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudlet.core.errors import InvalidArgument
from cloudlet.iam.roles import ROLES, permissions_of

__all__ = [
    "Binding",
    "Policy",
    "add_binding",
    "check_member",
    "check_role",
    "compute_etag",
    "has_permission",
    "member_matches",
    "parse_policy",
    "remove_binding",
    "seal",
]

_EMAIL = re.compile(r"^[^@\s:]+@[^@\s:]+\.[^@\s:]+$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_KINDS = ("user", "serviceAccount", "group", "domain")


@dataclass(frozen=True)
class Binding:
    role: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    bindings: tuple[Binding, ...] = ()
    version: int = 1
    etag: str = field(default="")

    def to_json(self) -> dict[str, Any]:
        """Google's JSON form: bindings sorted by role, members sorted, as Google answers."""
        out: dict[str, Any] = {"version": self.version, "etag": self.etag or compute_etag(self)}
        if self.bindings:
            out["bindings"] = [{"role": b.role, "members": list(b.members)} for b in self.bindings]
        return out


def check_member(member: str) -> str:
    """`member` if it is a principal identifier Google accepts in a binding, else 400."""
    if member in ("allUsers", "allAuthenticatedUsers"):
        return member
    kind, sep, value = member.partition(":")
    if kind == "deleted" and sep:
        return member
    if not sep or kind not in _KINDS or not value:
        raise InvalidArgument(
            f"Invalid member [{member}]: write user:EMAIL, serviceAccount:EMAIL, group:EMAIL, "
            "domain:DOMAIN, allUsers or allAuthenticatedUsers."
        )
    ok = _DOMAIN.match(value) if kind == "domain" else _EMAIL.match(value)
    if not ok:
        what = "a domain name" if kind == "domain" else "an email address"
        raise InvalidArgument(f"Invalid member [{member}]: [{value}] is not {what}.")
    return member


def check_role(name: str) -> str:
    """`name` if it is a predefined role cloudlet knows, else 400 with the nearest names."""
    if name in ROLES:
        return name
    if not name.startswith(("roles/", "projects/", "organizations/")):
        raise InvalidArgument(f"Role [{name}] must be given as roles/NAME, e.g. roles/viewer.")
    stem = name.rsplit(".", 1)[-1].rsplit("/", 1)[-1].lower()
    near = sorted(r for r in ROLES if stem and stem in r.lower())[:5]
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    raise InvalidArgument(
        f"Role {name} is not supported for this resource. cloudlet knows Google's predefined "
        f"roles listed in docs/iam.md.{hint}"
    )


def _normalize(bindings: Iterable[Binding]) -> tuple[Binding, ...]:
    merged: dict[str, set[str]] = {}
    for binding in bindings:
        merged.setdefault(binding.role, set()).update(binding.members)
    return tuple(Binding(r, tuple(sorted(m))) for r, m in sorted(merged.items()) if m)


def compute_etag(policy: Policy) -> str:
    """A digest of the policy's bindings and version (8 bytes, base64, as Google's etags)."""
    canonical = json.dumps(
        [policy.version, [[b.role, list(b.members)] for b in _normalize(policy.bindings)]],
        separators=(",", ":"),
    )
    return base64.b64encode(hashlib.sha256(canonical.encode()).digest()[:8]).decode()


def _sealed(bindings: Iterable[Binding], version: int = 1) -> Policy:
    unsealed = Policy(_normalize(bindings), version)
    return Policy(unsealed.bindings, version, compute_etag(unsealed))


def parse_policy(body: Mapping[str, Any], *, check_roles: bool = True) -> Policy:
    """A Policy from its JSON form (a setIamPolicy body's `policy`), checked; 400 when bad."""
    if not isinstance(body, Mapping):
        raise InvalidArgument("policy must be a JSON object with bindings.")
    version = body.get("version", 1) or 1
    if not isinstance(version, int) or version not in (1, 3):
        raise InvalidArgument(f"Invalid policy version [{version}]: use 1.")
    raw = body.get("bindings") or []
    if not isinstance(raw, list):
        raise InvalidArgument("policy.bindings must be a list of {role, members}.")
    bindings = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise InvalidArgument("Each binding must be an object with role and members.")
        if item.get("condition"):
            raise InvalidArgument(
                "Conditional role bindings are not supported by cloudlet; "
                "remove the binding's condition."
            )
        role_name = item.get("role")
        members = item.get("members") or []
        if not isinstance(role_name, str) or not isinstance(members, list):
            raise InvalidArgument("Each binding needs a role (string) and members (list).")
        if check_roles:
            check_role(role_name)
        bindings.append(Binding(role_name, tuple(check_member(str(m)) for m in members)))
    sealed = _sealed(bindings, 1)
    etag = body.get("etag")
    return Policy(sealed.bindings, 1, str(etag)) if isinstance(etag, str) and etag else sealed


def seal(policy: Policy) -> Policy:
    """The policy normalized (roles merged and sorted) with its etag computed."""
    return _sealed(policy.bindings, policy.version)


def add_binding(policy: Policy, member: str, role_name: str) -> Policy:
    """The policy with `member` granted `role_name` (a no-op when already granted)."""
    check_member(member)
    check_role(role_name)
    return _sealed((*policy.bindings, Binding(role_name, (member,))), policy.version)


def remove_binding(policy: Policy, member: str, role_name: str) -> Policy:
    """The policy without `member` in `role_name`; 400 when there is no such binding, as gcloud."""
    found = any(b.role == role_name and member in b.members for b in policy.bindings)
    if not found:
        raise InvalidArgument(
            f"Policy binding with the specified principal [{member}] and role [{role_name}] "
            "not found!"
        )
    kept = [
        Binding(b.role, tuple(m for m in b.members if not (b.role == role_name and m == member)))
        for b in policy.bindings
    ]
    return _sealed(kept, policy.version)


def member_matches(binding_member: str, callers: Iterable[str]) -> bool:
    """Whether a binding's member names one of the caller's identities (see has_permission)."""
    for caller in callers:
        if binding_member == caller:
            return True
        domain = binding_member.removeprefix("domain:")
        in_domain = caller.startswith("user:") and caller.rsplit("@", 1)[-1].lower() == domain
        if domain != binding_member and in_domain:
            return True
    return False


def has_permission(policy: Policy, members: Iterable[str], permission: str) -> bool:
    """Whether any role bound to one of `members` grants `permission`.

    `members` are the caller's identities as policy members: its own (`user:` or
    `serviceAccount:`), and `allUsers` / `allAuthenticatedUsers` as they apply to it. A
    `domain:D` binding matches users whose email is in D.
    """
    callers = tuple(members)
    for binding in policy.bindings:
        if permission in permissions_of(binding.role) and any(
            member_matches(m, callers) for m in binding.members
        ):
            return True
    return False
