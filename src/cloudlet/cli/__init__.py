"""The CLI toolkit every subsystem's commands use: the gateway client and CLI state
(`context`), output formats (`output`), properties (`config`), and the client-side commands
(`components`, `clientenv`). The `cloudlet` command itself is assembled in cloudlet.app.cli."""

from __future__ import annotations

__all__: list[str] = []
