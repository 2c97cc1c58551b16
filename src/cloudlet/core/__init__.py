"""The ground every subsystem stands on: settings, data dir, database, errors, operations, the
gateway's typed state and the subsystem record. It imports no subsystem (tests/test_layering.py)."""

from __future__ import annotations

__all__: list[str] = []
