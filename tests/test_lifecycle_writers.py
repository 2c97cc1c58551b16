"""Each lifecycle has one writer: the function that checks the move is the only code in
src/cloudlet that assigns a `.state` (checked by walking every module with `ast`).

- a Dataflow job's state: `dataflow/states.transition` (which asks `check_transition`);
- an App Engine instance's state: `appengine/instance.Instance.move_to` (which asks
  `check_instance_transition`);
- a Dataproc cluster's or job's state: `dataproc/states._move` (behind `transition_cluster` and
  `transition_job`, which ask `check_cluster_transition` / `check_job_transition`);
- an App Engine build's status: `appengine/builds.move` (below; `.status` is otherwise an
  HTTP status, so only modules that import the Build model are checked).

Jobs are also made PENDING in one place and never updated in bulk (below).

A new `x.state = ...` anywhere else fails here: route it through the lifecycle's function, or,
if the attribute is not a lifecycle state at all, add it to `NOT_A_LIFECYCLE` saying what it is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cloudlet"

WRITERS = {
    ("dataflow/states.py", "transition"),  # Job.state
    ("appengine/instance.py", "Instance.move_to"),  # Instance.state
    ("dataproc/states.py", "_move"),  # Dataproc Cluster.state and Job.state
}
NOT_A_LIFECYCLE = {
    ("appengine/router.py", "AppEngineRouter.__init__"),  # self.state: the GatewayState
}


def _state_writes(tree: ast.Module, attr: str = "state") -> Iterator[tuple[str, int]]:
    """(qualified name of the enclosing function, line) of every write to an attribute `attr`."""

    def targets(node: ast.AST) -> Iterator[ast.expr]:
        if isinstance(node, ast.Assign):
            yield from node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            yield node.target
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value == attr
        ):
            yield ast.Attribute(value=node.args[0], attr=attr, ctx=ast.Store())

    def flatten(target: ast.expr) -> Iterator[ast.expr]:
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                yield from flatten(elt)
        else:
            yield target

    def walk(node: ast.AST, scope: tuple[str, ...]) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from walk(child, (*scope, child.name))
                continue
            for target in targets(child):
                for t in flatten(target):
                    if isinstance(t, ast.Attribute) and t.attr == attr:
                        yield ".".join(scope) or "<module>", child.lineno
            yield from walk(child, scope)

    yield from walk(tree, ())


def _all_writes() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        found += [(rel, where, line) for where, line in _state_writes(tree)]
    return found


def test_only_the_transition_functions_write_a_state() -> None:
    stray = [
        f"{rel}:{line} in {where}"
        for rel, where, line in _all_writes()
        if (rel, where) not in WRITERS | NOT_A_LIFECYCLE
    ]
    assert not stray, "a lifecycle state written around its transition function:\n" + "\n".join(
        stray
    )


def test_the_writers_exist() -> None:
    """The allow-list names real writers (a rename must move it, not silently empty it)."""
    seen = {(rel, where) for rel, where, _ in _all_writes()}
    assert seen >= WRITERS | NOT_A_LIFECYCLE


def test_the_walk_finds_a_stray_writer() -> None:
    tree = ast.parse(
        "class S:\n    def tick(self, job):\n        job.state = 'X'\n"
        "def f(i):\n    i.a, i.state = 1, 2\n    setattr(i, 'state', 3)\n"
    )
    assert list(_state_writes(tree)) == [("S.tick", 3), ("f", 5), ("f", 6)]


def _imports(tree: ast.Module, module: str, name: str) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == module
        and any(alias.name == name for alias in node.names)
        for node in ast.walk(tree)
    )


def test_a_build_status_is_written_by_its_move_function_only() -> None:
    """An App Engine build (QUEUED → WORKING → SUCCESS | FAILURE) moves through
    `appengine/builds.move` only, which refuses to move a finished build: so restart recovery
    (builds.settle_interrupted_builds) cannot undo an outcome. Checked in every module that
    imports the Build model (elsewhere `.status` is an HTTP status)."""
    stray = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        if rel != "appengine/builds.py" and not _imports(
            tree, "cloudlet.appengine.models", "Build"
        ):
            continue
        stray += [f"{rel}:{line} in {where}" for where, line in _state_writes(tree, "status")
                  if (rel, where) != ("appengine/builds.py", "move")]  # fmt: skip
    assert not stray, "a build's status written around builds.move:\n" + "\n".join(stray)


def test_jobs_are_created_pending_and_never_updated_in_bulk() -> None:
    """A job row is made PENDING (`Job(state=...)` in dataflow/service.create_job, nowhere else)
    and no SQL UPDATE writes a state around `transition` (`update(Job)`, `.values(state=...)`)."""
    stray = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            keywords = {k.arg: k.value for k in node.keywords}
            if name == "Job" and "state" in keywords:
                value = ast.unparse(keywords["state"])
                if rel != "dataflow/service.py" or value != "JobState.JOB_STATE_PENDING.value":
                    stray.append(f"{rel}:{node.lineno}: Job(state={value})")
            if name == "update" and any(ast.unparse(a) == "Job" for a in node.args):
                stray.append(f"{rel}:{node.lineno}: update(Job)")
            if name == "values" and "state" in keywords:
                stray.append(f"{rel}:{node.lineno}: .values(state=...)")
    assert not stray, "a job state written around states.transition:\n" + "\n".join(stray)
