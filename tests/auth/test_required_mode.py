"""Signing in where it is needed: a gateway with `--auth required`, from the CLI and the console.

Needs the `auth` setting (the authentication layer); skipped on a branch without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudlet.core.settings import SETTINGS
from cloudlet.testing import Gateway
from tests.conftest import make_cli
from tests.console.conftest import Tab

OWNER = "owner@cloudlet.localhost"
pytestmark = pytest.mark.skipif(
    "auth" not in {s.name for s in SETTINGS}, reason="no `auth` setting (authentication layer)"
)


@pytest.fixture(scope="module")
def required(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("required-auth")
    with Gateway.start(home / "cloudlet", env={"CLOUDLET_AUTH": "required"}) as gw:
        yield gw


def test_the_cli_signs_in_and_out(required: Gateway, tmp_path: Path) -> None:
    cli = make_cli(required.url, tmp_path / "config")
    anonymous = cli("projects", "list")
    assert anonymous.returncode == 1 and "missing required authentication" in anonymous.stderr
    password_file = required.data_dir / "owner-password"
    cli("auth", "login", OWNER, "--password-file", str(password_file), check=True)
    cli("projects", "create", "p-signed-in-1", check=True)
    assert "p-signed-in-1" in cli("projects", "list", check=True).stdout
    cli("auth", "revoke", check=True)  # /revoke answers without credentials
    assert cli("projects", "list").returncode == 1


def test_the_console_sends_visitors_to_sign_in(required: Gateway, tab: Tab) -> None:
    page = tab.page
    page.goto(required.url + "/console")
    page.get_by_role("link", name="Sign in").first.click()
    page.wait_for_url("**/console/signin**")
    page.get_by_label("Email").fill(OWNER)
    password = (required.data_dir / "owner-password").read_text().strip()
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/console")
    viewer = " ".join(page.locator("[data-role=viewer]").inner_text().split())
    assert viewer == f"Signed in as {OWNER}"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/signin")
