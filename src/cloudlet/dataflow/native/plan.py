"""The native engine's plan: a Beam pipeline proto cut into fused stages (pure; no execution).

The plan is a plain data structure a different executor (e.g. a Spark engine) can walk:

- `Plan.ops`: every transform the engine executes, by transform id, as an `Op`: its `kind`
  (`impulse`, `pardo`, `sdf`, `key_with_void`, `window`, `flatten`, `reshuffle`, `gbk`,
  `combine`), its main
  input PCollections, its side inputs (tag → PCollection) and its outputs (tag → PCollection).
  Composites are walked down to leaves, except two units the engine executes whole:
  `combine_per_key` (a lifted combine: pre-combine per key → shuffle → merge → extract) and
  `reshuffle` (an identity in batch: elements keep their timestamps and windows).
  `key_with_void` is the first step of Beam's CombineGlobally expansion (KeyWithVoid: x →
  (None, x); then CombinePerKey, UnKey, and, unless `without_defaults()`, DoOnce +
  InjectDefault, which gives the CombineFn's default on empty input through a list side
  input): every part but KeyWithVoid is an ordinary leaf, so an executor that runs the other
  kinds runs CombineGlobally once it maps `key_with_void`.
- `Plan.fused`: PCollection → the one op that consumes it as its main input *while it is
  produced* (no buffer in between). Every other consumed PCollection is *materialized*
  (`Plan.materialized`): written whole by its producer, then read by its consumers. The output
  of a grouping op (`gbk`, `combine`) is always materialized: it exists once all input is in.
- `Plan.stages`: the ops cut into `Stage`s, in an order where a stage runs after every stage it
  `depends` on. A stage's `sources` are where its elements come from: `("impulse", op)` or
  `("pcoll", pcoll, op)` (a materialized PCollection read into `op`). Its ops run as one bundle.
  A grouping op is the *sink* of the stage that feeds it; its output is a source of later ones
  (a shuffle boundary).

`build_plan` raises `Unsupported(transform, reason)` for anything the engine does not execute
(state and timers, streaming, unknown URNs, ...) so the caller can fall back to FnApiRunner
before anything ran. Beam's translation phases (`fn_api_runner/translations.py`) do the same
job for FnApiRunner; this plan keeps Beam's notions (fusion, lifted combiners, expanded SDF
reads, GBK boundaries) in a shape that is cheap to execute in tight loops.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Op", "Plan", "Stage", "Unsupported", "build_plan"]

IMPULSE = "beam:transform:impulse:v1"
PARDO = "beam:transform:pardo:v1"
GBK = "beam:transform:group_by_key:v1"
FLATTEN = "beam:transform:flatten:v1"
WINDOW = "beam:transform:window_into:v1"
COMBINE = "beam:transform:combine_per_key:v1"
RESHUFFLE = "beam:transform:reshuffle:v1"
# CombineGlobally's KeyWithVoid step: a ParDo whose DoFn is named by URN (Beam's
# `_KeyWithNone`, x → (None, x)), not pickled.
KEY_WITH_VOID = "beam:dofn:python_key_with_none:v1"
GROUPING = ("gbk", "combine")
# Composites executed through their parts (their leaves are what runs).
_WALK = {
    "beam:transform:generic_composite:v1",
    "beam:transform:pickled_python:v1",
    "beam:transform:combine_grouped_values:v1",
    "beam:transform:read:v1",
    "beam:transform:combine_globally:v1",
    "beam:transform:write_files:v1",
}


class Unsupported(Exception):
    """The pipeline needs something the native engine does not execute."""

    def __init__(self, transform: str, reason: str) -> None:
        super().__init__(f"{transform}: {reason}")
        self.transform = transform
        self.reason = reason


@dataclass
class Op:
    id: str
    name: str
    kind: str
    inputs: tuple[str, ...]  # main input PCollections (several only for flatten)
    side_inputs: dict[str, str]  # tag → PCollection
    outputs: dict[str, str]  # tag → PCollection
    proto: Any = None  # the PTransform


@dataclass
class Stage:
    id: int
    ops: list[str]  # transform ids, producers before consumers
    sources: list[tuple[str, ...]] = field(default_factory=list)
    depends: set[int] = field(default_factory=set)


@dataclass
class Plan:
    ops: dict[str, Op]
    order: list[str]  # all op ids, topologically
    fused: dict[str, str]  # PCollection → its single, streaming consumer op
    materialized: set[str]
    consumers: dict[str, list[str]]  # PCollection → op ids reading it (main or side)
    producer: dict[str, str]  # PCollection → op id
    stages: list[Stage]


def _leaves(proto: Any) -> list[Op]:
    comps = proto.components
    out: list[Op] = []

    def walk(tid: str) -> None:
        t = comps.transforms[tid]
        urn = t.spec.urn
        if urn in (COMBINE, RESHUFFLE) and _unit_ok(proto, t):
            kind = "combine" if urn == COMBINE else "reshuffle"
            out.append(_op(tid, t, kind, {}))
            return
        if t.subtransforms and (urn in _WALK or not urn or urn in (COMBINE, RESHUFFLE)):
            for sub in t.subtransforms:
                walk(sub)
            return
        if urn == IMPULSE:
            out.append(_op(tid, t, "impulse", {}))
        elif urn == PARDO:
            out.append(_pardo(tid, t))
        elif urn == GBK:
            out.append(_op(tid, t, "gbk", {}))
        elif urn == FLATTEN:
            out.append(_op(tid, t, "flatten", {}))
        elif urn == WINDOW:
            out.append(_op(tid, t, "window", {}))
        elif not urn and not t.inputs and not t.outputs:
            return  # an empty root
        elif urn == "beam:transform:pickled_python:v1" and set(t.inputs.values()) == set(
            t.outputs.values()
        ):
            return  # a pass-through placeholder (e.g. a MaybeReshuffle that did nothing)
        else:
            raise Unsupported(t.unique_name, f"transform URN {urn or '(none)'}")

    for root in proto.root_transform_ids:
        walk(root)
    return out


def _unit_ok(proto: Any, t: Any) -> bool:
    """A combine_per_key or reshuffle the engine runs whole (else through its parts)."""
    if len(t.inputs) != 1 or len(t.outputs) != 1:
        return False
    if t.spec.urn == RESHUFFLE:
        return True
    comps = proto.components
    (pcoll,) = t.inputs.values()
    ws = comps.windowing_strategies[comps.pcollections[pcoll].windowing_strategy_id]
    from apache_beam.portability.api import beam_runner_api_pb2 as rpb

    # Lifting is exact for non-merging windows with the default trigger and end-of-window
    # timestamps; everything else goes through GroupByKey and its trigger driver.
    return (
        ws.merge_status == rpb.MergeStatus.NON_MERGING
        and ws.trigger.WhichOneof("trigger") == "default"
        and ws.output_time == rpb.OutputTime.END_OF_WINDOW
        and ws.accumulation_mode != rpb.AccumulationMode.RETRACTING
    )


def _op(tid: str, t: Any, kind: str, side: dict[str, str]) -> Op:
    main = tuple(p for tag, p in t.inputs.items() if tag not in side)
    return Op(tid, t.unique_name, kind, main, side, dict(t.outputs), t)


def _pardo(tid: str, t: Any) -> Op:
    from apache_beam.portability.api import beam_runner_api_pb2 as rpb

    payload = rpb.ParDoPayload.FromString(t.spec.payload)
    if payload.state_specs or payload.timer_family_specs:
        raise Unsupported(t.unique_name, "state and timers")
    if payload.requests_finalization:
        raise Unsupported(t.unique_name, "bundle finalization")
    if payload.requires_time_sorted_input:
        raise Unsupported(t.unique_name, "stateful processing")
    if payload.do_fn.urn == KEY_WITH_VOID and not payload.side_inputs:
        return _op(tid, t, "key_with_void", {})
    if payload.do_fn.urn != "beam:dofn:pickled_python_info:v1":
        raise Unsupported(t.unique_name, f"DoFn URN {payload.do_fn.urn}")
    from apache_beam.internal import pickler

    fn = pickler.loads(payload.do_fn.payload)[0]
    if getattr(fn, "_process_batch_defined", False) or getattr(
        getattr(fn, "process", None), "_beam_yields_batches", False
    ):
        raise Unsupported(t.unique_name, "batched DoFns (process_batch)")
    side = {tag: t.inputs[tag] for tag in payload.side_inputs}
    kind = "sdf" if payload.restriction_coder_id else "pardo"
    op = _op(tid, t, kind, side)
    if len(op.inputs) != 1:
        raise Unsupported(t.unique_name, "a ParDo without exactly one main input")
    return op


def build_plan(proto: Any) -> Plan:
    """Plan `proto` (a beam_runner_api_pb2.Pipeline); raises Unsupported."""
    from apache_beam.portability.api import beam_runner_api_pb2 as rpb

    leaves = _leaves(proto)  # names the transform when one is unsupported
    for req in proto.requirements:
        if req not in _REQUIREMENTS_OK:
            raise Unsupported("pipeline", f"requirement {req}")
    for pc in proto.components.pcollections.values():
        if pc.is_bounded == rpb.IsBounded.UNBOUNDED:
            raise Unsupported(pc.unique_name, "an unbounded (streaming) PCollection")
    ops = {op.id: op for op in leaves}
    producer: dict[str, str] = {}
    for op in leaves:
        for pc in op.outputs.values():
            producer[pc] = op.id
    consumers: dict[str, list[str]] = defaultdict(list)
    main_uses: dict[str, list[str]] = defaultdict(list)
    for op in leaves:
        for pc in op.inputs:
            consumers[pc].append(op.id)
            main_uses[pc].append(op.id)
        for pc in op.side_inputs.values():
            consumers[pc].append(op.id)
    for pc, users in consumers.items():
        if pc not in producer:
            raise Unsupported(ops[users[0]].name, f"input {pc} has no producer")
    order = _topological(leaves, producer)
    fused: dict[str, str] = {}
    for pc, users in consumers.items():
        if (
            len(users) == 1
            and main_uses.get(pc) == users
            and ops[producer[pc]].kind not in GROUPING
        ):
            fused[pc] = users[0]
    stages = _stages(ops, order, fused, producer, consumers)
    materialized = {pc for pc in consumers if pc not in fused}
    return Plan(ops, order, fused, materialized, dict(consumers), producer, stages)


_REQUIREMENTS_OK = {"beam:requirement:pardo:splittable_dofn:v1"}


def _topological(leaves: list[Op], producer: dict[str, str]) -> list[str]:
    done: set[str] = set()
    order: list[str] = []
    by_id = {op.id: op for op in leaves}

    def visit(oid: str) -> None:
        stack = [(oid, False)]
        while stack:
            cur, expanded = stack.pop()
            if cur in done:
                continue
            if expanded:
                done.add(cur)
                order.append(cur)
                continue
            stack.append((cur, True))
            op = by_id[cur]
            for pc in (*op.inputs, *op.side_inputs.values()):
                if producer[pc] not in done:
                    stack.append((producer[pc], False))

    for op in leaves:
        visit(op.id)
    return order


def _stages(
    ops: dict[str, Op],
    order: list[str],
    fused: dict[str, str],
    producer: dict[str, str],
    consumers: dict[str, list[str]],
) -> list[Stage]:
    """Cut ops into stages along fused edges, unfusing until the stages form a DAG."""
    position = {oid: i for i, oid in enumerate(order)}
    while True:
        parent = {oid: oid for oid in order}

        def find(x: str, parent: dict[str, str] = parent) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for pc, oid in fused.items():
            parent[find(producer[pc])] = find(oid)
        groups: dict[str, list[str]] = defaultdict(list)
        for oid in order:
            groups[find(oid)].append(oid)
        # Stage dependencies: a materialized input produced in another group.
        deps: dict[str, set[str]] = {g: set() for g in groups}
        offending: str | None = None
        for oid in order:
            g = find(oid)
            op = ops[oid]
            for pc in (*op.inputs, *op.side_inputs.values()):
                if fused.get(pc) == oid:
                    continue
                pg = find(producer[pc])
                if pg == g and offending is None:
                    offending = oid
                deps[g].add(pg)
        if offending is None:
            cycle_op = _cycle(groups, deps, ops, fused, find)
            offending = cycle_op
        if offending is None:
            break
        # Materialize the main input of the op that closes a cycle, and try again.
        removed = [pc for pc, oid in fused.items() if oid == offending]
        if not removed:
            # Its input comes from a grouping op of its own group, which it reaches again
            # through a Flatten (a hot-key fanout: split → pre-combine → strip → flatten ←
            # split): materialize the Flatten's inputs, so it starts a stage of its own.
            group = find(offending)
            removed = [pc for pc, oid in fused.items()
                       if ops[oid].kind == "flatten" and find(oid) == group]  # fmt: skip
        if not removed:  # pragma: no cover - cannot happen on a DAG
            raise Unsupported(ops[offending].name, "a cycle the planner cannot cut")
        for pc in removed:
            del fused[pc]
    ordered = sorted(groups, key=lambda g: _stage_rank(g, groups, deps, position))
    ids = {g: i for i, g in enumerate(ordered)}
    stages: list[Stage] = []
    for g in ordered:
        stage = Stage(ids[g], groups[g], depends={ids[d] for d in deps[g] if d != g})
        for oid in groups[g]:
            op = ops[oid]
            if op.kind == "impulse":
                stage.sources.append(("impulse", oid))
            for pc in op.inputs:
                if fused.get(pc) != oid:
                    stage.sources.append(("pcoll", pc, oid))
        stages.append(stage)
    return _toposort_stages(stages)


def _cycle(groups: dict[str, list[str]], deps: dict[str, set[str]], ops: dict[str, Op],
           fused: dict[str, str], find: Any) -> str | None:  # fmt: skip
    """An op (with a fused main input) in a group that is part of a dependency cycle."""
    color: dict[str, int] = {}
    found: list[str] = []

    def dfs(g: str) -> bool:
        color[g] = 1
        for d in deps[g]:
            if d == g:
                continue
            if color.get(d) == 1:
                found.append(d)
                return True
            if d not in color and dfs(d):
                return True
        color[g] = 2
        return False

    for g in groups:
        if g not in color and dfs(g):
            break
    if not found:
        return None
    g = found[0]
    for oid in groups[g]:
        op = ops[oid]
        external = [pc for pc in (*op.inputs, *op.side_inputs.values()) if fused.get(pc) != oid]
        if external and any(fused.get(pc) == oid for pc in op.inputs):
            return oid
    for oid in groups[g]:
        if any(fused.get(pc) == oid for pc in ops[oid].inputs):
            return oid
    return None


def _stage_rank(g: str, groups: dict[str, list[str]], deps: dict[str, set[str]],
                position: dict[str, int]) -> int:  # fmt: skip
    return min(position[o] for o in groups[g])


def _toposort_stages(stages: list[Stage]) -> list[Stage]:
    by_id = {s.id: s for s in stages}
    done: set[int] = set()
    out: list[Stage] = []

    def visit(s: Stage) -> None:
        if s.id in done:
            return
        done.add(s.id)
        for d in sorted(s.depends):
            visit(by_id[d])
        out.append(s)

    for s in stages:
        visit(s)
    return out
