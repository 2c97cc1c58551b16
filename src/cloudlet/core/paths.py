"""Every path of the data dir, derived from one root in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DataDir"]


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
