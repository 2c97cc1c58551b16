"""The composition root: where cloudlet's parts are put together, above every subsystem.

- `subsystems.SUBSYSTEMS`: the tuple of every subsystem's record (core/subsystem.py), which the
  three assemblies below iterate;
- `gateway.create_app`: the ASGI app (routers, middleware, lifespan, error bodies);
- `server`: running it (`cloudlet serve`, the daemon's `start`/`stop`/`status`);
- `models.metadata`: every subsystem's tables, for the migrations;
- `cli.main`: the `cloudlet` command (`python -m cloudlet`, the console script).

Nothing below this package imports it (tests/test_layering.py). See docs/architecture.md.
"""

from __future__ import annotations

__all__: list[str] = []
