"""Beam's FnApiRunnerTest suite on the native engine, subclassed the way Beam's
PortableRunnerTest does. A pipeline the engine does not support falls back to FnApiRunner
(runner.py), so those tests pass through the fallback."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import fn_runner_test

from cloudlet.dataflow.native import NativeRunner

pytestmark = pytest.mark.slow


class NativeRunnerTest(fn_runner_test.FnApiRunnerTest):  # type: ignore[misc]
    def create_pipeline(self, is_drain: bool = False) -> beam.Pipeline:
        return beam.Pipeline(runner=NativeRunner())


del fn_runner_test  # pytest must not collect the imported FnApiRunnerTest itself
