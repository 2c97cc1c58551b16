"""Helpers for Dataflow tests: projects with the API enabled, pipeline subprocesses, polling."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from cloudlet.testing import Gateway

PIPELINES = Path(__file__).parent / "pipelines"
# A sitecustomize that makes a driver's exit race its open gRPC streams (see its docstring).
EXIT_RACE = Path(__file__).parent / "exit_race"
DATAFLOW = "dataflow.googleapis.com"
# The local package pipelines/metered.py imports, shipped with --extra_package/--setup_file.
SHOUT = "def shout(word):\n    return word.upper() + '!'\n"


def make_project(api: httpx.Client, project_id: str, *, enable: bool = True) -> str:
    api.post("/api/v1/projects", json={"projectId": project_id}).raise_for_status()
    if enable:
        api.post(f"/api/v1/projects/{project_id}/services/{DATAFLOW}:enable").raise_for_status()
    return project_id


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment for a pipeline driver, as a user's shell would have."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update(extra)
    return env


def exit_race_env() -> dict[str, str]:
    """A driver's environment with EXIT_RACE's sitecustomize loaded at start-up."""
    return clean_env(PYTHONPATH=str(EXIT_RACE))


def portable_args(gateway: Gateway, project: str, job_name: str) -> list[str]:
    return [
        "--runner", "PortableRunner",
        "--job_endpoint", f"localhost:{gateway.grpc_port}",
        "--project", project,
        "--region", "us-central1",
        "--job_name", job_name,
    ]  # fmt: skip


def run_pipeline(script: str, args: list[str], cwd: Path, timeout: float = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, str(PIPELINES / script), *args],
        cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def start_pipeline(script: str, args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, str(PIPELINES / script), *args],
            cwd=cwd, env=clean_env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def jobs(api: httpx.Client, project: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1b3/projects/{project}/jobs:aggregated")
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json().get("jobs", [])
    return result


def job_by_name(api: httpx.Client, project: str, name: str) -> dict[str, Any] | None:
    return next((j for j in jobs(api, project) if j["name"] == name), None)


def wait_for(check: Callable[[], Any], timeout: float = 240, every: float = 0.5,
             what: str = "condition") -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def messages(
    api: httpx.Client, job: dict[str, Any], minimum: str = "JOB_MESSAGE_DEBUG"
) -> list[str]:
    r = api.get(
        f"/v1b3/projects/{job['projectId']}/locations/{job['location']}/jobs/{job['id']}/messages",
        params={"minimumImportance": minimum},
    )
    r.raise_for_status()
    return [m["messageText"] for m in r.json().get("jobMessages", [])]


def step_counts(api: httpx.Client, job: dict[str, Any]) -> dict[str, int]:
    r = api.get(
        f"/v1b3/projects/{job['projectId']}/locations/{job['location']}/jobs/{job['id']}/metrics"
    )
    r.raise_for_status()
    return {
        m["name"]["context"]["output_user_name"]: m["scalar"]
        for m in r.json()["metrics"]
        if m["name"]["name"] == "ElementCount"
    }


def make_wheel(where: Path, *, corrupt: bool = False) -> Path:
    """A pure-Python wheel of the `shout` package, written by hand (no build backend)."""
    wheel = where / "shout-1.0-py3-none-any.whl"
    if corrupt:
        wheel.write_bytes(b"this is not a zip archive")
        return wheel
    info = "shout-1.0.dist-info"
    files = {
        "shout/__init__.py": SHOUT,
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: shout\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: cloudlet-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return wheel


def seed_setup(cli: Callable[..., Any], project: str, bucket: str, account: str,
               key: Path) -> None:  # fmt: skip
    """The chapter's set-up through the real CLI: the project, its APIs, a bucket, and a
    service account, an editor of the project, whose key file is written to `key`."""
    cli("projects", "create", project, check=True)
    for service in ("dataflow", "storage", "iam"):
        cli("services", "enable", f"{service}.googleapis.com", "--project", project,
            check=True)  # fmt: skip
    cli("storage", "buckets", "create", f"gs://{bucket}", "--project", project, check=True)
    cli("iam", "service-accounts", "create", account, "--project", project, check=True)
    cli("iam", "service-accounts", "keys", "create", str(key), "--iam-account",
        f"{account}@{project}.iam.gserviceaccount.com", "--project", project,
        check=True)  # fmt: skip
    # A new service account has no role, as on Google Cloud: the seed makes it an editor.
    cli("projects", "add-iam-policy-binding", project, "--member",
        f"serviceAccount:{account}@{project}.iam.gserviceaccount.com", "--role", "roles/editor",
        check=True)  # fmt: skip
