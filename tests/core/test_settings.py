from __future__ import annotations

import dataclasses
from pathlib import Path

from cloudlet.core.settings import SETTINGS, Settings, markdown_table

ROOT = Path(__file__).resolve().parents[2]


def test_docs_page_is_generated_from_the_table() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == markdown_table(), (
        "docs/configuration.md drifted: run `python -m cloudlet.core.settings > "
        "docs/configuration.md`"
    )


def test_settings_dataclass_matches_the_table() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert fields == {s.name: s.default for s in SETTINGS}
    for s in SETTINGS:
        assert s.env.startswith("CLOUDLET_") and s.help.endswith(".")


def test_precedence_flag_over_env_over_default() -> None:
    env = {"CLOUDLET_PORT": "9000", "CLOUDLET_HOME": "/tmp/x", "CLOUDLET_ENFORCE_SERVICES": "0"}
    assert Settings.load({}, env).port == 9000
    assert Settings.load({"port": 9001}, env).port == 9001
    assert Settings.load({}, {}).port == 8080
    assert Settings.load({}, env).root == Path("/tmp/x")
    assert Settings.load({}, env).enforce_services is False


def test_serve_help_lists_every_setting(cli) -> None:
    out = cli("serve", "--help", check=True).stdout
    for s in SETTINGS:
        assert s.flag in out
        assert s.env in out
