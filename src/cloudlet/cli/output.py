"""Rendering of resources the way gcloud does: --format=table|json|yaml|value(f,...).

Tables are plain, with upper-case headings and two spaces between columns, as gcloud prints
them; `describe` commands default to YAML with sorted keys, as gcloud's do.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["Column", "emit", "lookup", "parse_format"]

# A column: its heading and either a dotted field path or a function of the resource.
Column = tuple[str, str | Callable[[dict[str, Any]], Any]]

_FORMAT = re.compile(r"^(?P<kind>table|json|yaml|value|csv)(?:\((?P<fields>[^)]*)\))?$")


def parse_format(spec: str) -> tuple[str, list[str]]:
    match = _FORMAT.match(spec.strip())
    if not match:
        raise ValueError(
            f"Unknown format [{spec}]. Use one of: table, json, yaml, value(FIELD,...), "
            "table(FIELD,...), csv(FIELD,...)."
        )
    fields = [f.strip() for f in (match.group("fields") or "").split(",") if f.strip()]
    if match.group("kind") == "value" and not fields:
        raise ValueError("The value format needs fields, such as value(projectId).")
    return match.group("kind"), fields


def lookup(resource: Any, path: str) -> Any:
    value = resource
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value)
    return str(value)


def _value(resource: dict[str, Any], col: Column) -> str:
    getter = col[1]
    return _cell(getter(resource) if callable(getter) else lookup(resource, getter))


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    headings = [c[0] for c in columns]
    cells = [[_value(r, c) for c in columns] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headings)]
    lines = []
    for row in [headings, *cells]:
        padded = [v.ljust(widths[i]) for i, v in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _yaml(data: Any) -> str:
    import yaml

    return str(yaml.safe_dump(data, default_flow_style=False, sort_keys=True, allow_unicode=True))


def emit(
    data: dict[str, Any] | Iterable[dict[str, Any]],
    fmt: str,
    columns: Sequence[Column] = (),
    *,
    default: str = "table",
) -> None:
    """Print one resource (a dict) or a list of them in the requested format."""
    kind, fields = parse_format(fmt or default)
    is_list = not isinstance(data, dict)
    rows: list[dict[str, Any]] = [data] if isinstance(data, dict) else list(data)
    if kind == "json":
        print(json.dumps(rows if is_list else rows[0], indent=2, sort_keys=True))
        return
    if kind == "yaml":
        if is_list:
            print("---\n".join(_yaml(r) for r in rows), end="")
        else:
            print(_yaml(rows[0]), end="")
        return
    cols: Sequence[Column] = [(f.split(".")[-1].upper(), f) for f in fields] if fields else columns
    if kind == "value":
        for row in rows:
            print("\t".join(_value(row, c) for c in cols))
        return
    if kind == "csv":
        print(",".join(c[0].lower() for c in cols))
        for row in rows:
            print(",".join(_value(row, c) for c in cols))
        return
    if not cols:  # a single resource with no table columns reads best as YAML
        print(_yaml(rows[0] if not is_list else rows), end="")
        return
    if is_list and not rows:
        print("Listed 0 items.", file=sys.stderr)
        return
    print(render_table(rows, cols))
