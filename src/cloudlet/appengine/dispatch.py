"""`dispatch.yaml`: rules that send requests to services by URL. Pure.

https://cloud.google.com/appengine/docs/standard/reference/dispatch-yaml: up to 20 rules, each a
`url` of the form `HOST/PATH` (the host may start with `*`, the path may end with `*`) and a
`service`. The first matching rule wins; requests matching none go where their host says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from cloudlet.appengine.yamlwalk import AppYamlError, Problem, compose_yaml

__all__ = ["MAX_RULES", "DispatchRule", "match_rule", "parse_dispatch_yaml"]

MAX_RULES = 20


@dataclass(frozen=True)
class DispatchRule:
    domain: str  # "*", "*.example.com" or an exact host
    path: str  # "/api/*" or an exact path
    service: str

    def resource(self) -> dict[str, str]:
        """Admin API's UrlDispatchRule."""
        return {"domain": self.domain, "path": self.path, "service": self.service}

    def matches(self, host: str, path: str) -> bool:
        if self.domain != "*":
            if self.domain.startswith("*"):
                if not host.endswith(self.domain[1:]):
                    return False
            elif host != self.domain:
                return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


def match_rule(rules: list[DispatchRule], host: str, path: str) -> str | None:
    """The service of the first rule matching the request, or None."""
    host = host.rsplit(":", 1)[0].lower()
    for rule in rules:
        if rule.matches(host, path):
            return rule.service
    return None


def parse_dispatch_yaml(text: str, filename: str = "dispatch.yaml") -> list[DispatchRule]:
    """Parse and validate; raise AppYamlError (file, line, field) listing every problem."""
    problems: list[Problem] = []

    def problem(node: Any, field: str, message: str) -> None:
        problems.append(Problem(filename, node.start_mark.line + 1 if node else 0, field, message))

    root = compose_yaml(text, filename)
    if not isinstance(root, MappingNode):
        raise AppYamlError([Problem(filename, 0, "dispatch", "the file needs a `dispatch:` list")])
    rules_node = None
    for key, value in root.value:
        if key.value == "dispatch":
            rules_node = value
        else:
            problem(key, str(key.value), "unknown field; dispatch.yaml has only `dispatch`")
    if not isinstance(rules_node, SequenceNode):
        problem(rules_node or root, "dispatch", "must be a list of {url, service} rules")
        raise AppYamlError(problems)
    if len(rules_node.value) > MAX_RULES:
        problem(
            rules_node,
            "dispatch",
            f"has {len(rules_node.value)} rules; at most {MAX_RULES} are allowed",
        )
    rules = []
    for i, item in enumerate(rules_node.value):
        where = f"dispatch[{i}]"
        if not isinstance(item, MappingNode):
            problem(item, where, "must be a mapping with url and service")
            continue
        fields = {}
        for key, value in item.value:
            if key.value not in ("url", "service"):
                problem(key, f"{where}.{key.value}", "unknown field; use url and service")
            elif not isinstance(value, ScalarNode) or not value.value:
                problem(value, f"{where}.{key.value}", "must be a non-empty string")
            else:
                fields[key.value] = str(value.value)
        if "url" not in fields or "service" not in fields:
            if not any(p.field.startswith(where) for p in problems):
                problem(item, where, "needs both url and service")
            continue
        url = fields["url"]
        domain, slash, path = url.partition("/")
        if not slash or not domain:
            problem(item, f"{where}.url", f"'{url}' must be HOST/PATH, such as */api/*")
            continue
        if "*" in domain[1:] or "*" in path[:-1]:
            problem(item, f"{where}.url", f"'{url}': `*` may only start the host or end the path")
            continue
        rules.append(DispatchRule(domain.lower(), "/" + path, fields["service"]))
    if problems:
        problems.sort(key=lambda p: p.line)
        raise AppYamlError(problems)
    return rules
