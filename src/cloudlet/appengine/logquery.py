"""The part of the Logging query language that gcloud writes, parsed and evaluated. Pure.

`gcloud app logs read|tail` and `gcloud logging read` send filters such as

    resource.type="gae_app" AND resource.labels.module_id="default" AND severity>=WARNING
    AND logName=("projects/p/logs/stdout" OR "projects/p/logs/appengine.googleapis.com%2Fstderr")
    AND ((timestamp="2026-11-29T06:35:15Z" AND insertId>"x") OR timestamp>"2026-11-29T06:35:15Z")

Supported: AND (also implicit, by juxtaposition), OR, NOT and `-`, parentheses, the comparisons
`= != > >= < <= :` on a dotted field path, a parenthesized `OR` list of values on the right,
and quoted or bare values. Timestamps compare as instants and severities by rank
(https://cloud.google.com/logging/docs/view/logging-query-language).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudlet.appengine.logs import SEVERITIES
from cloudlet.core.errors import InvalidArgument
from cloudlet.core.times import parse_rfc3339

__all__ = ["Filter", "parse_filter"]

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|!=|[=<>:()])|(?P<word>[^\s=<>:()!"]+))'
)
Filter = Callable[[dict[str, Any]], bool]
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass
class _Tokens:
    items: list[tuple[str, str]]
    pos: int = 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise InvalidArgument("The filter ends too early.")
        self.pos += 1
        return token


def _tokenize(text: str) -> _Tokens:
    items: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidArgument(f"Cannot parse the filter at [{text[pos : pos + 20]}].")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        items.append((kind, value))
        pos = match.end()
    return _Tokens(items)


def _field(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _instant(text: str) -> datetime | None:
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def _compare(path: str, op: str, actual: Any, wanted: str) -> bool:
    if actual is None:
        return op == "!="
    left: Any
    right: Any
    if path == "severity":
        upper = wanted.upper()
        if upper not in SEVERITIES:
            raise InvalidArgument(
                f"Unknown severity [{wanted}]: use one of {', '.join(SEVERITIES)}."
            )
        left, right = SEVERITIES.index(str(actual)), SEVERITIES.index(upper)
    elif path in ("timestamp", "receiveTimestamp"):
        left, right = _instant(str(actual)), _instant(wanted)
        if left is None or right is None:
            raise InvalidArgument(f"[{wanted}] is not an RFC 3339 time.")
    elif isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            left, right = actual, float(wanted)
        except ValueError:
            left, right = str(actual), wanted
    else:
        left, right = str(actual), wanted
    if op == ":":
        return str(wanted).lower() in str(actual).lower()
    return bool(_OPS[op](left, right))


def _close(tokens: _Tokens, problem: str) -> None:
    if tokens.peek() != ("op", ")"):
        raise InvalidArgument(problem)
    tokens.take()


def _comparison(tokens: _Tokens) -> Filter:
    kind, path = tokens.take()
    if kind != "word":
        raise InvalidArgument(f"Expected a field name in the filter, found [{path}].")
    following = tokens.peek()
    if following is None or following[0] != "op" or following[1] in "()":
        # A bare word: a global restriction, matched anywhere in the entry's text.
        return lambda entry: path.lower() in str(entry).lower()
    op = tokens.take()[1]
    if tokens.peek() == ("op", "("):
        tokens.take()
        values = [tokens.take()[1]]
        while tokens.peek() == ("word", "OR"):
            tokens.take()
            values.append(tokens.take()[1])
        _close(tokens, "Expected ) after the list of values in the filter.")
        for value in values:
            _check(path, value)
        return lambda e: any(_compare(path, op, _field(e, path), v) for v in values)
    value = tokens.take()[1]
    _check(path, value)
    return lambda e: _compare(path, op, _field(e, path), value)


def _check(path: str, value: str) -> None:
    """Refuse a bad severity or time when the filter is read, not when an entry meets it."""
    if path == "severity" and value.upper() not in SEVERITIES:
        raise InvalidArgument(f"Unknown severity [{value}]: use one of {', '.join(SEVERITIES)}.")
    if path in ("timestamp", "receiveTimestamp") and _instant(value) is None:
        raise InvalidArgument(f"[{value}] is not an RFC 3339 time.")


def _term(tokens: _Tokens) -> Filter:
    token = tokens.peek()
    if token == ("word", "NOT"):
        tokens.take()
        negated = _term(tokens)
        return lambda e: not negated(e)
    if token is not None and token[0] == "word" and token[1].startswith("-") and token[1] != "-":
        tokens.items[tokens.pos] = ("word", token[1][1:])  # -field=value: NOT field=value
        negated = _term(tokens)
        return lambda e: not negated(e)
    if token == ("op", "("):
        tokens.take()
        inner = _or(tokens)
        _close(tokens, "Unbalanced parentheses in the filter: a ( has no ).")
        return inner
    return _comparison(tokens)


def _and(tokens: _Tokens) -> Filter:
    parts = [_term(tokens)]
    while (token := tokens.peek()) is not None and token not in (("op", ")"), ("word", "OR")):
        if token == ("word", "AND"):
            tokens.take()
        parts.append(_term(tokens))
    return lambda e: all(p(e) for p in parts)


def _or(tokens: _Tokens) -> Filter:
    parts = [_and(tokens)]
    while tokens.peek() == ("word", "OR"):
        tokens.take()
        parts.append(_and(tokens))
    return lambda e: any(p(e) for p in parts)


def parse_filter(text: str | None) -> Filter:
    """A predicate over LogEntry dicts; an empty filter matches everything."""
    if not text or not text.strip():
        return lambda entry: True
    tokens = _tokenize(text)
    predicate = _or(tokens)
    extra = tokens.peek()
    if extra is not None:
        raise InvalidArgument(f"Unexpected [{extra[1]}] in the filter.")
    return predicate
