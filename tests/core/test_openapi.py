"""`/api/v1/openapi.json` tells the truth: schemathesis finds no server error and no status code
the document does not declare, and OPTIONS and 405 list every method of a path."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloudlet.app.gateway import create_app
from cloudlet.core.settings import Settings
from cloudlet.testing import Gateway
from tests.asyncrun import run_async

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


@pytest.fixture(scope="module")
def conformance_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with Gateway.start(tmp_path_factory.mktemp("openapi")) as gw:
        yield gw


def _options(path: str) -> httpx.Response:
    app = create_app(Settings(data_dir="/nonexistent-openapi"))  # OPTIONS needs no start

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.options(path)

    return run_async(call())


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/v1/projects", "GET, HEAD, OPTIONS, POST"),
        ("/storage/v1/b/bkt", "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"),
        ("/storage/v1/b/bkt/o/dir/obj", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"),
    ],
)
def test_options_lists_every_method_of_the_path(path: str, allow: str) -> None:
    response = _options(path)
    assert response.status_code == 200
    assert response.headers["allow"] == allow


def test_a_405_lists_every_method_of_the_path(conformance_gateway: Gateway) -> None:
    response = httpx.request("TRACE", f"{conformance_gateway.url}/api/v1/projects")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert response.json()["error"]["code"] == 405


def test_the_document_declares_google_errors_and_every_path_parameter() -> None:
    schema = create_app(Settings(data_dir="/nonexistent-openapi")).openapi()
    operation = schema["paths"]["/storage/v1/b/{bucket}/o/{object}"]["get"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "path"} >= {"bucket", "object"}
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]  # the gateway answers 400
            assert "400" in operation["responses"]


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_undocumented_status(
    conformance_gateway: Gateway, tmp_path: Path
) -> None:
    """Every operation, through schemathesis's coverage phase and then its fuzzing for the
    rest of a bounded time (a fixed seed, so a failure reproduces with the printed command)."""
    result = subprocess.run(
        [SCHEMATHESIS, "run", f"{conformance_gateway.url}/api/v1/openapi.json",
         "--checks", "not_a_server_error,status_code_conformance,unsupported_method",
         "--phases", "coverage,fuzzing", "--max-examples", "3", "--max-time", "30",
         "--seed", "20261206", "--no-color"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,  # its .schemathesis cache
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", out)
    tested = re.search(r"Tested: (\d+)", out)
    assert selected and tested, out[-2000:]
    assert int(tested.group(1)) == int(selected.group(2)), out[-2000:]  # every operation
    summary = out.split("Test cases:")[-1]
    assert "failure" not in summary and "error" not in summary.split("=")[0], summary
