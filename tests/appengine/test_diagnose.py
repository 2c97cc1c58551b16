"""The one-line hint for an instance that fails at import (the deploy test in test_failures.py
runs the chapter's real Flask 2.0.1 case end to end)."""

from __future__ import annotations

from pathlib import Path

from cloudlet.appengine.diagnose import import_failure_hint

SITE = "/v/lib/python3.11/site-packages"


def log(*frames: str, error: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for path in frames:
        lines += [f'  File "{path}", line 1, in <module>', "    import something"]
    lines.append(error)
    return "\n".join(f"2026-12-06T05:38:42.562855Z stderr {line}" for line in lines)


def test_the_apps_own_failure_gets_no_hint() -> None:
    text = log("/srv/app/main.py", error="ValueError: boom at import")
    assert import_failure_hint(text, None) is None
    assert import_failure_hint("no traceback here", None) is None


def test_a_dependency_named_by_the_error_is_the_one_to_pin(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    for dist in ("flask-2.0.1", "werkzeug-3.1.9"):
        (site / f"{dist}.dist-info").mkdir(parents=True)
    text = log("/srv/app/main.py", f"{SITE}/flask/__init__.py", f"{SITE}/flask/helpers.py",
               error="ImportError: cannot import name 'url_quote' from 'werkzeug.urls' (x.py)")  # fmt: skip
    hint = import_failure_hint(text, tmp_path)
    assert hint is not None and "\n" not in hint
    assert "installed package flask 2.0.1" in hint and "`werkzeug<3`" in hint


def test_a_failure_inside_a_package_without_a_named_dependency() -> None:
    text = log("/srv/app/main.py", f"{SITE}/six.py", error="TypeError: bad")
    hint = import_failure_hint(text, None)
    assert hint is not None and "installed package six" in hint
