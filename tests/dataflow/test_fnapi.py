"""The executor's live counts (fnapi._LiveCounts), fed Beam's own monitoring infos."""

from __future__ import annotations

from apache_beam.metrics import monitoring_infos as mi

from cloudlet.dataflow.fnapi import _LiveCounts


def _elements(n: int) -> list[object]:
    return [mi.int64_counter(mi.ELEMENT_COUNT_URN, n, pcollection="words")]  # type: ignore[no-untyped-call]


def test_running_bundles_count_until_they_finish() -> None:
    live = _LiveCounts()
    live.progress(1, _elements(5))
    live.progress(2, _elements(3))
    assert live.report()[0] == {"words": 8}
    live.finished(1, _elements(10))
    assert live.report()[0] == {"words": 13}


def test_a_progress_answer_arriving_after_its_bundle_finished_is_not_counted_again() -> None:
    # Beam's ProgressRequester is not joined when its bundle ends: its last answer can come late.
    live = _LiveCounts()
    live.progress(1, _elements(5))
    live.finished(1, _elements(10))
    live.progress(1, _elements(7))
    assert live.report()[0] == {"words": 10}
    live.progress(2, _elements(4))
    live.forget(2)  # a failed bundle
    live.progress(2, _elements(6))
    assert live.report()[0] == {"words": 10}
