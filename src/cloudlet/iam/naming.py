"""Service-account id and email rules, as Google documents them. Pure: no IO.

https://cloud.google.com/iam/docs/service-accounts-create#creating
The account id (the part of the email before the @) must be 6 to 30 characters long, hold only
lowercase letters, digits and hyphens, start with a letter and end with a letter or digit
(the API's pattern is `[a-z]([-a-z0-9]*[a-z0-9])`). The email of a user-managed service account
is `ID@PROJECT.iam.gserviceaccount.com`.
"""

from __future__ import annotations

import re

from cloudlet.core.errors import InvalidArgument

__all__ = [
    "EMAIL_DOMAIN",
    "check_account_id",
    "check_description",
    "check_display_name",
    "service_account_email",
    "split_email",
    "suggest_account_id",
]

EMAIL_DOMAIN = "iam.gserviceaccount.com"
_ALLOWED = re.compile(r"[a-z0-9-]")
_EMAIL = re.compile(
    r"^(?P<account>[^@\s]+)@(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])"
    r"\.iam\.gserviceaccount\.com$"
)
_RULE = (
    "A service account ID must be 6 to 30 characters long, start with a lowercase letter, "
    "end with a letter or digit, and hold only lowercase letters, digits and hyphens"
)


def _problems(account_id: str) -> list[str]:
    problems = []
    if not 6 <= len(account_id) <= 30:
        problems.append(f"it has {len(account_id)} characters; it must have 6 to 30")
    bad = sorted({c for c in account_id if not _ALLOWED.fullmatch(c)})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        problems.append(
            f"it contains {shown}; only lowercase letters, digits and hyphens are allowed"
        )
    if account_id and not ("a" <= account_id[0] <= "z"):
        problems.append("it must start with a lowercase letter")
    if account_id.endswith("-"):
        problems.append("it must end with a letter or digit, not a hyphen")
    return problems


def suggest_account_id(account_id: str) -> str | None:
    """A valid id close to the given one (`Word_Count` → `word-count`), or None."""
    out = re.sub(r"[^a-z0-9-]+", "-", account_id.split("@", 1)[0].lower())
    out = re.sub(r"-{2,}", "-", out).lstrip("-0123456789").rstrip("-")[:30].rstrip("-")
    if not out:
        return None
    while len(out) < 6:
        out += "-sa" if len(out) <= 3 else "1"
    return out if not _problems(out) else None


def check_account_id(account_id: str) -> str:
    """Return the id if valid, else raise InvalidArgument naming every problem and a fix."""
    problems = _problems(account_id)
    if not problems:
        return account_id
    message = f"Invalid service account ID [{account_id}]: " + "; ".join(problems) + ". "
    message += _RULE + "."
    suggestion = suggest_account_id(account_id)
    if suggestion:
        message += f" Try [{suggestion}]."
    raise InvalidArgument(message)


def check_display_name(name: str) -> str:
    """https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts (displayName)"""
    if len(name) > 100:
        raise InvalidArgument(
            f"The display name has {len(name)} characters; it must have at most 100. "
            "Shorten --display-name."
        )
    return name


def check_description(description: str) -> str:
    if len(description) > 256:
        raise InvalidArgument(
            f"The description has {len(description)} characters; it must have at most 256. "
            "Shorten --description."
        )
    return description


def service_account_email(account_id: str, project_id: str) -> str:
    return f"{account_id}@{project_id}.{EMAIL_DOMAIN}"


def split_email(email: str) -> tuple[str, str] | None:
    """(account id, project id) of a user-managed service account's email, else None."""
    match = _EMAIL.match(email)
    if match is None:
        return None
    return match.group("account"), match.group("project")
