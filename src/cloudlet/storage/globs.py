"""`matchGlob` for object listing, as Cloud Storage defines it. Pure: no IO.

https://cloud.google.com/storage/docs/json_api/v1/objects/list#list-objects-and-prefixes-using-glob
`*` matches within one path segment, `**` across segments, `?` one character, `[...]` a set
or range, and `{a,b}` alternatives.
"""

from __future__ import annotations

import re

from cloudlet.core.errors import InvalidArgument

__all__ = ["compile_glob"]


def compile_glob(glob: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                # "a/**/b" also matches "a/b"
                if glob.startswith("**/", i):
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 1)
            if end < 0:
                raise InvalidArgument(f"matchGlob [{glob}] has an unclosed '['.")
            body = glob[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "{":
            out.append("(?:")
            depth += 1
        elif c == "}" and depth:
            out.append(")")
            depth -= 1
        elif c == "," and depth:
            out.append("|")
        elif c == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise InvalidArgument(f"matchGlob [{glob}] has an unclosed '{{'.")
    try:
        return re.compile("".join(out) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise InvalidArgument(f"matchGlob [{glob}] is not a valid glob: {exc}.") from None
