"""A job's steps and metrics, derived from its Beam pipeline proto and element counts. Pure.

Steps keep the names users give with `>>` (Beam's `unique_name`), composites with their parts,
and the PCollections each step outputs, so live element counts map onto named steps.
Shapes follow the v1b3 `Step` (kind, name, properties) and `MetricUpdate` resources:
https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.jobs#step
https://cloud.google.com/dataflow/docs/reference/rest/v1b3/JobMetrics
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MSEC_STATES",
    "metric_updates",
    "step_elements",
    "step_state_msecs",
    "step_wall_msecs",
    "steps_from_pipeline",
    "top_level_steps",
    "user_metric_updates",
]

# The states a step's execution time is split into, named as Dataflow's workers name their
# msec counters (`<step>-start-msecs`, `-process-msecs`, `-finish-msecs`); the console's "Wall
# time" of a step is their sum. Beam's SDK worker reports the same three per transform as
# beam:metric:pardo_execution_time:{start,process,finish}_bundle_msecs:v1.
# https://cloud.google.com/dataflow/docs/guides/job-graph (a step's wall time)
MSEC_STATES = ("start", "process", "finish")

# Beam transform URNs → the Dataflow step kinds users know from the console.
_KINDS = {
    "beam:transform:impulse:v1": "Impulse",
    "beam:transform:pardo:v1": "ParallelDo",
    "beam:transform:group_by_key:v1": "GroupByKey",
    "beam:transform:flatten:v1": "Flatten",
    "beam:transform:combine_per_key:v1": "CombineValues",
    "beam:transform:combine_globally:v1": "CombineGlobally",
    "beam:transform:reshuffle:v1": "Reshuffle",
    "beam:transform:window_into:v1": "WindowInto",
    "beam:transform:read:v1": "Read",
    "beam:transform:write_files:v1": "WriteFiles",
}


def steps_from_pipeline(pipeline: Any) -> list[dict[str, Any]]:
    """Every named transform of `pipeline` (a beam_runner_api_pb2.Pipeline), parents first."""
    transforms = pipeline.components.transforms
    steps: list[dict[str, Any]] = []

    def visit(transform_id: str, parent: str, depth: int) -> None:
        t = transforms[transform_id]
        if not t.unique_name:
            return
        kind = _KINDS.get(t.spec.urn, "Composite" if t.subtransforms else "ParallelDo")
        steps.append(
            {
                "kind": kind,
                "name": f"s{len(steps) + 1}",
                "properties": {
                    "user_name": t.unique_name,
                    "parent": parent,
                    "depth": depth,
                    "transform_id": transform_id,
                    "urn": t.spec.urn,
                    # What it reads, so a graph can draw the edges between steps.
                    "inputs": [{"pcollection": pc} for _tag, pc in sorted(t.inputs.items())],
                    "output_info": [
                        {"user_name": f"{t.unique_name}.out{i}", "pcollection": pc}
                        for i, (_tag, pc) in enumerate(sorted(t.outputs.items()))
                    ],
                },
            }
        )
        for child in t.subtransforms:
            visit(child, t.unique_name, depth + 1)

    for root in pipeline.root_transform_ids:
        t = transforms[root]
        # Beam wraps a whole pipeline in one root composite (unnamed, or named after its id in
        # protos from PortableRunner); its children are the user's steps.
        if t.subtransforms and not t.spec.urn:
            for child in t.subtransforms:
                visit(child, "", 0)
        else:
            visit(root, "", 0)
    return steps


def top_level_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in steps if s["properties"].get("depth", 0) == 0]


def step_elements(step: Mapping[str, Any], counts: Mapping[str, int]) -> int | None:
    """Elements added to the step's outputs so far, or None if none were counted yet."""
    values = [
        counts[o["pcollection"]]
        for o in step["properties"].get("output_info", [])
        if o["pcollection"] in counts
    ]
    return sum(values) if values else None


def _label_names(steps: list[dict[str, Any]]) -> dict[str, str]:
    """Transform ids → user names, so a time reported under either finds its step."""
    return {
        s["properties"]["transform_id"]: s["properties"]["user_name"]
        for s in steps
        if s["properties"].get("transform_id")
    }


def _state_msecs(states: Mapping[str, Any]) -> dict[str, int]:
    out = {state: int(states.get(state) or 0) for state in MSEC_STATES}
    # Only a total (an engine without the per-state split): count it as processing.
    if not any(out.values()) and states.get("total"):
        out["process"] = int(states["total"])
    return out


def step_state_msecs(
    steps: list[dict[str, Any]], msecs: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, int]]:
    """{step user name: {state: ms}} for every step that has run.

    The engine reports times per executed transform: a leaf step under its own name, and the
    parts it expands into (a GroupByKey's Write and Read, a lifted combine's Precombine and
    Merge) under names below the step's. A step's time is the sum over its own name and
    everything below it, so a composite's is the sum of its parts.
    """
    ids = _label_names(steps)
    by_label: dict[str, dict[str, int]] = {}
    for label, states in msecs.items():
        name = ids.get(label, label)
        merged = by_label.setdefault(name, dict.fromkeys(MSEC_STATES, 0))
        for state, ms in _state_msecs(states).items():
            merged[state] += ms
    out: dict[str, dict[str, int]] = {}
    for step in steps:
        user_name = step["properties"]["user_name"]
        below = user_name + "/"
        parts = [v for k, v in by_label.items() if k == user_name or k.startswith(below)]
        if parts:
            out[user_name] = {state: sum(p[state] for p in parts) for state in MSEC_STATES}
    return out


def step_wall_msecs(
    steps: list[dict[str, Any]], msecs: Mapping[str, Mapping[str, Any]]
) -> dict[str, int]:
    """{step user name: wall time in ms}: start + process + finish, parts included."""
    return {name: sum(states.values()) for name, states in step_state_msecs(steps, msecs).items()}


def user_metric_updates(
    steps: list[dict[str, Any]], user: list[Mapping[str, Any]], update_time: str
) -> list[dict[str, Any]]:
    """Metrics.counter/distribution values as Dataflow reports them: origin "user", context
    {step, namespace}, once tentative (attempted) and once committed.

    Beam's DataflowMetrics reads both versions of every user metric, and translates `step` by
    looking it up among the pipeline proto's transform ids (portable job submission), so the
    step is the transform id of the step the user named.
    https://cloud.google.com/dataflow/docs/reference/rest/v1b3/MetricStructuredName
    """
    by_name = {s["properties"]["user_name"]: s["properties"]["transform_id"] for s in steps}
    out: list[dict[str, Any]] = []
    for item in user:
        label = str(item.get("step") or "")
        step = by_name.get(label, label)
        for tentative, value in ((True, item.get("attempted")), (False, item.get("committed"))):
            if value is None and not tentative:
                # No bundle has finished yet; Beam's DataflowMetrics needs both versions of a
                # user metric, so the committed one shows what is known so far.
                value = item.get("attempted")
            if value is None:
                continue
            context = {"step": step, "namespace": str(item.get("namespace") or "")}
            if tentative:
                context["tentative"] = "true"
            update: dict[str, Any] = {
                "name": {"origin": "user", "name": str(item.get("name") or ""), "context": context},
                "updateTime": update_time,
            }
            if item.get("kind") == "distribution":
                dist = dict(value)
                count = int(dist.get("count") or 0)
                dist["mean"] = int(dist.get("sum") or 0) // count if count else 0
                update["distribution"] = dist
            else:
                update["scalar"] = int(value)
            out.append(update)
    return out


def metric_updates(
    steps: list[dict[str, Any]],
    counts: Mapping[str, int],
    update_time: str,
    *,
    tentative: bool,
    msecs: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """ElementCount MetricUpdates, one per step output, and each step's start-/process-/
    finish-msecs, as the Dataflow service reports them."""
    out: list[dict[str, Any]] = []
    times = step_state_msecs(steps, msecs or {})
    for step in steps:
        props = step["properties"]
        for state, ms in times.get(props["user_name"], {}).items():
            context = {"step": props["transform_id"],
                       "original_name": f"{props['transform_id']}-{state}-msecs"}  # fmt: skip
            for version in _versions(context, tentative):
                out.append(
                    {
                        "name": {
                            "origin": "dataflow/v1b3",
                            "name": f"{state}-msecs",
                            "context": version,
                        },
                        "scalar": ms,
                        "updateTime": update_time,
                    }
                )
    for step in steps:
        props = step["properties"]
        for output in props.get("output_info", []):
            pcoll = output["pcollection"]
            if pcoll not in counts:
                continue
            context = {
                "original_name": f"{props['transform_id']}-{pcoll}-ElementCount",
                "output_user_name": output["user_name"],
            }
            for version in _versions(context, tentative):
                out.append(
                    {
                        "name": {
                            "origin": "dataflow/v1b3",
                            "name": "ElementCount",
                            "context": version,
                        },
                        "scalar": int(counts[pcoll]),
                        "updateTime": update_time,
                    }
                )
    return out


def _versions(context: dict[str, str], tentative: bool) -> list[dict[str, str]]:
    """A running job's system metrics are tentative only; a finished job's are committed and
    tentative both, as Beam's DataflowMetrics.all_metrics() reads a pair for every metric."""
    marked = {**context, "tentative": "true"}
    return [marked] if tentative else [context, marked]
