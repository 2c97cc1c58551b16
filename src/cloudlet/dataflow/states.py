"""Job lifecycle and message importance, as the Dataflow v1b3 API names them.

Pure: no IO. https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.jobs#jobstate
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Protocol

from cloudlet.core.errors import FailedPrecondition

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "TERMINAL_STATE_NAMES",
    "JobState",
    "MessageImportance",
    "check_transition",
    "importance_at_least",
    "transition",
]


class JobState(enum.StrEnum):
    # The job's state is not known (never stored; the API's zero value).
    JOB_STATE_UNKNOWN = "JOB_STATE_UNKNOWN"
    # Stopped before it started; terminal only if it never runs. Unused by our engines.
    JOB_STATE_STOPPED = "JOB_STATE_STOPPED"
    # The executor process runs the pipeline.
    JOB_STATE_RUNNING = "JOB_STATE_RUNNING"
    # Finished successfully. Terminal.
    JOB_STATE_DONE = "JOB_STATE_DONE"
    # Finished with an error (a DoFn raised, dependencies failed, the executor died). Terminal.
    JOB_STATE_FAILED = "JOB_STATE_FAILED"
    # Stopped at a user's request; its processes are gone. Terminal.
    JOB_STATE_CANCELLED = "JOB_STATE_CANCELLED"
    # Replaced by an update of a streaming job. Terminal; batch jobs never reach it.
    JOB_STATE_UPDATED = "JOB_STATE_UPDATED"
    # Draining: stops reading input and finishes in-flight work. Streaming jobs only.
    JOB_STATE_DRAINING = "JOB_STATE_DRAINING"
    # Drained. Terminal; streaming jobs only.
    JOB_STATE_DRAINED = "JOB_STATE_DRAINED"
    # Created and accepted; the executor is not running yet (environment being prepared).
    JOB_STATE_PENDING = "JOB_STATE_PENDING"
    # Cancel requested; the executor's processes are being stopped.
    JOB_STATE_CANCELLING = "JOB_STATE_CANCELLING"
    # Waiting for resources (Flexible Resource Scheduling). Unused: we start at once.
    JOB_STATE_QUEUED = "JOB_STATE_QUEUED"
    # Finished; its resources are being cleaned up. Unused: cleanup is immediate.
    JOB_STATE_RESOURCE_CLEANING_UP = "JOB_STATE_RESOURCE_CLEANING_UP"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def short(self) -> str:
        """The word gcloud prints in its STATE column (Running, Done, ...)."""
        return self.value.removeprefix("JOB_STATE_").replace("_", " ").title().replace(" ", "")


TERMINAL_STATES = frozenset(
    {
        JobState.JOB_STATE_DONE,
        JobState.JOB_STATE_FAILED,
        JobState.JOB_STATE_CANCELLED,
        JobState.JOB_STATE_UPDATED,
        JobState.JOB_STATE_DRAINED,
        JobState.JOB_STATE_STOPPED,
    }
)
TERMINAL_STATE_NAMES = frozenset(s.value for s in TERMINAL_STATES)  # as the REST API spells them
ACTIVE_STATES = frozenset(set(JobState) - TERMINAL_STATES - {JobState.JOB_STATE_UNKNOWN})

_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.JOB_STATE_PENDING: frozenset(
        {
            JobState.JOB_STATE_QUEUED,
            JobState.JOB_STATE_RUNNING,
            JobState.JOB_STATE_CANCELLING,
            JobState.JOB_STATE_CANCELLED,
            JobState.JOB_STATE_FAILED,
            JobState.JOB_STATE_STOPPED,
        }
    ),
    JobState.JOB_STATE_QUEUED: frozenset(
        {
            JobState.JOB_STATE_RUNNING,
            JobState.JOB_STATE_CANCELLING,
            JobState.JOB_STATE_CANCELLED,
            JobState.JOB_STATE_FAILED,
        }
    ),
    JobState.JOB_STATE_RUNNING: frozenset(
        {
            JobState.JOB_STATE_DONE,
            JobState.JOB_STATE_FAILED,
            JobState.JOB_STATE_CANCELLING,
            JobState.JOB_STATE_CANCELLED,
            JobState.JOB_STATE_DRAINING,
            JobState.JOB_STATE_UPDATED,
            JobState.JOB_STATE_RESOURCE_CLEANING_UP,
        }
    ),
    JobState.JOB_STATE_DRAINING: frozenset(
        {JobState.JOB_STATE_DRAINED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLING}
    ),
    # Once cancelling, the job ends cancelled even if the pipeline finished in the meantime.
    JobState.JOB_STATE_CANCELLING: frozenset(
        {JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_FAILED}
    ),
    JobState.JOB_STATE_RESOURCE_CLEANING_UP: frozenset(
        {JobState.JOB_STATE_DONE, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED}
    ),
}


def check_transition(current: JobState, new: JobState) -> JobState:
    """Return `new` if a job in `current` may move to it, else raise FailedPrecondition.

    The one place that decides the lifecycle: PENDING → RUNNING → DONE | FAILED | CANCELLED,
    with CANCELLING between a cancel request and the processes being gone.
    """
    if new in _ALLOWED.get(current, frozenset()):
        return new
    if current.terminal:
        raise FailedPrecondition(
            f"The job is already in terminal state {current.value} and cannot move to "
            f"{new.value}. Submit a new job instead."
        )
    raise FailedPrecondition(
        f"A job in state {current.value} cannot move to {new.value}. "
        f"Allowed: {', '.join(sorted(s.value for s in _ALLOWED.get(current, ()))) or 'none'}."
    )


class Stateful(Protocol):
    """What `transition` writes: a stored job (dataflow/models.Job) has both."""

    state: str
    state_time: datetime


def transition(job: Stateful, new: JobState, now: datetime) -> None:
    """Move `job` to `new` at `now`, as `check_transition` allows, else raise FailedPrecondition.

    The only writer of a job's state (tests/dataflow/test_states.py holds every other module
    to it): a job is created PENDING, and every later state is set here.
    """
    job.state = check_transition(JobState(job.state), new).value
    job.state_time = now


class MessageImportance(enum.IntEnum):
    """JobMessageImportance, ordered so that `>=` filters like `minimumImportance`.

    https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.jobs.messages/list
    """

    JOB_MESSAGE_IMPORTANCE_UNKNOWN = 0
    JOB_MESSAGE_DEBUG = 1  # the most verbose: Beam's and our debug lines
    JOB_MESSAGE_DETAILED = 2  # progress detail: Beam's INFO log lines
    JOB_MESSAGE_BASIC = 3  # lifecycle: job started, environment ready, finished
    JOB_MESSAGE_WARNING = 4  # something a user should look at
    JOB_MESSAGE_ERROR = 5  # why a job failed: tracebacks, pip errors

    @classmethod
    def parse(cls, name: str) -> MessageImportance:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(name) from None

    @classmethod
    def from_log_level(cls, level: int) -> MessageImportance:
        if level >= 40:
            return cls.JOB_MESSAGE_ERROR
        if level >= 30:
            return cls.JOB_MESSAGE_WARNING
        if level >= 20:
            return cls.JOB_MESSAGE_DETAILED
        return cls.JOB_MESSAGE_DEBUG


def importance_at_least(name: str, minimum: MessageImportance) -> bool:
    try:
        return MessageImportance[name] >= minimum
    except KeyError:
        return False
