"""Browser fixtures: Debian's Chromium driven by Playwright against a real gateway.

One browser per test session (per xdist worker); each test gets a fresh context and page.
The fixtures are registered once, by the root conftest: Playwright's sync API cannot run two
instances in one process, so no other conftest may register `browser` again.
Every page blocks and records requests that would leave the machine (acceptance: the console
works offline), and fails the test on an uncaught script error.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright import sync_api as playwright_sync

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots go to a temp dir, or to CLOUDLET_SCREENSHOT_DIR (docs/console refreshes the docs'
# pictures: `CLOUDLET_SCREENSHOT_DIR=docs/console uv run pytest tests/console`).
SCREENSHOTS = Path(
    os.environ.get("CLOUDLET_SCREENSHOT_DIR")
    or Path(tempfile.gettempdir()) / "cloudlet-console-screenshots"
)
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """A page plus what it tried to do that it should not have."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.offsite: list[str] = []
        self.errors: list[str] = []
        self.broken: list[str] = []  # console assets that failed to load


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1366, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    tab = Tab(page)

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            tab.offsite.append(url)
            route.abort()

    context.route("**/*", guard)
    page.on("pageerror", lambda exc: tab.errors.append(str(exc)))

    def check_asset(response: Any) -> None:
        if "/console/static/" in response.url and response.status >= 400:
            tab.broken.append(f"{response.status} {response.url}")

    page.on("response", check_asset)
    try:
        yield tab
    finally:
        context.close()
    assert tab.offsite == [], f"the console asked for off-machine URLs: {tab.offsite}"
    assert tab.errors == [], f"uncaught script errors in the page: {tab.errors}"
    assert tab.broken == [], f"console assets failed to load: {tab.broken}"


def check_accessibility(page: Any) -> None:
    """Smoke check: landmarks, labelled controls, alt texts, heading order."""
    problems = page.evaluate(
        """() => {
        const out = [];
        for (const tag of ["header", "nav", "main"])
            if (!document.querySelector(tag)) out.push(`no <${tag}> landmark`);
        const controls = document.querySelectorAll(
            "input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea");
        for (const el of controls) {
            const labelled = (el.labels && el.labels.length) || el.getAttribute("aria-label")
                || el.getAttribute("aria-labelledby");
            if (!labelled) out.push(`unlabelled control ${el.outerHTML.slice(0, 80)}`);
        }
        for (const el of document.querySelectorAll("button")) {
            const name = (el.textContent || "").trim() || el.getAttribute("aria-label")
                || el.getAttribute("title");
            if (!name) out.push(`button without a name ${el.outerHTML.slice(0, 80)}`);
        }
        for (const img of document.querySelectorAll("img"))
            if (!img.hasAttribute("alt")) out.push(`img without alt ${img.src}`);
        const levels = [...document.querySelectorAll("h1,h2,h3,h4,h5,h6")].map(h => +h.tagName[1]);
        if (levels.filter(l => l === 1).length !== 1) out.push(`expected one h1, got ${levels}`);
        let previous = 0;
        for (const level of levels) {
            if (level > previous + 1) out.push(`heading jumps from h${previous} to h${level}`);
            previous = level;
        }
        return out;
    }"""
    )
    assert problems == [], problems


def screenshot(page: Any, name: str) -> None:
    """Save a screenshot for docs/console.md."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)
