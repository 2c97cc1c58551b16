"""`cloudlet dataflow jobs watch`'s elapsed time: the job's own run time, from its start to its
end (or now), whenever the watch began."""

from __future__ import annotations

from datetime import UTC, datetime

from cloudlet.dataflow.cli import elapsed_seconds

NOW = datetime(2026, 12, 6, 4, 0, 0, tzinfo=UTC)


def test_a_finished_job_shows_its_own_run_time() -> None:
    job = {"currentState": "JOB_STATE_DONE", "createTime": "2026-12-06T03:00:00.000Z",
           "startTime": "2026-12-06T03:00:01.000Z",
           "currentStateTime": "2026-12-06T03:00:05.000Z"}  # fmt: skip
    assert elapsed_seconds(job, NOW) == 4.0


def test_a_running_job_counts_to_now_and_a_bare_one_to_zero() -> None:
    running = {"currentState": "JOB_STATE_RUNNING", "startTime": "2026-12-06T03:59:30Z",
               "currentStateTime": "2026-12-06T03:59:31Z"}  # fmt: skip
    assert elapsed_seconds(running, NOW) == 30.0
    assert elapsed_seconds({"currentState": "JOB_STATE_PENDING"}, NOW) == 0.0
