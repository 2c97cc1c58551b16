"""Project id rules, exactly as Google documents them. Pure: no IO.

https://cloud.google.com/resource-manager/docs/creating-managing-projects#before_you_begin
A project ID must be 6 to 30 characters, hold only lowercase letters, digits and hyphens, start
with a letter, not end with a hyphen, not contain the restricted strings "google" or "ssl", and
never have been used before (deleted projects included).
"""

from __future__ import annotations

import re

from cloudlet.core.errors import InvalidArgument

__all__ = ["check_project_id", "check_project_name", "suggest_project_id"]

_ALLOWED = re.compile(r"[a-z0-9-]")
_RESTRICTED = ("google", "ssl")
_NAME = re.compile(r"^[A-Za-z0-9 '\"!-]{4,30}$")


def _problems(project_id: str) -> list[str]:
    problems = []
    if not 6 <= len(project_id) <= 30:
        problems.append(f"it has {len(project_id)} characters; it must have 6 to 30")
    bad = sorted({c for c in project_id if not _ALLOWED.fullmatch(c)})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        problems.append(
            f"it contains {shown}; only lowercase letters, digits and hyphens are allowed"
        )
    if (project_id and not project_id[0].isascii()) or (project_id and not project_id[0].isalpha()):
        problems.append("it must start with a lowercase letter")
    if project_id.endswith("-"):
        problems.append("it must not end with a hyphen")
    for word in _RESTRICTED:
        if word in project_id.lower():
            problems.append(f"it contains the restricted string {word!r}")
    return problems


def suggest_project_id(project_id: str) -> str | None:
    """A valid id close to the given one, or None when nothing sensible comes out."""
    out = re.sub(r"[^a-z0-9-]+", "-", project_id.lower())
    for word in _RESTRICTED:
        out = out.replace(word, "")
    out = re.sub(r"-{2,}", "-", out).lstrip("-0123456789").rstrip("-")[:30].rstrip("-")
    if not out:
        return None
    while len(out) < 6:
        out += "-app" if len(out) <= 2 else "0"
    return out if not _problems(out) else None


def check_project_id(project_id: str) -> str:
    """Return the id if valid, else raise InvalidArgument naming every problem and a fix."""
    problems = _problems(project_id)
    if not problems:
        return project_id
    message = f"Invalid project ID [{project_id}]: " + "; ".join(problems) + "."
    suggestion = suggest_project_id(project_id)
    if suggestion:
        message += f" Try [{suggestion}]."
    raise InvalidArgument(message)


def check_project_name(name: str) -> str:
    """Display names: 4 to 30 letters, digits, quotes, hyphens, spaces or exclamation marks.

    https://cloud.google.com/resource-manager/reference/rest/v1/projects#Project (name)
    """
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"Invalid project name [{name}]: it must be 4 to 30 characters of letters, digits, "
            "single or double quotes, hyphens, spaces or exclamation marks."
        )
    return name
