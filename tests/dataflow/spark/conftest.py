"""One `local[2]` SparkContext per test process, shared by the in-process tests (a JVM per
test would cost seconds each), and Beam's ValidatesRunner tests on SparkRunner.

With CLOUDLET_TEST_SPARK_MASTER=spark://HOST:PORT (and CLOUDLET_TEST_SPARK_CONF, a cluster's
spark-defaults file carrying its secret) the context runs on that cluster instead:
test_cluster_conformance.py runs the ValidatesRunner tests so on a 2-worker cluster.

Beam's TestPipeline takes its options from `--test-pipeline-options` (the root conftest
registers it); without it, the ValidatesRunner tests here run on SparkRunner with
`--experiments=cloudlet_spark_fallback`, so a pipeline the spark engine does not support runs
on NativeRunner (test_validates_runner.py lists those, each with the feature).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SPARK = "--runner=cloudlet.dataflow.spark.SparkRunner --experiments=cloudlet_spark_fallback"


@pytest.fixture(scope="session")
def spark_context() -> Iterator[Any]:
    """The process's SparkContext on local[2]; SparkRunner uses the active one."""
    pytest.importorskip("pyspark")
    from cloudlet.dataflow.spark.engine import spark_context as start

    master = os.environ.get("CLOUDLET_TEST_SPARK_MASTER", "local[2]")
    conf = os.environ.get("CLOUDLET_TEST_SPARK_CONF")
    context = start(master, "cloudlet-tests", spark_defaults(Path(conf)) if conf else None)
    yield context
    context.stop()


def spark_defaults(path: Path) -> dict[str, str]:
    """The `key value` lines of a spark-defaults file (comments and blanks skipped)."""
    pairs = (line.strip().partition(" ") for line in path.read_text().splitlines())
    return {key: value.strip() for key, _, value in pairs if key and not key.startswith("#")}


@pytest.fixture
def spark_test_pipeline(request: pytest.FixtureRequest, spark_context: Any) -> Iterator[None]:
    """TestPipeline on SparkRunner for this test (the native tests' session setting restored)."""
    from apache_beam.testing.test_pipeline import TestPipeline

    before = getattr(TestPipeline, "pytest_test_pipeline_options", None)
    TestPipeline.pytest_test_pipeline_options = (
        request.config.getoption("--test-pipeline-options", default=None) or SPARK
    )
    yield
    TestPipeline.pytest_test_pipeline_options = before


# The ValidatesRunner tests not marked slow: one or two per feature (metrics, DoFn params and
# lifecycle, multiple outputs, flatten, GroupByKey by encoded key, side inputs, an SDF read,
# lifted and windowed combines, reshuffle, a fallback). Every Spark stage is a Spark job, a
# few seconds each on a loaded 2-core machine: all 42 took 9 min on 2 xdist workers there.
REPRESENTATIVE = {
    "test_user_counter_using_pardo",
    "test_key_param",
    "test_dofn_lifecycle",
    "test_par_do_with_multiple_outputs_and_using_yield",
    "test_flatten_pcollections",
    "test_group_by_key_dynamic_special_types",
    "test_as_list_and_as_dict_side_inputs",
    "test_side_input_with_sdf",
    "test_gbk_immediately_followed_by_combine",
    "test_reshuffle_preserves_timestamps",
    "test_combining_value_state",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Of Beam's modules imported into spark/test_validates_runner.py, keep only the batch
    tests Beam marks it_validatesrunner; all but the REPRESENTATIVE ones are marked slow."""
    keep, drop = [], []
    for item in items:
        if "spark/test_validates_runner" in item.nodeid:
            marked = item.get_closest_marker("it_validatesrunner") is not None
            (keep if marked and "streaming" not in item.name else drop).append(item)
            if marked and item.name not in REPRESENTATIVE:
                item.add_marker(pytest.mark.slow)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
