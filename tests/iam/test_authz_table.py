"""Every route of the gateway declares what it needs (cloudlet.core.authz), in-process."""

from __future__ import annotations

from fastapi import FastAPI

from cloudlet.app.gateway import create_app
from cloudlet.core.authz import iter_declared_routes
from cloudlet.core.settings import Settings


def _undeclared(app: FastAPI) -> list[str]:
    return [f"{m} {p}" for m, p, d in iter_declared_routes(app) if d is None]


def _app(tmp_path: object) -> FastAPI:
    return create_app(Settings(data_dir=str(tmp_path)))  # not started: routes only


def test_every_route_declares_a_permission_or_that_it_is_public(tmp_path: object) -> None:
    app = _app(tmp_path)
    assert _undeclared(app) == []
    declared = {p: d for _, p, d in iter_declared_routes(app)}
    assert declared["/storage/v1/b/{bucket}/o"] is not None
    assert declared["/storage/v1/b/{bucket}/o"].permissions == ("storage.objects.list",)
    assert declared["/api/v1/status"] is not None and declared["/api/v1/status"].public
    assert declared["/token"] is not None and declared["/token"].public


def test_a_route_without_a_declaration_fails_the_table(tmp_path: object) -> None:
    app = _app(tmp_path)

    @app.get("/api/v1/projects/{project}/secrets")
    def undeclared(project: str) -> dict[str, str]:
        return {}

    assert _undeclared(app) == ["GET /api/v1/projects/{project}/secrets"]


def test_no_public_route_changes_state_but_sign_in_tokens_and_uploads(
    tmp_path: object,
) -> None:
    """A public declaration on a route that writes is a decision worth seeing in review."""
    writes = sorted(
        f"{m} {p}"
        for m, p, d in iter_declared_routes(_app(tmp_path))
        if d is not None and d.public and set(m.split(",")) & {"POST", "PUT", "PATCH", "DELETE"}
    )
    assert writes == [
        "DELETE /resumable/upload/storage/v1/b/{bucket}/o",
        "DELETE /upload/storage/v1/b/{bucket}/o",
        "GET,POST /tokeninfo",
        "POST /api/v1/sessions",
        "POST /batch/storage/v1",
        "POST /console/signin",
        "POST /revoke",
        "POST /token",
        "PUT /resumable/upload/storage/v1/b/{bucket}/o",
        "PUT /upload/storage/v1/b/{bucket}/o",
    ]


def test_docs_show_the_current_table(tmp_path: object) -> None:
    """docs/iam.md's route table is generated: regenerate it with permission_table."""
    from pathlib import Path

    from cloudlet.core.authz import permission_table

    docs = (Path(__file__).parents[2] / "docs" / "iam.md").read_text()
    start = docs.index("<!-- permission-table")
    shown = docs[docs.index("\n", start) + 1 : docs.index("<!-- /permission-table -->")]
    assert shown == permission_table(_app(tmp_path))
