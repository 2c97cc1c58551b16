"""Beam's own conformance tests run on the native engine.

The apache-beam wheel ships its `it_validatesrunner` tests but not Beam's conftest, which
registers `--test-pipeline-options` and hands it to TestPipeline; the root conftest registers
the option, and this one makes NativeRunner the default when it is not given.
"""

from __future__ import annotations

import pytest

NATIVE = "--runner=cloudlet.dataflow.native.NativeRunner"


@pytest.fixture(autouse=True, scope="session")
def _native_test_pipeline(request: pytest.FixtureRequest) -> None:
    from apache_beam.testing.test_pipeline import TestPipeline

    TestPipeline.pytest_test_pipeline_options = (
        request.config.getoption("--test-pipeline-options", default=None) or NATIVE
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Of Beam's modules imported into test_validates_runner.py, keep only the tests Beam marks
    it_validatesrunner and that are not streaming ones."""
    keep, drop = [], []
    for item in items:
        if "test_validates_runner" in item.nodeid:
            marked = item.get_closest_marker("it_validatesrunner") is not None
            (keep if marked and "streaming" not in item.name else drop).append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
