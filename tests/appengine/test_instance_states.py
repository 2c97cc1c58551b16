"""The App Engine instance lifecycle (appengine/instance.py): pure, no processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudlet.appengine.instance import (
    IllegalTransition,
    Instance,
    InstanceState,
    check_instance_transition,
)

S = InstanceState


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.STARTING, S.READY),
        (S.STARTING, S.STOPPING),
        (S.STARTING, S.STOPPED),  # exited before it answered
        (S.READY, S.STOPPING),
        (S.READY, S.STOPPED),  # crashed
        (S.STOPPING, S.STOPPED),
        (S.STOPPING, S.STOPPING),  # a second SIGTERM
        (S.STOPPED, S.STOPPED),  # a second reap
    ],
)
def test_allowed_moves(current: InstanceState, new: InstanceState) -> None:
    assert check_instance_transition(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.READY, S.STARTING),
        (S.STOPPING, S.READY),  # a probe answering while the instance drains
        (S.STOPPING, S.STARTING),
        (S.STOPPED, S.READY),  # a restart is a new Instance
        (S.STOPPED, S.STARTING),
        (S.STOPPED, S.STOPPING),
    ],
)
def test_refused_moves(current: InstanceState, new: InstanceState) -> None:
    with pytest.raises(IllegalTransition, match=f"{current.name} cannot move to {new.name}"):
        check_instance_transition(current, new)


def test_move_to_returns_the_old_state_and_refuses_without_writing(tmp_path: Path) -> None:
    version: Any = object()  # move_to never reads it
    instance = Instance(version, tmp_path / "log", tmp_path / "pid", port=1)
    assert instance.move_to(S.READY) is S.STARTING
    assert instance.move_to(S.STOPPED) is S.READY
    with pytest.raises(IllegalTransition):
        instance.move_to(S.READY)
    assert instance.state is S.STOPPED
