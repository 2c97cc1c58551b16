from __future__ import annotations

import pytest

from cloudlet.appengine.appyaml import AppYamlError
from cloudlet.appengine.dispatch import DispatchRule, match_rule, parse_dispatch_yaml


def test_parse_and_match() -> None:
    rules = parse_dispatch_yaml(
        "dispatch:\n- url: '*/api/*'\n  service: api\n- url: 'static.example.com/'\n"
        "  service: web\n- url: '*.example.com/favicon.ico'\n  service: default\n"
    )
    assert rules[0] == DispatchRule("*", "/api/*", "api")
    assert match_rule(rules, "p.localhost:8080", "/api/x") == "api"
    assert match_rule(rules, "p.localhost", "/apix") is None
    assert match_rule(rules, "static.example.com", "/") == "web"
    assert match_rule(rules, "static.example.com", "/other") is None
    assert match_rule(rules, "a.example.com", "/favicon.ico") == "default"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "dispatch:\n- url: '*/api/*'\n",
            "dispatch.yaml:2: dispatch[0]: needs both url and service",
        ),
        ("dispatch:\n- url: 'nohost'\n  service: a\n", "must be HOST/PATH"),
        ("dispatch:\n- url: '*/a*b'\n  service: a\n", "may only start the host or end the path"),
        (
            "dispatch:\n- url: '*/a'\n  servce: a\n",
            "dispatch.yaml:3: dispatch[0].servce: unknown field",
        ),
        ("rules: []\n", "unknown field"),
        ("dispatch: [\n", "not valid YAML"),
        ("dispatch:\n" + "- url: '*/a'\n  service: a\n" * 21, "at most 20"),
    ],
)
def test_invalid_dispatch_files(text: str, expected: str) -> None:
    with pytest.raises(AppYamlError) as info:
        parse_dispatch_yaml(text)
    assert expected in info.value.message
