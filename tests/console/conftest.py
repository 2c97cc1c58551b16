"""The console tests' browser helpers (the fixtures themselves are the root conftest's)."""

from __future__ import annotations

from tests.browser import CHROMIUM, Tab, check_accessibility, screenshot

__all__ = ["CHROMIUM", "Tab", "check_accessibility", "screenshot"]
