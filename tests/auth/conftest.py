"""The auth tests use the root conftest's Chromium fixtures (tests/browser.py)."""
