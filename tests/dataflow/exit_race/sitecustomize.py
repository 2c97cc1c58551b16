"""Makes a Beam driver's exit race its gRPC streams on purpose (on PYTHONPATH: the driver's
interpreter imports it at start-up).

gRPC's channel thread is a daemon. If the end of a stream reaches a driver while its interpreter
starts to finalize, that thread can be frozen while it holds the stream's lock, and the main thread
then blocks forever in grpc._channel._Rendezvous.__del__, which takes the same lock: the driver
has printed its error and never exits. Left to chance this is rare (seen once in CI). Here the
driver's last exit handler waits, while any stream is still open, until the channel thread is
inside a stream's lock, and then lets the interpreter finalize. A job service that ends a
refused job's streams before it answers Run leaves no stream open by then, and the driver exits.
"""

import atexit
import gc
import sys
import time

sys.setswitchinterval(1e-6)  # hand the GIL over often, so the channel thread is caught mid-lock


def _finalize_while_a_stream_ends() -> None:
    from grpc._channel import _MultiThreadedRendezvous

    streams = [o for o in gc.get_objects() if isinstance(o, _MultiThreadedRendezvous)]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pending = [s for s in streams if s._state.code is None]
        if not pending:
            return
        for stream in pending:
            lock = stream._state.condition
            if not lock.acquire(blocking=False):
                return  # at once: any I/O here would hand the GIL back to the channel thread
            lock.release()


atexit.register(_finalize_while_a_stream_ends)  # registered first, so it runs last
