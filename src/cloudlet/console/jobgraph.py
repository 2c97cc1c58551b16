"""A Dataflow job's graph and counts, as the console draws them. Pure: no IO.

Input is what the v1b3 API returns: the job (`steps`, or `pipelineDescription`) and
`getMetrics`. Output is a flat list of graph nodes the browser lays out with dagre:
`{id, label, kind, parent, inputs, outputs}` where `id` is the user-given step name
(`'Split words' >> ...` gives `Split words`; a part of a composite is `Split words/Map`), and a
map of elements added per step from the job's ElementCount metrics, wall time per step from
its start-/process-/finish-msecs, and the user's custom counters.

https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.jobs#Job
https://cloud.google.com/dataflow/docs/reference/rest/v1b3/JobMetrics
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "SECRET_MASK",
    "custom_counters",
    "graph_nodes",
    "hide_secrets",
    "job_counters",
    "step_counts",
    "step_wall_times",
]

SECRET_MASK = "••••••"
_SECRET = re.compile(r"pass(word)?|secret|token|credential|private|api_?key|auth", re.IGNORECASE)


def _parent_of(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _reference_names(value: Any) -> list[str]:
    """Input collections named in a step property: a string, a list, or OutputReferences."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        if "pcollection" in value:
            return [str(value["pcollection"])]
        if "step_name" in value:  # Dataflow's OutputReference {step_name, output_name}
            return [f"{value['step_name']}.{value.get('output_name', 'out')}"]
        return [n for v in value.values() for n in _reference_names(v)]
    if isinstance(value, list):
        return [n for v in value for n in _reference_names(v)]
    return []


def _from_steps(steps: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    by_step_name = {s.get("name"): s for s in steps}
    nodes = []
    for step in steps:
        props = step.get("properties") or {}
        user_name = str(props.get("user_name") or step.get("name") or "")
        outputs = [
            str(o.get("pcollection") or o.get("user_name"))
            for o in props.get("output_info", [])
            if isinstance(o, Mapping)
        ]
        inputs: list[str] = []
        for key in ("inputs", "input_info", "parallel_input", "non_parallel_inputs"):
            if key in props:
                inputs += _reference_names(props[key])
        # OutputReferences name steps (s3.out); rewrite them to that step's collection ids.
        resolved = []
        for ref in inputs:
            step_name, _, tag = ref.partition(".")
            producer = by_step_name.get(step_name)
            if producer is not None and producer is not step:
                infos = (producer.get("properties") or {}).get("output_info", [])
                match = [
                    str(o.get("pcollection") or o.get("user_name"))
                    for o in infos
                    if str(o.get("user_name", "")).endswith("." + tag) or len(infos) == 1
                ]
                resolved += match or [ref]
            else:
                resolved.append(ref)
        nodes.append(
            {
                "id": user_name,
                "label": user_name.rsplit("/", 1)[-1],
                "kind": str(step.get("kind") or ""),
                "parent": str(props.get("parent") or _parent_of(user_name)),
                "inputs": resolved,
                "outputs": outputs,
            }
        )
    return nodes


def _from_description(transforms: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    nodes = []
    for t in transforms:
        name = str(t.get("name") or t.get("id") or "")
        nodes.append(
            {
                "id": name,
                "label": name.rsplit("/", 1)[-1],
                "kind": str(t.get("kind") or "").removesuffix("_KIND").title(),
                "parent": _parent_of(name),
                "inputs": [str(c) for c in t.get("inputCollectionName", [])],
                "outputs": [str(c) for c in t.get("outputCollectionName", [])],
            }
        )
    return nodes


def graph_nodes(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The job's named transforms in pipeline order, parents before their parts."""
    description = job.get("pipelineDescription") or {}
    transforms = description.get("originalPipelineTransform") or []
    nodes = _from_steps(job.get("steps") or []) or _from_description(transforms)
    known = {n["id"] for n in nodes}
    for node in nodes:  # a parent that is not itself a step is dropped (drawn top-level)
        if node["parent"] not in known:
            node["parent"] = ""
    # A runner may wrap the whole pipeline in one root composite (the DataflowRunner's proto
    # has `ref_AppliedPTransform_...`); its parts are the steps the user named.
    while True:
        roots = [n for n in nodes if not n["parent"]]
        parts = [n for n in nodes if roots and n["parent"] == roots[0]["id"]]
        if len(roots) != 1 or len(parts) < 2:
            break
        nodes.remove(roots[0])
        for part in parts:
            part["parent"] = ""
    has_children = {n["parent"] for n in nodes if n["parent"]}
    for node in nodes:
        node["composite"] = node["id"] in has_children
    return nodes


def _metric_step(metric: Mapping[str, Any]) -> str | None:
    context = (metric.get("name") or {}).get("context") or {}
    output = context.get("output_user_name")
    if output:
        return str(output).rsplit(".", 1)[0]
    step = context.get("step")
    return str(step) if step else None


def step_counts(metrics: Mapping[str, Any]) -> dict[str, int]:
    """Elements added per step, from ElementCount metric updates.

    A step's count is the sum over its outputs. Dataflow reports a tentative and a committed
    value for each; the larger is the one known so far.
    """
    per_output: dict[tuple[str, str], int] = {}
    for metric in metrics.get("metrics", []) or []:
        name = metric.get("name") or {}
        if name.get("name") != "ElementCount":
            continue
        step = _metric_step(metric)
        if step is None:
            continue
        context = name.get("context") or {}
        key = (step, str(context.get("output_user_name") or step))
        try:
            value = int(metric.get("scalar", 0))
        except (TypeError, ValueError):
            continue
        per_output[key] = max(per_output.get(key, 0), value)
    counts: dict[str, int] = {}
    for (step, _), value in per_output.items():
        counts[step] = counts.get(step, 0) + value
    return counts


def _step_names(job: Mapping[str, Any]) -> dict[str, str]:
    """The user's step names by the ids metrics use: transform ids (and Dataflow's sN)."""
    names: dict[str, str] = {}
    for t in (job.get("pipelineDescription") or {}).get("originalPipelineTransform") or []:
        if t.get("id") and t.get("name"):
            names[str(t["id"])] = str(t["name"])
    for step in job.get("steps") or []:
        props = step.get("properties") or {}
        user_name = props.get("user_name")
        if not user_name:
            continue
        if props.get("transform_id"):
            names[str(props["transform_id"])] = str(user_name)
        if step.get("name"):
            names[str(step["name"])] = str(user_name)
    return names


def _is_msecs(name: Mapping[str, Any]) -> bool:
    return name.get("origin") == "dataflow/v1b3" and str(name.get("name", "")).endswith("-msecs")


def step_wall_times(job: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, int]:
    """Wall time per step in milliseconds: the sum of the step's start-, process- and
    finish-msecs, which is what Dataflow's console shows as a step's "Wall time".
    https://cloud.google.com/dataflow/docs/guides/job-graph
    """
    names = _step_names(job)
    # A finished job reports each metric committed and tentative: count one version.
    states: dict[tuple[str, str], int] = {}
    for metric in metrics.get("metrics", []) or []:
        name = metric.get("name") or {}
        if not _is_msecs(name):
            continue
        key = (str((name.get("context") or {}).get("step") or ""), str(name.get("name")))
        try:
            value = int(metric.get("scalar") or 0)
        except (TypeError, ValueError):
            continue
        states[key] = max(states.get(key, 0), value)
    out: dict[str, int] = {}
    for (step, _state), value in states.items():
        user_name = names.get(step, step)
        out[user_name] = out.get(user_name, 0) + value
    return out


def custom_counters(job: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The user's Metrics.counter/distribution values (origin "user"), one row per metric and
    step: the committed value once there is one, else the tentative one. A distribution's
    value is {count, sum, min, max, mean}."""
    names = _step_names(job)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for metric in metrics.get("metrics", []) or []:
        name = metric.get("name") or {}
        if name.get("origin") != "user":
            continue
        context = name.get("context") or {}
        step = str(context.get("step") or "")
        key = (str(name.get("name") or ""), str(context.get("namespace") or ""), step)
        tentative = context.get("tentative") == "true"
        if key in rows and tentative:
            continue  # a committed value is already there
        value = metric.get("scalar")
        if value is None:
            value = metric.get("distribution")
        rows[key] = {
            "name": key[0],
            "namespace": key[1],
            "step": names.get(step, step),
            "value": value,
            "tentative": tentative,
        }
    return sorted(rows.values(), key=lambda r: (r["step"], r["namespace"], r["name"]))


def job_counters(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Job-level system metrics other than element counts and step times (resource use).
    User metrics are `custom_counters`."""
    out = []
    for metric in metrics.get("metrics", []) or []:
        name = metric.get("name") or {}
        if name.get("name") in ("ElementCount", "MeanByteCount"):
            continue
        if _is_msecs(name) or name.get("origin") == "user":
            continue
        context = name.get("context") or {}
        if context.get("tentative") == "true":
            continue
        value = metric.get("scalar")
        if value is None:
            value = metric.get("distribution") or metric.get("gauge")
        out.append(
            {
                "name": name.get("name"),
                "origin": name.get("origin"),
                "step": context.get("step") or context.get("output_user_name") or "",
                "value": value,
            }
        )
    return out


def hide_secrets(options: Any) -> Any:
    """Pipeline options with values whose names look secret replaced by a mask."""
    if isinstance(options, Mapping):
        return {
            k: SECRET_MASK if _SECRET.search(str(k)) and v not in (None, "") else hide_secrets(v)
            for k, v in options.items()
        }
    if isinstance(options, list):
        return [hide_secrets(v) for v in options]
    return options
