"""FastAPI dependencies shared by every subsystem's routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from cloudlet.core.db import Database
from cloudlet.core.settings import Settings
from cloudlet.core.state import GatewayState, gateway_state

__all__ = [
    "DbSession",
    "SettingsDep",
    "StateDep",
    "get_database",
    "get_session",
    "get_settings",
    "get_state",
]


def get_state(request: Request) -> GatewayState:
    return gateway_state(request)


def get_settings(request: Request) -> Settings:
    return gateway_state(request).settings


def get_database(request: Request) -> Database:
    return gateway_state(request).db


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on error."""
    with get_database(request).session() as session:
        yield session


# scope="function": commit before the response is sent, so that a client told "success" can
# never see its write missing (FastAPI's default runs the exit code after the response).
DbSession = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[GatewayState, Depends(get_state)]
