"""The walker of App Engine's YAML files (app.yaml, cron.yaml, dispatch.yaml). Pure.

PyYAML's node tree keeps each value's line, so that every problem names the file, the line and
the field; `Walker` reads values off it, reporting a `Problem` for each bad one and going on.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cloudlet.core.errors import InvalidArgument

__all__ = ["AppYamlError", "Problem", "Walker", "compose_yaml", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+\s*[dhms]\s*)+$")
_DURATION_PART = re.compile(r"(\d+)\s*([dhms])")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file, located as precisely as the YAML allows."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class AppYamlError(InvalidArgument):
    """An invalid app.yaml; `problems` holds every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{problems[0].file} has {len(problems)} {noun}:\n{lines}")


def parse_duration(text: str) -> int:
    """App Engine durations such as `4d 5h`, `10m`, `30s` → seconds."""
    if not _DURATION.match(text):
        raise ValueError(text)
    return sum(int(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


class Walker:
    """Reads a YAML node tree against a schema, collecting every Problem (with its line) rather
    than stopping at the first. `top_hints`: what to say of an unknown top-level field, by name,
    instead of a did-you-mean."""

    def __init__(self, filename: str, top_hints: Mapping[str, str] | None = None) -> None:
        self.file = filename
        self.top_hints: Mapping[str, str] = top_hints or {}
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def problem(self, node: Node | None, name: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        self.problems.append(Problem(self.file, line, name, message))

    def mapping(
        self, node: Node, name: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[Node, Node]]:
        """The keys of a mapping node, reporting unknown and duplicate ones."""
        if not isinstance(node, MappingNode):
            self.problem(node, name, f"must be a mapping of {', '.join(allowed[:4])}, ...")
            return {}
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            full = f"{name}.{key}" if name else key
            if key in out:
                self.problem(key_node, full, "appears twice; keep one")
                continue
            if key not in allowed:
                hint = self.top_hints.get(key) if not name else None
                if hint is None:
                    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                    hint = (
                        f"unknown field. Did you mean '{close[0]}'?"
                        if close
                        else f"unknown field; the known ones are: {', '.join(sorted(allowed))}"
                    )
                self.problem(key_node, full, hint)
                continue
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: Node, name: str) -> str | None:
        if not isinstance(node, ScalarNode):
            self.problem(node, name, "must be a single value, not a list or mapping")
            return None
        return str(node.value)

    def string(self, node: Node, name: str) -> str | None:
        value = self.scalar(node, name)
        if value is not None and value == "":
            self.problem(node, name, "must not be empty")
            return None
        return value

    def integer(self, node: Node, name: str, minimum: int = 0, maximum: int = 1000) -> int | None:
        value = self.scalar(node, name)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            self.problem(node, name, f"must be a whole number, not '{value}'")
            return None
        if not minimum <= number <= maximum:
            self.problem(node, name, f"must be between {minimum} and {maximum}, not {number}")
            return None
        return number

    def number(self, node: Node, name: str, low: float, high: float) -> float | None:
        value = self.scalar(node, name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            self.problem(node, name, f"must be a number between {low} and {high}, not '{value}'")
            return None
        if not low <= number <= high:
            self.problem(node, name, f"must be between {low} and {high}, not {number}")
            return None
        return number

    def boolean(self, node: Node, name: str) -> bool | None:
        value = self.scalar(node, name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in ("true", "yes", "on"):
            return True
        if lowered in ("false", "no", "off"):
            return False
        self.problem(node, name, f"must be true or false, not '{value}'")
        return None

    def choice(self, node: Node, name: str, choices: tuple[str, ...]) -> str | None:
        value = self.scalar(node, name)
        if value is None:
            return None
        if value not in choices:
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            self.problem(node, name, f"'{value}' is not one of: {', '.join(choices)}.{hint}")
            return None
        return value

    def duration(self, node: Node, name: str) -> int | None:
        value = self.scalar(node, name)
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError:
            self.problem(node, name, f"'{value}' is not a duration such as 30s, 10m, 1h or 4d 5h")
            return None

    def string_map(self, node: Node, name: str) -> dict[str, str]:
        if not isinstance(node, MappingNode):
            self.problem(node, name, "must be a mapping of NAME: value")
            return {}
        out: dict[str, str] = {}
        for key_node, value_node in node.value:
            if not isinstance(value_node, ScalarNode):
                self.problem(value_node, f"{name}.{key_node.value}", "must be a string")
                continue
            out[str(key_node.value)] = str(value_node.value)
        return out

    def sequence(self, node: Node, name: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            self.problem(node, name, "must be a list (each item starting with '- ')")
            return []
        return list(node.value)


def compose_yaml(text: str, filename: str) -> Node | None:
    """PyYAML's node tree (with line marks) of an App Engine YAML file, or AppYamlError."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        # Point at the problem, unless it is the end of the file (an unclosed bracket or
        # quote): then the line to fix is where that construct started.
        problem, context = exc.problem_mark, exc.context_mark
        at_end = "<stream end>" in (exc.problem or "") or "end of stream" in (exc.problem or "")
        mark = context if (at_end and context) else (problem or context)
        line = mark.line + 1 if mark else 0
        what = exc.problem or "invalid YAML"
        if exc.context:
            started = f" at line {context.line + 1}" if context and context is not mark else ""
            what = f"{what}, {exc.context}{started}"
        message = f"not valid YAML ({what}). Check indentation, colons and brackets"
        raise AppYamlError([Problem(filename, line, "", message)]) from None
