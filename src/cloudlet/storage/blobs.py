"""The blob store: object bytes in files named by generated ids, never by object name.

Layout under the data dir's `blobs/`:

    blobs/ab/ab12...ef     committed blobs (immutable once renamed into place)
    blobs/.tmp/            writes in progress (same filesystem, so rename is atomic)
    blobs/.uploads/        partial files of resumable upload sessions

A write streams into `.tmp/`, is fsynced and renamed into place, and only then does the caller
commit the metadata row that names it. A crash before the commit leaves an unreferenced blob,
which `sweep` removes at the next start; a crash before the rename leaves a temp file, likewise.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import google_crc32c

__all__ = ["BlobStore", "BlobWriter", "Digests", "new_id"]

logger = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
# md5 runs here while the writing thread writes and computes crc32c.
_HASHERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cloudlet-md5")


def new_id() -> str:
    return secrets.token_hex(16)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass
class Digests:
    """md5 and crc32c computed incrementally over a stream."""

    md5: Any = field(default_factory=hashlib.md5)
    crc: google_crc32c.Checksum = field(default_factory=google_crc32c.Checksum)
    size: int = 0

    def update(self, data: bytes | memoryview) -> None:
        self.md5.update(data)
        self.crc.update(bytes(data) if isinstance(data, memoryview) else data)  # type: ignore[no-untyped-call]
        self.size += len(data)

    @property
    def md5_b64(self) -> str:
        return b64(self.md5.digest())

    @property
    def crc32c_b64(self) -> str:
        return b64(self.crc.digest())  # type: ignore[no-untyped-call]


def _update_all(md5: Any, parts: list[bytes]) -> None:
    for part in parts:
        md5.update(part)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """A temp file being written, hashed as it goes; `commit` makes it a durable blob."""

    def __init__(self, store: BlobStore, path: Path, digests: Digests | None = None) -> None:
        self.store = store
        self.path = path
        self.digests = digests or Digests()
        self._file: BinaryIO | None = path.open("ab")

    def write(self, data: bytes | list[bytes]) -> None:
        """Append and hash: md5 (which releases the GIL) runs beside the write and crc32c.

        A list of pieces (as they came off the socket) is written as is, with no copy into
        one buffer first: at upload speeds the copies cost as much CPU as crc32c.
        """
        assert self._file is not None
        parts = [data] if isinstance(data, bytes) else data
        digests = self.digests
        md5 = _HASHERS.submit(_update_all, digests.md5, parts)
        try:
            self._file.writelines(parts)
            for part in parts:
                digests.crc.update(part)  # type: ignore[no-untyped-call]
                digests.size += len(part)
        finally:
            md5.result()

    def flush(self) -> None:
        """Make what was written so far durable (for resumable sessions between chunks)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def commit(self) -> str:
        """fsync, rename into place and return the new blob id (nothing references it yet)."""
        self.flush()
        self.close()
        blob_id = new_id()
        target = self.store.path(blob_id)
        target.parent.mkdir(exist_ok=True)
        os.replace(self.path, target)
        _fsync_dir(target.parent)
        return blob_id

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / ".tmp"
        self.uploads = root / ".uploads"

    def ensure(self) -> BlobStore:
        for path in (self.root, self.tmp, self.uploads):
            path.mkdir(parents=True, exist_ok=True)
        return self

    def path(self, blob_id: str) -> Path:
        # Ids are our own hex tokens; the check keeps any stray value from escaping the root.
        if not blob_id or not all(c in "0123456789abcdef" for c in blob_id):
            raise ValueError(f"not a blob id: {blob_id!r}")
        return self.root / blob_id[:2] / blob_id

    def writer(self) -> BlobWriter:
        path = self.tmp / new_id()
        path.touch()
        return BlobWriter(self, path)

    def upload_path(self, upload_id: str) -> Path:
        if not upload_id or not all(c in "0123456789abcdef" for c in upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.uploads / upload_id

    def resume_writer(self, upload_id: str, received: int, digests: Digests | None) -> BlobWriter:
        """A writer appending to a session's partial file at `received` bytes.

        Bytes past `received` (written before a crash, never acknowledged) are cut off. When
        the caller has no running digests (after a restart), they are rebuilt from the file.
        """
        path = self.upload_path(upload_id)
        with path.open("ab") as f:
            if f.tell() != received:
                f.truncate(received)
        if digests is None or digests.size != received:
            digests = Digests()
            for chunk in self.read(path, 0, received):
                digests.update(chunk)
        return BlobWriter(self, path, digests)

    def link_copy(self, blob_id: str) -> str:
        """A new blob with the same bytes: a hard link (blobs are immutable), else a copy."""
        source = self.path(blob_id)
        tmp = self.tmp / new_id()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        new = new_id()
        target = self.path(new)
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        return new

    def remove(self, blob_ids: Iterable[str]) -> None:
        for blob_id in blob_ids:
            try:
                self.path(blob_id).unlink(missing_ok=True)
            except OSError:  # swept at the next start
                logger.warning("could not remove blob %s", blob_id)

    @staticmethod
    def read(path: Path, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes [start, end) of a file, in bounded chunks."""
        with path.open("rb") as f:
            yield from read_open(f, start, end)

    def sweep(self, referenced: set[str], sessions: set[str]) -> int:
        """Remove temp files, unreferenced blobs and partial files of unknown sessions."""
        removed = 0
        for path in self.tmp.iterdir():
            path.unlink(missing_ok=True)
            removed += 1
        for path in self.uploads.iterdir():
            if path.name not in sessions:
                path.unlink(missing_ok=True)
                removed += 1
        for fan in self.root.iterdir():
            if fan.name.startswith(".") or not fan.is_dir():
                continue
            for path in fan.iterdir():
                if path.name not in referenced:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


def read_open(f: BinaryIO, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    f.seek(start)
    remaining = None if end is None else end - start
    while remaining is None or remaining > 0:
        chunk = f.read(READ_CHUNK if remaining is None else min(READ_CHUNK, remaining))
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk
