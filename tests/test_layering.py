"""The layers of src/cloudlet, checked by walking every module's imports with `ast`.

    app                    the composition root (gateway assembly, server, CLI root, models)
    console                the web console: talks to the gateway's REST API only
    projects iam storage appengine dataflow dataproc     the subsystems
    cli                    the CLI toolkit the subsystems' commands use
    core                   the ground: settings, db, errors, state, the Subsystem record

Rules (docs/architecture.md):
- no import cycle between modules (imports at module level, TYPE_CHECKING ones included;
  imports inside functions are deliberate deferrals and are not edges), and none between
  packages counting every import;
- `core` imports nothing of cloudlet but `core`; `cli` nothing but `core` and `cli`;
- `console` imports no subsystem, no `cli`, no `app`;
- nothing imports `app` but `app`, `cloudlet.__main__` and `cloudlet.testing`;
- a subsystem imports another only through its package's public face: `from cloudlet.storage
  import STORE` with STORE in `cloudlet.storage.__all__`, never `cloudlet.storage.service`;
- every module has an `__all__` (migration scripts aside), and every name in a package's
  `__all__` resolves, as HTTPX checks its exported members.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
SUBSYSTEMS = frozenset({"projects", "iam", "storage", "appengine", "dataflow", "dataproc"})
# What each layer may import (besides itself and the `cloudlet` package, which has __version__).
MAY_IMPORT = {
    "core": frozenset(),
    "cli": frozenset({"core"}),
    "console": frozenset({"core"}),
    **{name: frozenset({"core", "cli"}) | SUBSYSTEMS for name in SUBSYSTEMS},
    "app": frozenset({"core", "cli", "console"}) | SUBSYSTEMS,
    "testing": frozenset({"core", "app"}),
    "__main__": frozenset({"app"}),
}

# Known exceptions, each with its reason. Empty: keep it so. An entry is (importer, imported).
ALLOWED: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Import:
    importer: str  # module name, e.g. cloudlet.storage.api
    target: str  # the module imported from, e.g. cloudlet.storage
    names: tuple[str, ...]  # the names taken from it (empty for `import x`)
    deferred: bool  # inside a function body


def _module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(src: Path = SRC) -> dict[str, Path]:
    return {_module_name(p, src): p for p in sorted((src / "cloudlet").rglob("*.py"))}


def _walk(node: ast.AST, deferred: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, deferred
        else:
            inner = deferred or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from _walk(child, inner)


# core/subsystem.py's loaders import "cloudlet.pkg.module:name" references when called: the
# references are imports too (deferred ones), and keep to the same rules.
_LOADERS = frozenset({"load", "commands", "hook", "resolve"})


def _references(tree: ast.AST) -> Iterator[tuple[str, str]]:
    """(module, name) of each reference given to a loader ("" for a module reference)."""
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            continue
        if call.func.id not in _LOADERS:
            continue
        for arg in call.args:
            for const in ast.walk(arg):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    module, _, attr = const.value.partition(":")
                    if module.startswith("cloudlet."):
                        yield module, attr


def imports_of(name: str, source: str, is_package: bool) -> list[Import]:
    """Every import of cloudlet's own modules in one module's source, and every reference
    to one given to a loader."""
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(source)
    out = [Import(name, m, (a,) if a else (), True) for m, a in _references(tree)]
    for node, deferred in _walk(tree, False):
        if isinstance(node, ast.Import):
            out += [Import(name, a.name, (), deferred) for a in node.names]
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        out.append(Import(name, base, tuple(a.name for a in node.names), deferred))
    return [i for i in out if i.target == "cloudlet" or i.target.startswith("cloudlet.")]


def _resolve(target: str, names: Iterable[str], modules: dict[str, Path]) -> set[str]:
    """The modules an import edge leads to: `from pkg import submodule` names the submodule."""
    found = set()
    for n in names:
        if f"{target}.{n}" in modules:
            found.add(f"{target}.{n}")
        elif target in modules:
            found.add(target)
    if not names:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target:
            found.add(target)
    return found


def all_imports(modules: dict[str, Path]) -> list[Import]:
    out = []
    for name, path in modules.items():
        out += imports_of(name, path.read_text(), path.name == "__init__.py")
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "cloudlet"


def _public_names(package: str, modules: dict[str, Path]) -> set[str] | None:
    """A package's `__all__` as written in its `__init__.py` (None when it has none)."""
    path = modules.get(package)
    if path is None or path.name != "__init__.py":
        return None
    for node in ast.parse(path.read_text()).body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert node.value is not None
            return {str(v) for v in ast.literal_eval(node.value)}
    return None


def violations(imports: list[Import], modules: dict[str, Path]) -> list[str]:
    """Every import that breaks a layering rule (see the module docstring)."""
    found = []
    for imp in imports:
        src, dst = layer(imp.importer), layer(imp.target)
        if src == dst or dst == "cloudlet" or (imp.importer, imp.target) in ALLOWED:
            continue
        allowed = MAY_IMPORT.get(src, frozenset())
        if dst not in allowed:
            found.append(f"{imp.importer} imports {imp.target}: {src} may not import {dst}")
            continue
        if src in SUBSYSTEMS and dst in SUBSYSTEMS:
            package = f"cloudlet.{dst}"
            public = _public_names(package, modules) or set()
            if imp.target != package:
                found.append(f"{imp.importer} imports {imp.target}: use {package}'s public names")
            else:
                for n in imp.names:
                    if n not in public:
                        found.append(f"{imp.importer} imports {n} from {package}: not in __all__")
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def module_cycles(imports: list[Import], modules: dict[str, Path]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.deferred:
            for dst in _resolve(imp.target, imp.names, modules) - {imp.importer}:
                graph.setdefault(imp.importer, set()).add(dst)
    return _cycles(graph)


def package_cycles(imports: list[Import]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        src, dst = layer(imp.importer), layer(imp.target)
        if src != dst and dst != "cloudlet":
            graph.setdefault(src, set()).add(dst)
    return _cycles(graph)


MODULES = _modules()
IMPORTS = all_imports(MODULES)


def test_no_import_cycle_between_modules() -> None:
    assert module_cycles(IMPORTS, MODULES) == []


def test_no_import_cycle_between_packages() -> None:
    assert package_cycles(IMPORTS) == []


def test_every_import_goes_down_the_layers() -> None:
    assert violations(IMPORTS, MODULES) == []


def test_every_module_has_all() -> None:
    missing = [
        name
        for name, path in MODULES.items()
        if name != "cloudlet.__main__"
        and not name.startswith("cloudlet.core.migrations.")
        and "__all__" not in path.read_text()
    ]
    assert missing == []


@pytest.mark.parametrize(
    "package", sorted(n for n, p in MODULES.items() if p.name == "__init__.py")
)
def test_package_all_resolves(package: str) -> None:
    public = _public_names(package, MODULES)
    assert public is not None, f"{package} has no __all__"
    module = importlib.import_module(package)
    assert [n for n in sorted(public) if not hasattr(module, n)] == []


def _with(source: str, module: str = "cloudlet.core.extra") -> list[Import]:
    return [*IMPORTS, *imports_of(module, source, False)]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("cloudlet.core.extra", "from cloudlet.storage import STORE"),  # core up to a subsystem
        ("cloudlet.core.extra", "import cloudlet.app.gateway"),
        ("cloudlet.console.extra", "from cloudlet.appengine import SUPERVISOR"),
        ("cloudlet.cli.extra", "from cloudlet.projects import get_project"),
        ("cloudlet.storage.extra", "from cloudlet.app.subsystems import SUBSYSTEMS"),
        ("cloudlet.storage.extra", "from cloudlet.console import router"),
        ("cloudlet.appengine.extra", "from cloudlet.storage.service import Store"),  # a private
        ("cloudlet.appengine.extra", "from cloudlet.storage import signing"),  # not in __all__
        ("cloudlet.iam.extra", "def f():\n    from cloudlet.projects.models import Project\n"),
        ("cloudlet.iam.extra", 'x = load("cloudlet.projects.api:router")'),  # a loader's reference
        ("cloudlet.core.extra", 'x = hook("cloudlet.dataflow.runtime:start")'),
    ],
)
def test_a_wrong_way_import_is_caught(module: str, source: str) -> None:
    assert violations(_with(source, module), MODULES) != []


def test_a_cycle_is_caught() -> None:
    # supervisor.py imports instance.py; the reverse (even for typing only) closes a cycle.
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cloudlet.appengine.supervisor import Supervisor\n"
    extra = imports_of("cloudlet.appengine.instance", source, False)
    assert module_cycles([*IMPORTS, *extra], MODULES) != []
    assert package_cycles(_with("from cloudlet.projects import Project", "cloudlet.core.x")) != []
