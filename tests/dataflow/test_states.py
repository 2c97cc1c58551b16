from __future__ import annotations

import pytest

from cloudlet.core.errors import FailedPrecondition
from cloudlet.dataflow.states import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    JobState,
    MessageImportance,
    check_transition,
)


def test_the_batch_lifecycle_is_allowed() -> None:
    s = JobState
    assert check_transition(s.JOB_STATE_PENDING, s.JOB_STATE_RUNNING) is s.JOB_STATE_RUNNING
    for end in (s.JOB_STATE_DONE, s.JOB_STATE_FAILED, s.JOB_STATE_CANCELLING):
        assert check_transition(s.JOB_STATE_RUNNING, end) is end
    assert check_transition(s.JOB_STATE_CANCELLING, s.JOB_STATE_CANCELLED)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_terminal_states_never_move(terminal: JobState) -> None:
    for target in JobState:
        with pytest.raises(FailedPrecondition, match="terminal state"):
            check_transition(terminal, target)


def test_no_going_back_to_pending() -> None:
    with pytest.raises(FailedPrecondition, match="cannot move"):
        check_transition(JobState.JOB_STATE_RUNNING, JobState.JOB_STATE_PENDING)


def test_every_state_is_active_or_terminal_but_not_both() -> None:
    assert not ACTIVE_STATES & TERMINAL_STATES
    assert set(JobState) == ACTIVE_STATES | TERMINAL_STATES | {JobState.JOB_STATE_UNKNOWN}
    assert JobState.JOB_STATE_DONE.short == "Done"
    assert JobState.JOB_STATE_RUNNING.short == "Running"


def test_importance_orders_like_minimum_importance() -> None:
    m = MessageImportance
    assert m.JOB_MESSAGE_DEBUG < m.JOB_MESSAGE_DETAILED < m.JOB_MESSAGE_BASIC
    assert m.JOB_MESSAGE_BASIC < m.JOB_MESSAGE_WARNING < m.JOB_MESSAGE_ERROR
    assert m.parse("job_message_warning") is m.JOB_MESSAGE_WARNING
    assert m.from_log_level(40) is m.JOB_MESSAGE_ERROR
    with pytest.raises(ValueError):
        m.parse("LOUD")


def test_the_consoles_terminal_states_are_the_job_stores() -> None:
    # The console speaks only REST (it imports no subsystem), so it keeps the names itself.
    from cloudlet.console.dataflow import TERMINAL
    from cloudlet.dataflow.states import TERMINAL_STATE_NAMES

    assert TERMINAL == TERMINAL_STATE_NAMES


def test_transition_writes_the_state_and_its_time() -> None:
    from dataclasses import dataclass
    from datetime import UTC, datetime

    from cloudlet.dataflow.states import transition

    @dataclass
    class _Job:
        state: str
        state_time: datetime

    then, now = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    job = _Job(JobState.JOB_STATE_PENDING.value, then)
    transition(job, JobState.JOB_STATE_RUNNING, now)
    assert (job.state, job.state_time) == ("JOB_STATE_RUNNING", now)
    transition(job, JobState.JOB_STATE_DONE, now)
    with pytest.raises(FailedPrecondition, match="terminal state"):
        transition(job, JobState.JOB_STATE_RUNNING, then)
    assert (job.state, job.state_time) == ("JOB_STATE_DONE", now)  # a refused move writes nothing
