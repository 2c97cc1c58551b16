"""Every batch test Beam marks `it_validatesrunner` in the installed wheel, on SparkRunner
(local[2], one SparkContext per test process: conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("pyspark")

from apache_beam.metrics.metric_test import MetricsTest  # noqa: F401
from apache_beam.pipeline_test import DoFnTest  # noqa: F401
from apache_beam.runners.portability.fn_api_runner.translations_test import (  # noqa: F401
    TranslationsTest,
)
from apache_beam.transforms.combinefn_lifecycle_test import (  # noqa: F401
    CombineFnLifecycleTest,
)
from apache_beam.transforms.combiners_test import (  # noqa: F401
    CombineValuesTest,
    LatestCombineFnTest,
)
from apache_beam.transforms.deduplicate_test import DeduplicateTest  # noqa: F401
from apache_beam.transforms.dofn_lifecycle_test import DoFnLifecycleTest  # noqa: F401
from apache_beam.transforms.ptransform_test import PTransformTest  # noqa: F401
from apache_beam.transforms.sideinputs_test import SideInputsTest  # noqa: F401
from apache_beam.transforms.util_test import ReshuffleTest  # noqa: F401

pytestmark = pytest.mark.usefixtures("spark_test_pipeline")

# The tests whose pipeline the spark engine does not run (the native plan's Unsupported, which
# the service's spark engine refuses at submission): SparkRunner runs them on NativeRunner
# (--experiments=cloudlet_spark_fallback), and they pass there. A test listed here may fall back
# only for its reason; any other test must run on Spark.
FALLBACKS: dict[str, str] = {
    # A DoFn with CombiningValueState.
    "test_combining_value_state": "state and timers",
    # TestStream, a streaming source (NativeRunner runs it on Beam's BundleBasedDirectRunner).
    "test_deduplication_in_different_windows": "beam:transform:teststream:v1",
    "test_multi_triggered_gbk_side_input": "beam:transform:teststream:v1",
}


@pytest.fixture(autouse=True)
def _ran_on_spark_or_fell_back_as_listed(request: pytest.FixtureRequest) -> Iterator[None]:
    from cloudlet.dataflow.spark import SparkRunner

    before = len(SparkRunner.fallbacks)
    yield
    got = [reason for _, reason in SparkRunner.fallbacks[before:]]
    want = FALLBACKS.get(request.node.name)
    if want is None:
        assert got == [], f"fell back to NativeRunner: {got}"
    else:
        assert got, f"ran on Spark: delete its entry ({want!r}) from FALLBACKS"
        assert all(want in reason for reason in got), got
