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

__all__ = ["metric_updates", "step_elements", "steps_from_pipeline", "top_level_steps"]

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


def metric_updates(
    steps: list[dict[str, Any]], counts: Mapping[str, int], update_time: str, *, tentative: bool
) -> list[dict[str, Any]]:
    """ElementCount MetricUpdates, one per step output, as the Dataflow service reports them."""
    out: list[dict[str, Any]] = []
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
            if tentative:
                context["tentative"] = "true"
            out.append(
                {
                    "name": {"origin": "dataflow/v1b3", "name": "ElementCount", "context": context},
                    "scalar": int(counts[pcoll]),
                    "updateTime": update_time,
                }
            )
    return out
