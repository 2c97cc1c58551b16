"""Every path of the data dir, derived from one root in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DataDir", "tail", "write_atomic"]


def tail(path: Path, lines: int = 25) -> str:
    """The last `lines` lines of a log file (read from its last 64 KiB), or "(no log)"."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def write_atomic(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Replace `path` with `data` in one step (a temporary file, then a rename), so a reader or
    a crash never sees half a file. `private`: readable by the owner only (keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "cloudlet.db"

    @property
    def pid_file(self) -> Path:
        return self.root / "gateway.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def gateway_log(self) -> Path:
        return self.logs / "gateway.log"

    @property
    def owner_password(self) -> Path:
        """The local owner's first password (mode 0600), written at first start (iam/users.py)."""
        return self.root / "owner-password"

    @property
    def tls(self) -> Path:
        """The gateway's own certificate and local CA for its HTTPS port (core/tls.py)."""
        return self.root / "tls"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def apps(self) -> Path:
        return self.root / "apps"

    @property
    def builds(self) -> Path:
        return self.root / "builds"

    @property
    def venvs(self) -> Path:
        return self.root / "venvs"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def ensure(self) -> DataDir:
        for path in (self.root, self.logs, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
        return self
