from __future__ import annotations

from pathlib import Path

import pytest

from cloudlet.cli.config import Config


def test_set_get_unset_roundtrip(tmp_path: Path) -> None:
    config = Config(tmp_path)
    assert config.set("project", "time-wsproj") == "core/project"
    assert Config(tmp_path).get("core/project") == "time-wsproj"
    assert config.set("compute/region", "us-central1") == "compute/region"
    assert Config(tmp_path).items() == {
        "core": {"project": "time-wsproj"},
        "compute": {"region": "us-central1"},
    }
    config.unset("project")
    assert Config(tmp_path).get("project") is None
    assert (tmp_path / "configurations" / "config_default").exists()


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Config(tmp_path).set("project", "from-file")
    monkeypatch.setenv("CLOUDLET_CORE_PROJECT", "from-env")
    assert Config(tmp_path).get("project") == "from-env"


@pytest.mark.parametrize("bad", ["core/nope", "nosection", "foo/bar"])
def test_unknown_properties_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(KeyError):
        Config(tmp_path).set(bad, "x")
