"""Fixtures of the auth tests: Chromium from the console tests, for sign-in pages."""

from __future__ import annotations

from tests.console.conftest import browser, tab

__all__ = ["browser", "tab"]
