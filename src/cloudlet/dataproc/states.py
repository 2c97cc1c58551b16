"""Cluster and job lifecycles, as the Dataproc v1 API names them. Pure: no IO.

- Cluster states: https://cloud.google.com/dataproc/docs/reference/rest/v1/ClusterStatus#State
- Job states: https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.jobs#State

`transition_cluster` and `transition_job` are the only writers of a cluster's or a job's state
(tests/test_lifecycle_writers.py holds every other module to it).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Protocol

from cloudlet.core.errors import FailedPrecondition
from cloudlet.core.times import rfc3339

__all__ = [
    "ACTIVE_CLUSTER_STATES",
    "ACTIVE_JOB_STATES",
    "TERMINAL_JOB_STATES",
    "ClusterState",
    "JobState",
    "check_cluster_transition",
    "check_job_transition",
    "transition_cluster",
    "transition_job",
]


class ClusterState(enum.StrEnum):
    # Never stored: the API's zero value.
    UNKNOWN = "UNKNOWN"
    # The master and workers are starting; not ready for jobs.
    CREATING = "CREATING"
    # The master answers and every worker has registered with it; jobs run.
    RUNNING = "RUNNING"
    # Something failed (a process would not start, or was gone after a gateway restart); the
    # status detail says what. Not usable: delete it and create it again.
    ERROR = "ERROR"
    # Its processes are being stopped; the record goes when they are gone.
    DELETING = "DELETING"
    # Its processes were stopped with the gateway; they start again with it.
    STOPPED = "STOPPED"
    # Starting again after STOPPED (the gateway started).
    STARTING = "STARTING"

    @property
    def usable(self) -> bool:
        return self is ClusterState.RUNNING


ACTIVE_CLUSTER_STATES = frozenset(
    {ClusterState.CREATING, ClusterState.RUNNING, ClusterState.STARTING, ClusterState.DELETING}
)

_CLUSTER_MOVES: dict[ClusterState, frozenset[ClusterState]] = {
    ClusterState.CREATING: frozenset(
        {ClusterState.RUNNING, ClusterState.ERROR, ClusterState.DELETING, ClusterState.STOPPED}
    ),
    ClusterState.STARTING: frozenset(
        {ClusterState.RUNNING, ClusterState.ERROR, ClusterState.DELETING, ClusterState.STOPPED}
    ),
    ClusterState.RUNNING: frozenset(
        {ClusterState.ERROR, ClusterState.DELETING, ClusterState.STOPPED}
    ),
    ClusterState.STOPPED: frozenset(
        {ClusterState.STARTING, ClusterState.DELETING, ClusterState.ERROR}
    ),
    ClusterState.ERROR: frozenset({ClusterState.DELETING}),
    ClusterState.DELETING: frozenset(),
}


def check_cluster_transition(current: ClusterState, new: ClusterState) -> ClusterState:
    """Return `new` if a cluster in `current` may move to it, else raise FailedPrecondition.

    CREATING → RUNNING → DELETING (→ gone); ERROR from any live state; STOPPED ↔ STARTING with
    the gateway."""
    if new in _CLUSTER_MOVES.get(current, frozenset()):
        return new
    allowed = ", ".join(sorted(_CLUSTER_MOVES.get(current, frozenset()))) or "none"
    raise FailedPrecondition(
        f"A cluster in state {current.value} cannot move to {new.value}. Allowed: {allowed}."
    )


class JobState(enum.StrEnum):
    # Never stored: the API's zero value.
    STATE_UNSPECIFIED = "STATE_UNSPECIFIED"
    # Accepted; waiting for its cluster to be RUNNING.
    PENDING = "PENDING"
    # The job's files are in place; the driver is about to start.
    SETUP_DONE = "SETUP_DONE"
    # The driver (spark-submit) runs.
    RUNNING = "RUNNING"
    # Cancel requested; the driver has not been stopped yet.
    CANCEL_PENDING = "CANCEL_PENDING"
    # The driver is being stopped.
    CANCEL_STARTED = "CANCEL_STARTED"
    # Stopped at a user's request. Terminal.
    CANCELLED = "CANCELLED"
    # The driver exited with status 0. Terminal.
    DONE = "DONE"
    # The driver failed, was killed, or could not start; status.details says why. Terminal.
    ERROR = "ERROR"
    # A restartable job's attempt failed. Unused: jobs here are not restartable.
    ATTEMPT_FAILURE = "ATTEMPT_FAILURE"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB_STATES


# The states a job never leaves (strings compare equal to them: the API's and CLI's checks).
TERMINAL_JOB_STATES = frozenset({JobState.CANCELLED, JobState.DONE, JobState.ERROR})

ACTIVE_JOB_STATES = frozenset(
    {
        JobState.PENDING,
        JobState.SETUP_DONE,
        JobState.RUNNING,
        JobState.CANCEL_PENDING,
        JobState.CANCEL_STARTED,
    }
)

_CANCEL = frozenset({JobState.CANCEL_PENDING, JobState.ERROR})
_JOB_MOVES: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: _CANCEL | {JobState.SETUP_DONE},
    JobState.SETUP_DONE: _CANCEL | {JobState.RUNNING},
    JobState.RUNNING: _CANCEL | {JobState.DONE},
    JobState.CANCEL_PENDING: frozenset({JobState.CANCEL_STARTED, JobState.CANCELLED}),
    # Once cancelling, a job ends CANCELLED even if its driver finished meanwhile.
    JobState.CANCEL_STARTED: frozenset({JobState.CANCELLED}),
}


def check_job_transition(current: JobState, new: JobState) -> JobState:
    """Return `new` if a job in `current` may move to it, else raise FailedPrecondition.

    PENDING → SETUP_DONE → RUNNING → DONE | ERROR; a cancel goes CANCEL_PENDING →
    CANCEL_STARTED → CANCELLED."""
    if new in _JOB_MOVES.get(current, frozenset()):
        return new
    if current.terminal:
        raise FailedPrecondition(
            f"The job is already in terminal state {current.value} and cannot move to "
            f"{new.value}. Submit a new job instead."
        )
    allowed = ", ".join(sorted(_JOB_MOVES.get(current, frozenset()))) or "none"
    raise FailedPrecondition(
        f"A job in state {current.value} cannot move to {new.value}. Allowed: {allowed}."
    )


class Stateful(Protocol):
    """What the transitions write: clusters and jobs (dataproc/models.py) have both, and a
    history of earlier statuses (Google's statusHistory)."""

    state: str
    state_time: datetime
    detail: str
    history: list[dict[str, str]]


def _move(record: Stateful, new: str, now: datetime, detail: str) -> None:
    record.history = [
        *(record.history or []),
        {
            "state": record.state,
            "detail": record.detail or "",
            "stateStartTime": rfc3339(record.state_time, "microseconds"),
        },
    ]
    record.state = new
    record.state_time = now
    record.detail = detail


def transition_cluster(
    cluster: Stateful, new: ClusterState, now: datetime, detail: str = ""
) -> None:
    """Move `cluster` to `new` at `now` (with `detail`, the status's reason), as
    `check_cluster_transition` allows; else raise FailedPrecondition."""
    check_cluster_transition(ClusterState(cluster.state), new)
    _move(cluster, new.value, now, detail)


def transition_job(job: Stateful, new: JobState, now: datetime, detail: str = "") -> None:
    """Move `job` to `new` at `now` (with `detail`), as `check_job_transition` allows; else
    raise FailedPrecondition."""
    check_job_transition(JobState(job.state), new)
    _move(job, new.value, now, detail)
