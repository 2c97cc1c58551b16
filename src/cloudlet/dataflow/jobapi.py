"""`python -m cloudlet.dataflow.jobapi`: the Beam Job API's process, the gateway's child.

jobservice.py is the server; this is its process: settings from the environment, the
database, the notification pipes to the gateway (runtime.py), and its exit with the gateway.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from cloudlet.core.paths import DataDir
from cloudlet.core.settings import Settings
from cloudlet.dataflow.jobservice import JobApiServer

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    """`python -m cloudlet.dataflow.jobapi [--notify-fds POKES,CHANGES]`: the Beam Job API
    as the gateway's child.

    It runs in its own process so that Beam, pyarrow and numpy (~200 MB) never load into the
    gateway. Settings come from the environment the gateway passes (Settings.as_env()). The
    gateway migrated the database already; this process only reads and writes rows. It exits
    on SIGTERM, and by itself when the gateway that started it is gone (even after kill -9:
    its parent changes, and the gateway's end of the notification pipe closes), so that a
    restarted gateway can bind the port again.

    With `--notify-fds` (runtime.py), it writes a byte to POKES when it has stored a job or a
    cancel, and reads CHANGES: each byte there wakes the job streams.
    """
    import os
    import signal
    import sys

    parent = os.getppid()  # first: the gateway may die while the rest starts up
    from cloudlet.core.db import open_database
    from cloudlet.core.settings import configure_logging

    settings = Settings.load()
    configure_logging(settings)
    data = DataDir(settings.root)
    db = open_database(settings.database_url, data.database, migrate=False)
    args = sys.argv[1:] if argv is None else argv
    pokes = changes = None
    if len(args) == 2 and args[0] == "--notify-fds":
        pokes, changes = (int(fd) for fd in args[1].split(","))
    server = JobApiServer(
        db,
        data,
        settings.host,
        settings.grpc_port,
        enforce_services=settings.enforce_services,
        prepare_timeout=settings.job_prepare_timeout,
        settings=settings,
        notify=_pipe_writer(pokes) if pokes is not None else None,
    )
    server.start()
    done = threading.Event()
    if changes is not None:
        threading.Thread(target=_read_changes, args=(changes, server, done), daemon=True,
                         name="beam-job-api-changes").start()  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(1.0):
        if os.getppid() != parent:
            logger.warning("the gateway (pid %s) is gone: stopping the Beam Job API", parent)
            break
    server.stop()
    db.dispose()


def _pipe_writer(fd: int) -> Callable[[], None]:
    import os

    os.set_blocking(fd, False)

    def write() -> None:
        with contextlib.suppress(BlockingIOError):  # full: the gateway has pokes pending
            os.write(fd, b"!")

    return write


def _read_changes(fd: int, server: JobApiServer, done: threading.Event) -> None:
    """Wake the streams for every byte the gateway writes. The pipe closes when the gateway
    is gone (even one killed before this process could note its pid) or gave up on this
    child: then stop."""
    import os

    try:
        while os.read(fd, 512):
            server.changed()
    except OSError:
        pass
    logger.warning("the gateway closed its notification pipe: stopping the Beam Job API")
    done.set()


if __name__ == "__main__":
    main()
