"""0007_iam_policies on a store made before policies: existing projects get the local owner.

Runs on SQLite, and on PostgreSQL when CLOUDLET_TEST_DATABASE_URL names a server."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from cloudlet.core.db import normalize_url


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    admin = os.environ.get("CLOUDLET_TEST_DATABASE_URL")
    if not admin:
        created = sa.create_engine(normalize_url("", tmp_path / "old.db"))
        yield created
        created.dispose()
        return
    server = sa.create_engine(normalize_url(admin, tmp_path), isolation_level="AUTOCOMMIT")
    name = "cloudlet_mig_" + uuid.uuid4().hex[:10]
    with server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    created = sa.create_engine(server.url.set(database=name))
    yield created
    created.dispose()
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


def _migrate(engine: sa.Engine, target: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", "cloudlet.core:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)


def test_existing_projects_are_owned_by_the_local_owner(engine: sa.Engine) -> None:
    _migrate(engine, "0006_dataflow_metrics")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO projects (project_id, project_number, name, labels, lifecycle_state, "
            "create_time) VALUES ('old-project', 123456789012, 'old', '{}', 'ACTIVE', :t)"),
            {"t": datetime(2026, 11, 1)})  # fmt: skip
    _migrate(engine, "0007_iam_policies")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT project_id, bindings FROM iam_project_policies"))
        found = {p: b if isinstance(b, list) else json.loads(b) for p, b in rows}
    assert found == {
        "old-project": [{"role": "roles/owner", "members": ["user:owner@cloudlet.localhost"]}]
    }
    _migrate(engine, "0006_dataflow_metrics", down=True)
    assert "iam_project_policies" not in sa.inspect(engine).get_table_names()
    _migrate(engine, "heads")
