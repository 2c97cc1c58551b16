"""A null GCS server: the client's own ceiling on this machine, for bench/storage.py.

It speaks just enough of the JSON API for `upload_from_filename` (a resumable upload in chunks)
and `download_to_filename` (alt=media) and does nothing else: uploads are counted and
checksummed (the client checks crc32c) but never stored, downloads are zeros from memory.
Whatever throughput the real client reaches against it is the most any server could give it.

    python bench/null_gcs.py PORT
"""

from __future__ import annotations

import base64
import json
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google_crc32c

MiB = 1024 * 1024
ZEROS = bytes(MiB)
_sessions: dict[str, google_crc32c.Checksum] = {}
_zero_crc: dict[int, str] = {}


def _zero_crc32c(size: int) -> str:
    if size not in _zero_crc:
        crc = google_crc32c.Checksum()
        for _ in range(size // MiB):
            crc.update(ZEROS)
        crc.update(ZEROS[: size % MiB])
        _zero_crc[size] = base64.b64encode(crc.digest()).decode()
    return _zero_crc[size]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drain(self, crc: google_crc32c.Checksum | None) -> int:
        left = int(self.headers.get("Content-Length") or 0)
        buf = bytearray(MiB)
        view = memoryview(buf)
        total = left
        while left:
            n = self.rfile.readinto(view[: min(MiB, left)])
            if not n:
                break
            if crc is not None:
                crc.update(bytes(view[:n]))
            left -= n
        return total

    def do_POST(self) -> None:
        self._drain(None)
        upload_id = uuid.uuid4().hex
        _sessions[upload_id] = google_crc32c.Checksum()
        host = self.headers["Host"]
        location = f"http://{host}{self.path}&upload_id={upload_id}"
        self._reply(200, headers={"Location": location})

    def do_PUT(self) -> None:
        upload_id = self.path.rsplit("upload_id=", 1)[-1]
        crc = _sessions[upload_id]
        self._drain(crc)
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", self.headers.get("Content-Range", ""))
        assert match, self.headers.get("Content-Range")
        last, total = int(match[2]), match[3]
        if total != "*" and last + 1 == int(total):
            resource = {"kind": "storage#object", "name": "big.bin", "bucket": "bench",
                        "size": total, "generation": "1", "metageneration": "1",
                        "crc32c": base64.b64encode(crc.digest()).decode()}  # fmt: skip
            self._reply(200, json.dumps(resource).encode(), {"Content-Type": "application/json"})
        else:
            self._reply(308, headers={"Range": f"bytes=0-{last}"})

    def do_GET(self) -> None:
        size = int(self.server.download_size)  # type: ignore[attr-defined]
        if "alt=media" not in self.path:  # metadata (the client looks its bucket up aside)
            resource = {"kind": "storage#bucket", "name": "bench", "location": "US"}
            self._reply(200, json.dumps(resource).encode(), {"Content-Type": "application/json"})
            return
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("x-goog-hash", f"crc32c={_zero_crc32c(size)}")
        self.send_header("x-goog-generation", "1")
        self.send_header("x-goog-stored-content-encoding", "identity")
        self.send_header("x-goog-stored-content-length", str(size))
        self.end_headers()
        left = size
        while left:
            n = min(MiB, left)
            self.wfile.write(ZEROS[:n])
            left -= n


def main() -> None:
    port, size = int(sys.argv[1]), int(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.download_size = size  # type: ignore[attr-defined]
    _zero_crc32c(size)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
