"""The executor: one process (and process group) per job, started by the supervisor.

    python -m cloudlet.dataflow.executor JOB_DIR

It prepares the job's environment, hands the pipeline to the engine named in spec.json, and
reports through the job dir (see files.py): messages, element counts, then result.json with
the terminal state. Its SDK workers are its children in the same process group, so the
supervisor stops the whole job with one killpg.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from cloudlet.core.times import now_rfc3339
from cloudlet.dataflow.engine import EngineRun, load_engine
from cloudlet.dataflow.environments import Dependencies, EnvironmentError_, prepare_environment
from cloudlet.dataflow.files import JobFiles, append_json_line, read_json, write_json
from cloudlet.dataflow.states import MessageImportance

__all__ = ["leave", "main"]

logger = logging.getLogger("cloudlet.dataflow.executor")

_IN_ENV = "CLOUDLET_EXECUTOR_IN_JOB_ENV"  # set when the executor re-ran itself in the job's venv

# Beam's chatter that says nothing to a user about their job.
_NOISE = ("No semi_persistent_directory found", "Discarding unparseable args")


def _now() -> str:
    return now_rfc3339("microseconds")  # the job files' times, as the Dataflow API shows them


class FileReporter:
    """The executor's Reporter: job messages and counts go to files in the job dir."""

    def __init__(self, files: JobFiles) -> None:
        self.files = files

    def counts(self, counts: Mapping[str, int], metrics: Mapping[str, Any] | None = None) -> None:
        data: dict[str, Any] = {"time": _now(), "counts": dict(counts)}
        if metrics is not None:
            data["metrics"] = dict(metrics)
        write_json(self.files.counts, data)

    def message(self, importance: str, text: str) -> None:
        append_json_line(
            self.files.messages,
            {"time": _now(), "importance": importance, "text": text},
        )

    def engine(self, name: str, fallback: str | None = None) -> None:
        write_json(self.files.engine, {"engine": name, "fallback": fallback})

    def abort(self, text: str) -> None:
        self.message("JOB_MESSAGE_ERROR", text)
        write_json(self.files.result, {"state": "JOB_STATE_FAILED", "time": _now()})
        logging.shutdown()
        os._exit(1)  # the supervisor stops whatever is left of the process group


class _MessageHandler(logging.Handler):
    def __init__(self, reporter: FileReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if any(n in text for n in _NOISE):
                return
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            importance = MessageImportance.from_log_level(record.levelno).name
            self.reporter.message(importance, text)
        except Exception:  # a logging handler must never raise
            self.handleError(record)


def run(files: JobFiles) -> int:
    from apache_beam.portability.api import beam_runner_api_pb2

    reporter = FileReporter(files)
    spec: dict[str, Any] = read_json(files.spec) or {}
    handler = _MessageHandler(reporter)
    handler.setLevel(logging.INFO)
    logging.getLogger("cloudlet").addHandler(handler)
    beam_handler = _MessageHandler(reporter)
    beam_handler.setLevel(logging.WARNING)
    logging.getLogger("apache_beam").addHandler(beam_handler)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    files.work.mkdir(exist_ok=True)
    try:
        deps = Dependencies(
            requirements=Path(spec["requirements"]) if spec.get("requirements") else None,
            packages=tuple(Path(p) for p in spec.get("packages", [])),
        )
        # In a sandbox (core/sandbox.py) the data dir's venvs/ is out of reach: the job's
        # project has a venvs dir of its own.
        venvs = Path(os.environ.get("CLOUDLET_JOB_VENVS") or spec["venvs"])
        if os.environ.get(_IN_ENV) == "1":  # the executor again, in the job's environment
            python = Path(sys.executable)
        else:
            python, _cached = prepare_environment(deps, venvs, reporter.message)
            if spec.get("engine") == "native" and not _same_interpreter(python):
                _in_environment(python, files)
        pipeline = beam_runner_api_pb2.Pipeline.FromString(files.pipeline.read_bytes())
        engine = load_engine(spec.get("engine", "fnapi"))
        workers = int(spec.get("workers") or os.cpu_count() or 1)
        write_json(files.started, {"time": _now(), "pid": os.getpid()})
        reporter.message(
            "JOB_MESSAGE_BASIC",
            f"Starting the pipeline on the {engine.name} engine with {workers} worker "
            f"process{'es' if workers != 1 else ''}.",
        )
        started = time.monotonic()
        engine.run(
            EngineRun(
                pipeline=pipeline,
                options=spec.get("options", {}),
                workers=workers,
                python=python,
                work_dir=files.work,
                extra={"spark": spec["spark"]} if spec.get("spark") else {},
            ),
            reporter,
        )
    except EnvironmentError_ as exc:
        reporter.message("JOB_MESSAGE_ERROR", str(exc))
        write_json(files.result, {"state": "JOB_STATE_FAILED", "time": _now()})
        return 1
    except Exception as exc:
        reporter.message(
            "JOB_MESSAGE_ERROR",
            "Workflow failed. The pipeline raised an error:\n"
            + _user_traceback(exc)
            + "\nFix the pipeline and resubmit the job.",
        )
        write_json(files.result, {"state": "JOB_STATE_FAILED", "time": _now()})
        return 1
    reporter.message(
        "JOB_MESSAGE_BASIC", f"Workflow succeeded in {time.monotonic() - started:.1f} s."
    )
    write_json(files.result, {"state": "JOB_STATE_DONE", "time": _now()})
    return 0


def _same_interpreter(python: Path) -> bool:
    # A venv's python is a symlink to the same binary: compare the paths, not the files.
    return os.path.abspath(python) == os.path.abspath(sys.executable)


def _in_environment(python: Path, files: JobFiles) -> None:
    """Become the executor again on the job's own interpreter (its venv, which sees the
    gateway's packages after its own): the native engine runs the DoFns in this process, and
    they need the venv's packages. Same pid, same files, same process group; never returns."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, _IN_ENV: "1"}
    os.execve(python, [str(python), "-m", "cloudlet.dataflow.executor", str(files.root)], env)


def _user_traceback(exc: BaseException) -> str:
    """The SDK worker's traceback (in the error text) when there is one, else ours."""
    text = str(exc)
    if "Traceback (most recent call last)" in text:
        return text
    return "".join(traceback.format_exception(exc))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cloudlet.dataflow.executor JOB_DIR", file=sys.stderr)
        return 2
    return run(JobFiles(Path(args[0])))


def leave(code: int) -> NoReturn:
    """Exit with `code` once the job's end is in result.json (or it never started), without
    the interpreter's teardown (collecting the engine's heap and Beam's modules took ~0.7 s of
    a wordcount's end), which the job's end in the store would wait for. The supervisor stops
    whatever is left of the process group, as after any exit."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main())
