"""The subsystems of this gateway, in start order (stopped in reverse).

Storage starts before App Engine, whose start-up makes the applications' code buckets in it.
The order is also the order of the routers, the middleware (the last added runs first: Cloud
Storage's signed URLs, then IAM's bearer check) and the CLI's command groups.
"""

from __future__ import annotations

from cloudlet import appengine, dataflow, dataproc, iam, projects, storage
from cloudlet.core.subsystem import Subsystem

__all__ = ["SUBSYSTEMS", "console_sections"]

SUBSYSTEMS: tuple[Subsystem, ...] = (
    projects.SUBSYSTEM,
    iam.SUBSYSTEM,
    storage.SUBSYSTEM,
    appengine.SUBSYSTEM,
    dataflow.SUBSYSTEM,
    dataproc.SUBSYSTEM,
)


def console_sections(subsystems: tuple[Subsystem, ...] = SUBSYSTEMS) -> dict[str, str]:
    """The console's sections: subsystem name -> path prefix of its REST API."""
    return {s.name: s.console_prefix for s in subsystems if s.console_prefix}
