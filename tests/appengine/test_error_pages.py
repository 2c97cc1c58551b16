"""error_handlers: the pages a version offers for the errors the router answers itself."""

from __future__ import annotations

from pathlib import Path

from cloudlet.appengine.appyaml import parse_app_yaml
from cloudlet.appengine.supervisor import VersionRuntime

APP_YAML = """\
runtime: python311
error_handlers:
- file: errors/default.html
- error_code: timeout
  file: errors/timeout.html
- error_code: over_quota
  file: errors/missing.html
- error_code: dos_api_denial
  file: ../outside.html
"""


def version_from(source: Path, app_yaml: str) -> VersionRuntime:
    app = parse_app_yaml(app_yaml)
    return VersionRuntime("p", "default", "v1", app, source, source / "venv", "d1")


def test_error_pages_by_code_with_the_default_as_fallback(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "errors").mkdir(parents=True)
    (source / "errors" / "default.html").write_text("<h1>Sorry</h1>")
    (source / "errors" / "timeout.html").write_text("<h1>Too slow</h1>")
    (tmp_path / "outside.html").write_text("not part of the app")
    version = version_from(source, APP_YAML)
    assert version.error_page("timeout") == (b"<h1>Too slow</h1>", "text/html; charset=utf-8")
    assert version.error_page("default") == (b"<h1>Sorry</h1>", "text/html; charset=utf-8")
    # A missing file, or one outside the source, falls back to the default page.
    assert version.error_page("over_quota") == (b"<h1>Sorry</h1>", "text/html; charset=utf-8")
    assert version.error_page("dos_api_denial") == (b"<h1>Sorry</h1>", "text/html; charset=utf-8")


def test_no_default_page_means_the_routers_own_message(tmp_path: Path) -> None:
    assert version_from(tmp_path, "runtime: python311\n").error_page("default") is None
    (tmp_path / "late.txt").write_text("late")
    only_timeout = version_from(
        tmp_path, "runtime: python311\nerror_handlers:\n- error_code: timeout\n  file: late.txt\n"
    )
    assert only_timeout.error_page("timeout") == (b"late", "text/plain; charset=utf-8")
    assert only_timeout.error_page("default") is None
    assert only_timeout.error_page("over_quota") is None
