"""Every batch test Beam marks `it_validatesrunner` in the installed wheel, on SparkRunner
(local[2], one SparkContext per test process: conftest.py)."""

from __future__ import annotations

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
