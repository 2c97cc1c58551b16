from __future__ import annotations

import pytest

from cloudlet.appengine.appyaml import (
    AppYamlError,
    AutomaticScaling,
    BasicScaling,
    ManualScaling,
    closest_python,
    parse_app_yaml,
    parse_duration,
)


def problems(text: str) -> list[str]:
    with pytest.raises(AppYamlError) as info:
        parse_app_yaml(text)
    return [str(p) for p in info.value.problems]


def test_minimal_file_gets_app_engine_defaults() -> None:
    app = parse_app_yaml("runtime: python312\n")
    assert app.runtime == "python312"
    assert app.service == "default"
    assert app.entrypoint is None
    assert app.instance_class == "F1"
    assert app.memory_mb == 384
    assert isinstance(app.scaling, AutomaticScaling)
    assert app.scaling_kind == "automatic"


def test_automatic_scaling_takes_every_documented_field() -> None:
    """https://cloud.google.com/appengine/docs/standard/reference/app-yaml#automatic_scaling:
    `automatic` is a documented value of max_idle_instances and of the pending latencies."""
    app = parse_app_yaml(
        "runtime: python312\nautomatic_scaling:\n  target_cpu_utilization: 0.65\n"
        "  target_throughput_utilization: 0.6\n  min_idle_instances: 1\n"
        "  max_idle_instances: automatic\n  min_pending_latency: 30ms\n"
        "  max_pending_latency: automatic\n  max_concurrent_requests: 50\n"
    )
    assert isinstance(app.scaling, AutomaticScaling)
    assert app.scaling.max_idle_instances is None and app.scaling.min_idle_instances == 1
    assert app.scaling.max_concurrent_requests == 50
    assert problems("runtime: python312\nautomatic_scaling:\n  max_idle_instances: some\n")


def test_full_file() -> None:
    app = parse_app_yaml(
        """
runtime: python311
service: api
entrypoint: gunicorn -b :$PORT main:app
instance_class: B4
env_variables:
  GREETING: hello
basic_scaling:
  max_instances: 3
  idle_timeout: 10m
inbound_services: [warmup]
default_expiration: 1d 2h
app_engine_apis: true
handlers:
- url: /static
  static_dir: static
  expiration: 4d 5h
  http_headers:
    X-Foo: bar
- url: /(.*\\.png)$
  static_files: img/\\1
  upload: img/.*\\.png$
- url: /.*
  script: auto
  secure: always
  redirect_http_response_code: 301
error_handlers:
- file: default_error.html
- error_code: over_quota
  file: over_quota.html
"""
    )
    assert app.service == "api"
    assert app.instance_class == "B4" and app.memory_mb == 1536
    assert app.scaling == BasicScaling(max_instances=3, idle_timeout=600)
    assert app.env_variables == {"GREETING": "hello"}
    assert app.warmup
    assert app.default_expiration == 93600
    assert app.handlers[0].static_dir == "static"
    assert app.handlers[0].expiration == 4 * 86400 + 5 * 3600
    assert app.handlers[0].http_headers == {"X-Foo": "bar"}
    assert app.handlers[1].upload == "img/.*\\.png$"
    assert app.handlers[2].secure == "always"
    assert app.handlers[2].redirect_http_response_code == 301
    assert app.error_handlers[1] == {"file": "over_quota.html", "error_code": "over_quota"}


def test_manual_scaling_defaults_to_a_b_class() -> None:
    app = parse_app_yaml("runtime: python312\nmanual_scaling:\n  instances: 2\n")
    assert app.scaling == ManualScaling(instances=2)
    assert app.instance_class == "B2"


def test_unknown_field_names_line_and_suggests() -> None:
    found = problems("runtime: python312\nentrypont: gunicorn main:app\n")
    assert found == ["app.yaml:2: entrypont: unknown field. Did you mean 'entrypoint'?"]


def test_unknown_nested_field() -> None:
    found = problems("runtime: python312\nbasic_scaling:\n  max_instance: 2\n")
    assert any(
        "app.yaml:3: basic_scaling.max_instance: unknown field. Did you mean" in p for p in found
    )


def test_malformed_yaml_gives_line() -> None:
    found = problems("runtime: python312\nhandlers:\n- url: /\n  script: auto\n bad: [\n")
    assert len(found) == 1 and found[0].startswith("app.yaml:") and "not valid YAML" in found[0]


def test_missing_runtime_and_empty_file() -> None:
    assert "runtime: is required" in problems("service: x\n")[0]
    assert "empty" in problems("")[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("runtime: python27\n", "python27 is not supported"),
        ("runtime: nodejs20\n", "not a Python 3 runtime"),
        ("runtime: python312\nservice: Bad_Name\n", "not a valid service name"),
        ("runtime: python312\ninstance_class: F3\n", "is not one of"),
        ("runtime: python312\ninstance_class: B2\n", "B2 cannot be used with automatic_scaling"),
        (
            "runtime: python312\nmanual_scaling:\n  instances: 1\ninstance_class: F2\n",
            "F2 cannot be used with manual_scaling",
        ),
        (
            "runtime: python312\nmanual_scaling:\n  instances: 1\nbasic_scaling:\n  max_instances: 1\n",
            "keep only one scaling type",
        ),
        ("runtime: python312\nmanual_scaling: {}\n", "manual_scaling.instances: is required"),
        ("runtime: python312\nbasic_scaling:\n  max_instances: 0\n", "between 1 and 200"),
        (
            "runtime: python312\nbasic_scaling:\n  max_instances: 1\n  idle_timeout: soon\n",
            "not a duration",
        ),
        (
            "runtime: python312\nautomatic_scaling:\n  min_instances: 5\n  max_instances: 2\n",
            "more than max_instances",
        ),
        (
            "runtime: python312\nautomatic_scaling:\n  max_concurrent_requests: lots\n",
            "whole number",
        ),
        ("runtime: python312\nautomatic_scaling:\n  target_cpu_utilization: 2\n", "between 0.5"),
        ("runtime: python312\nhandlers:\n- url: /\n  script: main.app\n", "script: auto"),
        ("runtime: python312\nhandlers:\n- url: /x\n", "exactly one of script"),
        ("runtime: python312\nhandlers:\n- script: auto\n", "url: is required"),
        (
            "runtime: python312\nhandlers:\n- url: /(.*)\n  static_files: \\1\n",
            "upload: is required",
        ),
        (
            "runtime: python312\nhandlers:\n- url: /s\n  static_dir: s\n  upload: x\n",
            "only allowed with static_files",
        ),
        (
            "runtime: python312\nhandlers:\n- url: /s\n  script: auto\n  expiration: 1d\n",
            "only applies to static handlers",
        ),
        (
            "runtime: python312\nhandlers:\n- url: /s\n  static_dir: s\n  secure: sometimes\n",
            "is not one of: optional, never, always",
        ),
        (
            "runtime: python312\nhandlers:\n- url: /s\n  static_dir: s\n  redirect_http_response_code: 308\n",
            "is not one of",
        ),
        (
            "runtime: python312\nhandlers:\n- url: /(\n  script: auto\n",
            "not a valid regular expression",
        ),
        ("runtime: python312\nhandlers: /x\n", "must be a list"),
        ("runtime: python312\nenv_variables: [a]\n", "mapping of NAME"),
        ("runtime: python312\ninbound_services: [warmpu]\n", "Did you mean 'warmup'"),
        ("runtime: python312\nerror_handlers:\n- error_code: timeout\n", "file: is required"),
        ("runtime: python312\nincludes: [x.yaml]\n", "includes is not supported"),
        ("runtime: python312\nthreadsafe: true\n", "Python 2.7"),
        ("runtime: python312\nenv: flex\n", "only the standard environment"),
        ("runtime: python312\nruntime: python311\n", "appears twice"),
        ("runtime: python312\napp_engine_apis: maybe\n", "true or false"),
    ],
)
def test_invalid_values_are_named(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found
    assert all(p.startswith("app.yaml:") for p in found)


def test_every_problem_is_reported_in_line_order() -> None:
    found = problems("runtim: python312\nservice: UPPER\ninstance_class: X9\n")
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines) and {1, 2, 3} <= set(lines)
    assert any("runtime: is required" in p for p in found)


def test_vpc_access_connector_is_accepted_with_a_warning() -> None:
    app = parse_app_yaml(
        "runtime: python312\nvpc_access_connector:\n  name: projects/p/locations/r/connectors/c\n"
    )
    assert app.vpc_access_connector == {"name": "projects/p/locations/r/connectors/c"}
    assert any("app.yaml:2: vpc_access_connector" in w for w in app.warnings)


def test_durations() -> None:
    assert parse_duration("30s") == 30
    assert parse_duration("4d 5h") == 4 * 86400 + 5 * 3600
    assert parse_duration("1h30m") == 5400
    with pytest.raises(ValueError):
        parse_duration("5 minutes")


def test_closest_python() -> None:
    assert closest_python((3, 11), [(3, 11), (3, 12)]) == (3, 11)
    assert closest_python((3, 12), [(3, 11)]) == (3, 11)
    assert closest_python((3, 8), [(3, 11), (3, 10)]) == (3, 10)
    assert closest_python((3, 11), [(3, 10), (3, 12)]) == (3, 12)  # a tie goes to the newer
    assert closest_python((3, 12), []) is None
