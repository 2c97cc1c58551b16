"""The `app.yaml` model and its validation. Pure: no IO beyond the text it is given.

Follows https://cloud.google.com/appengine/docs/standard/reference/app-yaml?tab=python.
Every problem names the file, the line and the field, and says how to fix it; an unknown field
is an error with a did-you-mean, as gcloud's own schema check makes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node

from cloudlet.appengine.yamlwalk import AppYamlError, Problem, Walker, compose_yaml, parse_duration

__all__ = [
    "INSTANCE_CLASS_MEMORY_MB",
    "AppYaml",
    "AppYamlError",
    "AutomaticScaling",
    "BasicScaling",
    "Handler",
    "ManualScaling",
    "Problem",
    "closest_python",
    "parse_app_yaml",
    "parse_duration",
    "runtime_version",
]

# https://cloud.google.com/appengine/docs/standard/#instance_classes (second generation runtimes)
INSTANCE_CLASS_MEMORY_MB: dict[str, int] = {
    "F1": 384,
    "F2": 768,
    "F4": 1536,
    "F4_1G": 3072,
    "B1": 384,
    "B2": 768,
    "B4": 1536,
    "B4_1G": 3072,
    "B8": 3072,
}
_AUTOMATIC_CLASSES = ("F1", "F2", "F4", "F4_1G")
_BASIC_CLASSES = ("B1", "B2", "B4", "B4_1G", "B8")

_RUNTIME = re.compile(r"^python3(\d{1,2})$")


@dataclass(frozen=True)
class Handler:
    url: str
    script: str | None = None
    static_dir: str | None = None
    static_files: str | None = None
    upload: str | None = None
    expiration: int | None = None  # seconds
    http_headers: dict[str, str] = field(default_factory=dict)
    mime_type: str | None = None
    secure: str = "optional"
    login: str = "optional"
    auth_fail_action: str = "redirect"
    redirect_http_response_code: int = 302
    require_matching_file: bool = False

    @property
    def is_static(self) -> bool:
        return self.static_dir is not None or self.static_files is not None


@dataclass(frozen=True)
class AutomaticScaling:
    min_instances: int = 0
    max_instances: int = 0  # 0: no limit set (we cap at a local maximum)
    max_concurrent_requests: int = 10
    max_idle_instances: int | None = None
    min_idle_instances: int = 0
    target_cpu_utilization: float | None = None
    target_throughput_utilization: float | None = None


@dataclass(frozen=True)
class BasicScaling:
    max_instances: int
    idle_timeout: int = 300  # seconds; App Engine's default is 5 minutes


@dataclass(frozen=True)
class ManualScaling:
    instances: int


@dataclass(frozen=True)
class AppYaml:
    runtime: str
    service: str = "default"
    entrypoint: str | None = None
    env_variables: dict[str, str] = field(default_factory=dict)
    instance_class: str = "F1"
    handlers: tuple[Handler, ...] = ()
    scaling: AutomaticScaling | BasicScaling | ManualScaling = field(
        default_factory=AutomaticScaling
    )
    inbound_services: tuple[str, ...] = ()
    default_expiration: int | None = None
    error_handlers: tuple[dict[str, str], ...] = ()
    app_engine_apis: bool = False
    vpc_access_connector: dict[str, str] | None = None
    service_account: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def memory_mb(self) -> int:
        return INSTANCE_CLASS_MEMORY_MB[self.instance_class]

    @property
    def warmup(self) -> bool:
        return "warmup" in self.inbound_services

    @property
    def scaling_kind(self) -> str:
        return {
            AutomaticScaling: "automatic",
            BasicScaling: "basic",
            ManualScaling: "manual",
        }[type(self.scaling)]


def runtime_version(runtime: str) -> tuple[int, int]:
    """`python312` → (3, 12)."""
    match = _RUNTIME.match(runtime)
    if not match:
        raise ValueError(runtime)
    return 3, int(match.group(1))


def closest_python(
    wanted: tuple[int, int], available: list[tuple[int, int]]
) -> tuple[int, int] | None:
    """The interpreter to run `wanted` on: itself, else the nearest minor (newer wins a tie)."""
    if not available:
        return None
    if wanted in available:
        return wanted
    return min(available, key=lambda v: (abs(v[1] - wanted[1]), -v[1]))


# --- the schema ------------------------------------------------------------------------------

_PYTHON2_ONLY = {
    "api_version": "api_version is for the Python 2.7 runtime only; delete it",
    "threadsafe": "threadsafe is for the Python 2.7 runtime only; delete it",
    "libraries": "libraries is for Python 2.7; list packages in requirements.txt instead",
    "skip_files": "skip_files is for Python 2.7; list ignored files in .gcloudignore instead",
    "builtins": "builtins is for Python 2.7 only; delete it",
}

_TOP_FIELDS = (
    "runtime",
    "service",
    "module",
    "entrypoint",
    "env_variables",
    "build_env_variables",
    "instance_class",
    "handlers",
    "automatic_scaling",
    "basic_scaling",
    "manual_scaling",
    "inbound_services",
    "default_expiration",
    "error_handlers",
    "includes",
    "app_engine_apis",
    "vpc_access_connector",
    "service_account",
    "env",
    "runtime_config",
    "main",
)
_HANDLER_FIELDS = (
    "url",
    "script",
    "static_dir",
    "static_files",
    "upload",
    "expiration",
    "http_headers",
    "mime_type",
    "secure",
    "login",
    "auth_fail_action",
    "redirect_http_response_code",
    "require_matching_file",
    "application_readable",
)
_AUTOMATIC_FIELDS = (
    "min_instances",
    "max_instances",
    "max_concurrent_requests",
    "max_idle_instances",
    "min_idle_instances",
    "target_cpu_utilization",
    "target_throughput_utilization",
    "max_pending_latency",
    "min_pending_latency",
)
_BASIC_FIELDS = ("max_instances", "idle_timeout")
_MANUAL_FIELDS = ("instances",)
_INBOUND = ("warmup", "mail", "mail_bounce")
_ERROR_CODES = ("default", "over_quota", "dos_api_denial", "timeout")
_SERVICE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def parse_app_yaml(text: str, filename: str = "app.yaml") -> AppYaml:
    """Parse and validate an app.yaml; raise AppYamlError listing every problem found."""
    walker = Walker(filename, _PYTHON2_ONLY)
    root = compose_yaml(text, filename)
    if root is None:
        raise AppYamlError(
            [
                Problem(
                    filename, 0, "runtime", "the file is empty; add at least `runtime: python312`"
                )
            ]
        )
    fields = walker.mapping(root, "", _TOP_FIELDS)
    values: dict[str, Any] = {}
    for key, (key_node, node) in fields.items():
        reader = _TOP_READERS.get(key)
        if reader is not None:
            values[key] = reader(walker, node, key, key_node)
    if "runtime" not in fields and isinstance(root, MappingNode):
        walker.problem(root, "runtime", "is required; add for example `runtime: python312`")
    _check_scaling(walker, fields, values)
    if walker.problems:
        walker.problems.sort(key=lambda p: p.line)
        raise AppYamlError(walker.problems)
    scaling = (
        values.get("manual_scaling")
        or values.get("basic_scaling")
        or values.get("automatic_scaling")
        or AutomaticScaling()
    )
    default_class = "F1" if isinstance(scaling, AutomaticScaling) else "B2"
    return AppYaml(
        runtime=values["runtime"],
        service=values.get("service") or values.get("module") or "default",
        entrypoint=values.get("entrypoint"),
        env_variables=values.get("env_variables", {}),
        instance_class=values.get("instance_class") or default_class,
        handlers=tuple(values.get("handlers", ())),
        scaling=scaling,
        inbound_services=tuple(values.get("inbound_services", ())),
        default_expiration=values.get("default_expiration"),
        error_handlers=tuple(values.get("error_handlers", ())),
        app_engine_apis=bool(values.get("app_engine_apis", False)),
        vpc_access_connector=values.get("vpc_access_connector"),
        service_account=values.get("service_account"),
        warnings=tuple(walker.warnings),
    )


def _check_scaling(w: Walker, fields: dict[str, tuple[Node, Node]], values: dict[str, Any]) -> None:
    kinds = [k for k in ("automatic_scaling", "basic_scaling", "manual_scaling") if k in fields]
    if len(kinds) > 1:
        w.problem(
            fields[kinds[1]][0], kinds[1], f"conflicts with {kinds[0]}; keep only one scaling type"
        )
        return
    klass = values.get("instance_class")
    if klass is None:
        return
    basic = bool(kinds) and kinds[0] != "automatic_scaling"
    allowed = _BASIC_CLASSES if basic else _AUTOMATIC_CLASSES
    if klass not in allowed:
        kind = kinds[0] if kinds else "automatic_scaling (the default)"
        w.problem(
            fields["instance_class"][1],
            "instance_class",
            f"{klass} cannot be used with {kind}; use one of {', '.join(allowed)}",
        )


def _runtime(w: Walker, node: Node, name: str, key: Node) -> str | None:
    value = w.string(node, name)
    if value is None:
        return None
    if value == "python27":
        w.problem(node, name, "python27 is not supported; use a Python 3 runtime such as python312")
        return None
    if not _RUNTIME.match(value):
        w.problem(node, name, f"'{value}' is not a Python 3 runtime; use python39 ... python313")
        return None
    return value


def _service(w: Walker, node: Node, name: str, key: Node) -> str | None:
    value = w.string(node, name)
    if value is not None and not _SERVICE.match(value):
        w.problem(
            node,
            name,
            f"'{value}' is not a valid service name: use at most 63 lowercase letters, digits "
            "and hyphens, starting and ending with a letter or digit",
        )
        return None
    return value


def _env(w: Walker, node: Node, name: str, key: Node) -> str | None:
    value = w.scalar(node, name)
    if value not in (None, "standard"):
        w.problem(node, name, "only the standard environment is supported; delete `env`")
    return None


def _warn_only(message: str) -> Callable[[Walker, Node, str, Node], Any]:
    def read(w: Walker, node: Node, name: str, key: Node) -> Any:
        w.warnings.append(f"{w.file}:{key.start_mark.line + 1}: {name}: {message}")
        if isinstance(node, MappingNode):
            return w.string_map(node, name)
        return w.scalar(node, name)

    return read


def _includes(w: Walker, node: Node, name: str, key: Node) -> None:
    w.problem(key, name, "includes is not supported by cloudlet; copy the included settings here")


def _main(w: Walker, node: Node, name: str, key: Node) -> None:
    w.problem(key, name, "main is not used by Python 3 runtimes; use entrypoint instead")


def _instance_class(w: Walker, node: Node, name: str, key: Node) -> str | None:
    return w.choice(node, name, tuple(INSTANCE_CLASS_MEMORY_MB))


def _inbound(w: Walker, node: Node, name: str, key: Node) -> list[str]:
    out = []
    for item in w.sequence(node, name):
        value = w.choice(item, name, _INBOUND)
        if value:
            out.append(value)
    return out


def _error_handlers(w: Walker, node: Node, name: str, key: Node) -> list[dict[str, str]]:
    out = []
    for i, item in enumerate(w.sequence(node, name)):
        where = f"{name}[{i}]"
        entry = w.mapping(item, where, ("file", "error_code"))
        if "file" not in entry:
            w.problem(item, f"{where}.file", "is required: the static file to serve")
            continue
        handler = {"file": w.string(entry["file"][1], f"{where}.file") or ""}
        if "error_code" in entry:
            code = w.choice(entry["error_code"][1], f"{where}.error_code", _ERROR_CODES)
            handler["error_code"] = code or "default"
        out.append(handler)
    return out


def _automatic(w: Walker, node: Node, name: str, key: Node) -> AutomaticScaling:
    entry = w.mapping(node, name, _AUTOMATIC_FIELDS)
    kwargs: dict[str, Any] = {}
    for field_name in (
        "min_instances",
        "max_instances",
        "max_idle_instances",
        "min_idle_instances",
    ):
        if field_name not in entry:
            continue
        value_node = entry[field_name][1]
        if field_name == "max_idle_instances" and getattr(value_node, "value", None) == "automatic":
            continue  # Google's default, spelled out: "a value from 1 to 1000, or automatic"
        kwargs[field_name] = w.integer(value_node, f"{name}.{field_name}", 0, 1000)
    if "max_concurrent_requests" in entry:
        kwargs["max_concurrent_requests"] = w.integer(
            entry["max_concurrent_requests"][1], f"{name}.max_concurrent_requests", 1, 1000
        )
    for field_name in ("target_cpu_utilization", "target_throughput_utilization"):
        if field_name in entry:
            kwargs[field_name] = w.number(entry[field_name][1], f"{name}.{field_name}", 0.5, 0.95)
    for field_name in ("max_pending_latency", "min_pending_latency"):
        if field_name in entry:
            value = w.scalar(entry[field_name][1], f"{name}.{field_name}")
            if value not in (None, "automatic") and not re.match(r"^\d+(ms|s)$", value):
                w.problem(
                    entry[field_name][1],
                    f"{name}.{field_name}",
                    f"'{value}' is not automatic or a latency such as 30ms",
                )
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    low, high = kwargs.get("min_instances", 0), kwargs.get("max_instances", 0)
    if high and low > high:
        w.problem(
            entry["min_instances"][1],
            f"{name}.min_instances",
            f"{low} is more than max_instances ({high}); lower it",
        )
        kwargs.pop("min_instances")
    return AutomaticScaling(**kwargs)


def _basic(w: Walker, node: Node, name: str, key: Node) -> BasicScaling | None:
    entry = w.mapping(node, name, _BASIC_FIELDS)
    if "max_instances" not in entry:
        if isinstance(node, MappingNode):
            w.problem(node, f"{name}.max_instances", "is required, for example max_instances: 2")
        return None
    high = w.integer(entry["max_instances"][1], f"{name}.max_instances", 1, 200)
    idle = 300
    if "idle_timeout" in entry:
        idle = w.duration(entry["idle_timeout"][1], f"{name}.idle_timeout") or idle
    return BasicScaling(max_instances=high, idle_timeout=idle) if high else None


def _manual(w: Walker, node: Node, name: str, key: Node) -> ManualScaling | None:
    entry = w.mapping(node, name, _MANUAL_FIELDS)
    if "instances" not in entry:
        if isinstance(node, MappingNode):
            w.problem(node, f"{name}.instances", "is required, for example instances: 1")
        return None
    count = w.integer(entry["instances"][1], f"{name}.instances", 1, 100)
    return ManualScaling(instances=count) if count else None


def _handlers(w: Walker, node: Node, name: str, key: Node) -> list[Handler]:
    out = []
    for i, item in enumerate(w.sequence(node, name)):
        handler = _handler(w, item, f"{name}[{i}]")
        if handler is not None:
            out.append(handler)
    return out


def _handler(w: Walker, node: Node, where: str) -> Handler | None:
    entry = w.mapping(node, where, _HANDLER_FIELDS)
    if not entry:
        return None
    if "url" not in entry:
        w.problem(node, f"{where}.url", "is required, for example url: /static")
        return None
    kwargs: dict[str, Any] = {}
    url = w.string(entry["url"][1], f"{where}.url")
    if url is None:
        return None
    try:
        re.compile(url)
    except re.error as exc:
        w.problem(entry["url"][1], f"{where}.url", f"is not a valid regular expression: {exc}")
        return None
    kwargs["url"] = url
    kinds = [k for k in ("script", "static_dir", "static_files") if k in entry]
    if len(kinds) != 1:
        w.problem(
            node,
            where,
            "needs exactly one of script, static_dir or static_files"
            + (f" (it has {', '.join(kinds)})" if kinds else ""),
        )
        return None
    kind = kinds[0]
    value = w.string(entry[kind][1], f"{where}.{kind}")
    if value is None:
        return None
    if kind == "script" and value != "auto":
        w.problem(
            entry[kind][1],
            f"{where}.script",
            "Python 3 runtimes only accept `script: auto`; route inside your app instead",
        )
        return None
    kwargs[kind] = value
    if kind == "static_files" and "upload" not in entry:
        w.problem(node, f"{where}.upload", "is required with static_files: a regex of the files")
        return None
    if "upload" in entry:
        if kind != "static_files":
            w.problem(entry["upload"][0], f"{where}.upload", "is only allowed with static_files")
            return None
        kwargs["upload"] = w.string(entry["upload"][1], f"{where}.upload")
    readers: dict[str, Callable[[Node, str], Any]] = {
        "expiration": w.duration,
        "http_headers": w.string_map,
        "mime_type": w.string,
        "secure": lambda n, f: w.choice(n, f, ("optional", "never", "always")),
        "login": lambda n, f: w.choice(n, f, ("optional", "required", "admin")),
        "redirect_http_response_code": lambda n, f: _redirect_code(w, n, f),
        "require_matching_file": w.boolean,
        "application_readable": w.boolean,
        "auth_fail_action": lambda n, f: w.choice(n, f, ("redirect", "unauthorized")),
    }
    for field_name, read in readers.items():
        if field_name in entry:
            value_read = read(entry[field_name][1], f"{where}.{field_name}")
            if value_read is not None and field_name in Handler.__dataclass_fields__:
                kwargs[field_name] = value_read
    if kind == "script":
        for static_only in ("expiration", "http_headers", "mime_type"):
            if static_only in entry:
                w.problem(
                    entry[static_only][0],
                    f"{where}.{static_only}",
                    "only applies to static handlers; delete it",
                )
    return Handler(**kwargs)


def _redirect_code(w: Walker, node: Node, name: str) -> int | None:
    value = w.choice(node, name, ("301", "302", "303", "307"))
    return int(value) if value else None


def _bool(w: Walker, node: Node, name: str, key: Node) -> bool | None:
    return w.boolean(node, name)


_TOP_READERS: dict[str, Callable[[Walker, Node, str, Node], Any]] = {
    "runtime": _runtime,
    "service": _service,
    "module": _service,
    "entrypoint": lambda w, n, f, k: w.string(n, f),
    "env_variables": lambda w, n, f, k: w.string_map(n, f),
    "build_env_variables": lambda w, n, f, k: w.string_map(n, f),
    "instance_class": _instance_class,
    "handlers": _handlers,
    "automatic_scaling": _automatic,
    "basic_scaling": _basic,
    "manual_scaling": _manual,
    "inbound_services": _inbound,
    "default_expiration": lambda w, n, f, k: w.duration(n, f),
    "error_handlers": _error_handlers,
    "includes": _includes,
    "app_engine_apis": _bool,
    "vpc_access_connector": _warn_only(
        "accepted but ignored: a local app reaches the network directly"
    ),
    "service_account": lambda w, n, f, k: w.string(n, f),
    "env": _env,
    "runtime_config": _warn_only("accepted but ignored (it is for the flexible environment)"),
    "main": _main,
}
