"""What the spark engine's tasks send the driver in a Spark accumulator, and what the driver
makes of it: element counts per PCollection, msecs per step, and the user metrics of every
step as Beam's own cumulative cells (counters, distributions, gauges, string sets, bounded
tries), merged across tasks the way Beam merges them (`combine`; a gauge keeps its latest
value).

The service reads them in the Reporter's shape (`reporter_metrics`); `SparkRunner`'s result
answers `metrics().query(...)` from them (`SparkMetricResults`, Beam's MetricResults).
https://beam.apache.org/documentation/programming-guide/#metrics
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["KINDS", "Metrics", "MetricsParam", "SparkMetricResults"]

# MetricUpdates' attributes, which are also MetricResults.query's keys.
KINDS = ("counters", "distributions", "gauges", "string_sets", "bounded_tries")
_REPORTED = {"counters": "counter", "distributions": "distribution", "gauges": "gauge"}


class Metrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.msecs: dict[str, dict[str, int]] = {}
        self.cells: dict[tuple[str, Any], Any] = {}  # (kind, MetricKey) → int or Beam's data

    @classmethod
    def of(cls, counts: Counter[str], msecs: dict[str, Any], containers: Any) -> Metrics:
        """From an execution's counts, msecs and MetricsContainers (step name → container)."""
        m = cls()
        m.counts.update(counts)
        m.msecs = msecs
        for container in containers.values():
            updates = container.get_cumulative()
            for kind in KINDS:
                for key, value in getattr(updates, kind).items():
                    m.cells[(kind, key)] = value
        return m

    def merge(self, other: Metrics) -> Metrics:
        self.counts.update(other.counts)
        for step, entry in other.msecs.items():
            mine = self.msecs.setdefault(step, {})
            for k, v in entry.items():
                mine[k] = mine.get(k, 0) + v
        for cell, value in other.cells.items():
            have = self.cells.get(cell)
            if have is None:
                self.cells[cell] = value
            elif cell[0] == "counters":
                self.cells[cell] = have + value
            else:
                self.cells[cell] = have.combine(value)
        return self

    def reporter_metrics(self) -> dict[str, Any]:
        """Msecs and user metrics in the Reporter's shape (dataflow/engine.py)."""
        user = []
        for (kind, key), value in self.cells.items():
            if kind not in _REPORTED:
                continue
            if kind == "distributions":
                value = {"count": value.count, "sum": value.sum, "min": value.min,
                         "max": value.max}  # fmt: skip
            elif kind == "gauges":
                value = value.value
            user.append(
                {
                    "step": key.step,
                    "namespace": key.metric.namespace,
                    "name": key.metric.name,
                    "kind": _REPORTED[kind],
                    "attempted": value,
                    "committed": value,
                }
            )
        return {"msecs": self.msecs, "user": user}


class MetricsParam:
    """The AccumulatorParam of `Metrics` (pyspark.AccumulatorParam's protocol)."""

    def zero(self, value: Metrics) -> Metrics:
        return Metrics()

    def addInPlace(self, a: Metrics, b: Metrics) -> Metrics:
        return a.merge(b)


def _results_base() -> type:
    from apache_beam.metrics.metric import MetricResults

    return MetricResults


class SparkMetricResults(_results_base()):  # type: ignore[misc]
    """Beam's MetricResults over a finished job's `Metrics` (attempted = committed: a job's
    metrics are read once it ended)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def query(self, filter: Any = None) -> dict[str, list[Any]]:
        from apache_beam.metrics.execution import MetricResult

        out: dict[str, list[Any]] = {kind: [] for kind in KINDS}
        for (kind, key), value in self._metrics.cells.items():
            if not self.matches(filter, key):
                continue
            result = value if kind == "counters" else value.get_result()
            out[kind].append(MetricResult(key, result, result))
        return out
