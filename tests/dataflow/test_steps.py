"""Steps and metrics from a pipeline proto, and job names from PortableRunner (pure)."""

from __future__ import annotations

import apache_beam as beam

from cloudlet.dataflow.jobproto import portable_job_name
from cloudlet.dataflow.service import check_job_name
from cloudlet.dataflow.steps import (
    metric_updates,
    step_elements,
    step_wall_msecs,
    steps_from_pipeline,
)


def _proto() -> object:
    p = beam.Pipeline(runner="FnApiRunner")
    _ = (
        p
        | "Create lines" >> beam.Create(["a b", "c"])
        | "Split words" >> beam.FlatMap(str.split)
        | "Group & Sum" >> beam.combiners.Count.PerElement()
    )
    return p.to_runner_api()


def test_steps_keep_user_names_and_composites_with_their_parts() -> None:
    steps = steps_from_pipeline(_proto())
    top = [s["properties"]["user_name"] for s in steps if s["properties"]["depth"] == 0]
    assert top == ["Create lines", "Split words", "Group & Sum"]
    parts = [s for s in steps if s["properties"]["parent"] == "Group & Sum"]
    assert parts and all(p["properties"]["user_name"].startswith("Group & Sum/") for p in parts)
    split = next(s for s in steps if s["properties"]["user_name"] == "Split words")
    assert split["kind"] == "ParallelDo"
    assert split["properties"]["inputs"]  # it reads Create lines' output


def test_metrics_map_pcollection_counts_onto_step_outputs() -> None:
    steps = steps_from_pipeline(_proto())
    split = next(s for s in steps if s["properties"]["user_name"] == "Split words")
    pcoll = split["properties"]["output_info"][0]["pcollection"]
    assert step_elements(split, {}) is None
    assert step_elements(split, {pcoll: 3}) == 3
    updates = metric_updates(steps, {pcoll: 3}, "2026-11-28T00:00:00Z", tentative=True)
    assert updates == [
        {
            "name": {
                "origin": "dataflow/v1b3",
                "name": "ElementCount",
                "context": {
                    "original_name": f"{split['properties']['transform_id']}-{pcoll}-ElementCount",
                    "output_user_name": "Split words.out0",
                    "tentative": "true",
                },
            },
            "scalar": 3,
            "updateTime": "2026-11-28T00:00:00Z",
        }
    ]


def test_wall_time_counts_a_steps_expansion_and_sums_a_composites_parts() -> None:
    steps = steps_from_pipeline(_proto())
    ids = {s["properties"]["user_name"]: s["properties"]["transform_id"] for s in steps}
    gbk = next(n for n in ids if n.startswith("Group & Sum/") and n.endswith("GroupByKey"))
    msecs = {
        "Split words": {"start": 1, "process": 40, "finish": 2, "total": 43},
        # The runner splits a GroupByKey into a Write and a Read named below it.
        f"{gbk}/Write": {"process": 5},
        f"{gbk}/Read": {"process": 7},
        # A time reported under a transform id finds its step too.
        ids["Create lines"]: {"total": 9},
        "ref_PCollection_PCollection_3/Write": {"process": 100},  # a runner-internal part
    }
    wall = step_wall_msecs(steps, msecs)
    assert wall["Split words"] == 43
    assert wall[gbk] == 12
    assert wall["Group & Sum"] == 12  # the composite: the sum of its parts
    assert wall["Create lines"] == 9
    assert "ref_PCollection_PCollection_3" not in wall
    updates = metric_updates(steps, {}, "2026-11-28T00:00:00Z", tentative=False, msecs=msecs)
    split = [u for u in updates if u["name"]["context"]["step"] == ids["Split words"]]
    assert {u["name"]["name"]: u["scalar"] for u in split} == {
        "start-msecs": 1, "process-msecs": 40, "finish-msecs": 2,
    }  # fmt: skip
    # A finished job's metrics come committed and tentative; a running job's tentative only.
    assert sorted(u["name"]["context"].get("tentative", "") for u in split) == [
        "",
        "",
        "",
        *["true"] * 3,
    ]
    running = metric_updates(steps, {}, "2026-11-28T00:00:00Z", tentative=True, msecs=msecs)
    assert all(u["name"]["context"]["tentative"] == "true" for u in running)


def test_portable_job_names_become_valid_dataflow_names() -> None:
    for raw in ("BeamApp-root-1128163000-abc", "job", "9lives", "a__b--", "My Job!"):
        check_job_name(portable_job_name(raw))  # raises InvalidArgument if invalid
    assert portable_job_name("BeamApp-Root_1") == "beamapp-root-1"
