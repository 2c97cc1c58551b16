"""The job graph's pure parts: steps → nodes, metrics → counts, secrets hidden."""

from __future__ import annotations

from cloudlet.console.jobgraph import (
    SECRET_MASK,
    custom_counters,
    graph_nodes,
    hide_secrets,
    job_counters,
    step_counts,
    step_wall_times,
)


def _step(name: str, user_name: str, parent: str, outputs: list[str], **props) -> dict:
    return {
        "kind": "ParallelDo",
        "name": name,
        "properties": {
            "user_name": user_name,
            "parent": parent,
            "output_info": [{"user_name": f"{user_name}.out", "pcollection": pc} for pc in outputs],
            **props,
        },
    }


def test_steps_become_nodes_in_pipeline_order_with_composites() -> None:
    job = {
        "steps": [
            _step("s1", "Read", "", ["pc1"]),
            _step("s2", "Read/Impulse", "Read", ["pc0"]),
            _step(
                "s3",
                "Split words",
                "",
                ["pc2"],
                parallel_input={"step_name": "s1", "output_name": "out"},
            ),
            _step("s4", "Count", "", ["pc3"], inputs=["pc2"]),
        ]
    }
    nodes = graph_nodes(job)
    assert [n["id"] for n in nodes] == ["Read", "Read/Impulse", "Split words", "Count"]
    assert [n["label"] for n in nodes] == ["Read", "Impulse", "Split words", "Count"]
    assert nodes[0]["composite"] and not nodes[1]["composite"]
    assert nodes[1]["parent"] == "Read"
    assert nodes[2]["inputs"] == ["pc1"]  # an OutputReference resolved to its collection
    assert nodes[3]["inputs"] == ["pc2"]


def test_pipeline_description_is_used_when_there_are_no_steps() -> None:
    job = {
        "pipelineDescription": {
            "originalPipelineTransform": [
                {
                    "id": "t1",
                    "name": "Create",
                    "kind": "PAR_DO_KIND",
                    "outputCollectionName": ["a"],
                },
                {"id": "t2", "name": "Print", "inputCollectionName": ["a"]},
                {"id": "t3", "name": "Orphan/Part"},
            ]
        }
    }
    nodes = graph_nodes(job)
    assert [(n["id"], n["inputs"], n["outputs"]) for n in nodes] == [
        ("Create", [], ["a"]),
        ("Print", ["a"], []),
        ("Orphan/Part", [], []),
    ]
    assert nodes[2]["parent"] == ""  # its parent is not a step: drawn at the top level


def test_counts_sum_outputs_and_take_the_larger_of_tentative_and_committed() -> None:
    def update(output: str, value: int, tentative: bool = False) -> dict:
        context = {"output_user_name": output}
        if tentative:
            context["tentative"] = "true"
        return {"name": {"name": "ElementCount", "context": context}, "scalar": value}

    metrics = {
        "metrics": [
            update("Split words.out", 90, tentative=True),
            update("Split words.out", 100),
            update("Partition.even", 3),
            update("Partition.odd", 4),
            {
                "name": {
                    "name": "MeanByteCount",
                    "context": {"output_user_name": "Split words.out"},
                },
                "scalar": 7,
            },
            {"name": {"name": "ElementCount", "context": {}}, "scalar": 5},
        ]
    }
    assert step_counts(metrics) == {"Split words": 100, "Partition": 7}
    assert step_counts({}) == {}


def test_secret_looking_options_are_masked() -> None:
    options = {
        "project": "p",
        "db_password": "hunter2",
        "api_key": "k",
        "nested": {"client_secret": "s", "region": "us"},
        "auth_token": "",
    }
    assert hide_secrets(options) == {
        "project": "p",
        "db_password": SECRET_MASK,
        "api_key": SECRET_MASK,
        "nested": {"client_secret": SECRET_MASK, "region": "us"},
        "auth_token": "",
    }


def test_a_runner_root_wrapping_the_pipeline_is_unwrapped() -> None:
    job = {
        "steps": [
            _step("s1", "ref_AppliedPTransform_1", "", []),
            _step("s2", "Read", "ref_AppliedPTransform_1", ["a"]),
            _step("s3", "Read/Impulse", "Read", ["b"]),
            _step("s4", "Split words", "ref_AppliedPTransform_1", ["c"]),
        ]
    }
    nodes = graph_nodes(job)
    assert [(n["id"], n["parent"]) for n in nodes] == [
        ("Read", ""),
        ("Read/Impulse", "Read"),
        ("Split words", ""),
    ]


def _msecs(step: str, state: str, value: int) -> dict:
    return {
        "name": {"origin": "dataflow/v1b3", "name": f"{state}-msecs", "context": {"step": step}},
        "scalar": value,
    }


def _user(name: str, step: str, value: object, *, tentative: bool = False) -> dict:
    context = {"step": step, "namespace": "ns"}
    if tentative:
        context["tentative"] = "true"
    key = "distribution" if isinstance(value, dict) else "scalar"
    return {"name": {"origin": "user", "name": name, "context": context}, key: value}


JOB = {
    "steps": [
        {"name": "s1", "properties": {"user_name": "Tidy", "transform_id": "t1"}},
        {"name": "s2", "properties": {"user_name": "Tidy/Slow", "transform_id": "t2"}},
    ]
}


def test_wall_time_sums_a_steps_start_process_and_finish_msecs_by_its_user_name() -> None:
    metrics = {
        "metrics": [
            _msecs("t1", "start", 1),
            _msecs("t1", "process", 900),
            {
                **_msecs("t1", "process", 900),
                "name": {
                    **_msecs("t1", "process", 900)["name"],
                    "context": {"step": "t1", "tentative": "true"},
                },
            },  # the same value, tentative
            _msecs("t1", "finish", 2),
            _msecs("t2", "process", 900),
            _msecs("s9", "process", 5),  # a step the job does not describe keeps its id
            {
                "name": {"name": "ElementCount", "context": {"output_user_name": "Tidy.out0"}},
                "scalar": 2,
            },
        ]
    }
    assert step_wall_times(JOB, metrics) == {"Tidy": 903, "Tidy/Slow": 900, "s9": 5}
    assert job_counters(metrics) == []  # step times are not job-level counters


def test_custom_counters_prefer_committed_values_and_name_steps() -> None:
    dist = {"count": 2, "sum": 7, "min": 2, "max": 5, "mean": 3}
    metrics = {
        "metrics": [
            _user("words", "t2", 1, tentative=True),
            _user("words", "t2", 2),
            _user("lengths", "t1", dist, tentative=True),  # only tentative so far: shown
        ]
    }
    assert custom_counters(JOB, metrics) == [
        {"name": "lengths", "namespace": "ns", "step": "Tidy", "value": dist, "tentative": True},
        {"name": "words", "namespace": "ns", "step": "Tidy/Slow", "value": 2, "tentative": False},
    ]
    assert job_counters(metrics) == []
