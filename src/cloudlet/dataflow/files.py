"""The files through which a job's executor and the gateway's supervisor talk.

The executor never touches the metadata database: it writes its progress into its job dir and
the supervisor copies it into the job store. That keeps engines free of our schema, and lets
a restarted gateway pick up where an executor has got to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "JobFiles",
    "append_json_line",
    "read_json",
    "write_json",
]


@dataclass(frozen=True)
class JobFiles:
    root: Path

    @property
    def pipeline(self) -> Path:  # the Beam pipeline proto, serialized
        return self.root / "pipeline.pb"

    @property
    def spec(self) -> Path:  # what to run: engine, workers, options, dependencies
        return self.root / "spec.json"

    @property
    def artifacts(self) -> Path:  # staged dependencies (requirements.txt, packages)
        return self.root / "artifacts"

    @property
    def messages(self) -> Path:  # JSON lines: time, importance, text
        return self.root / "messages.jsonl"

    @property
    def counts(self) -> Path:  # latest element counts per PCollection, and other metrics
        return self.root / "counts.json"

    @property
    def started(self) -> Path:  # written when the engine starts: the job is RUNNING
        return self.root / "started.json"

    @property
    def engine(self) -> Path:  # the engine the job runs on, and why when not the one asked for
        return self.root / "engine.json"

    @property
    def result(self) -> Path:  # written last: the terminal state the executor reached
        return self.root / "result.json"

    @property
    def log(self) -> Path:  # stdout/stderr of the executor and its SDK workers
        return self.root / "executor.log"

    @property
    def work(self) -> Path:
        return self.root / "work"


def write_json(path: Path, data: Any) -> None:
    """Replace `path` atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None. Never through a symbolic link: a job's own code can
    write its dir, and must not make the gateway read (and show) another file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return json.loads(f.read(64 * 1024 * 1024))
    except (OSError, ValueError):
        return None


def append_json_line(path: Path, data: Any) -> None:
    line = (json.dumps(data) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of a whole line: readers never see a torn line
    finally:
        os.close(fd)
