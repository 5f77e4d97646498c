"""Headless Chromium (Debian's package, driven by Playwright) for the dashboard's browser tests.

Tests that take the ``page`` or ``browser`` fixture are skipped when /usr/bin/chromium is missing,
unless STORELOOP_REQUIRE_CHROMIUM=1 (CI) makes that an error. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("STORELOOP_REQUIRE_CHROMIUM") == "1":
        raise RuntimeError("STORELOOP_REQUIRE_CHROMIUM=1 but /usr/bin/chromium is missing")
    pytest.skip("Chromium is not installed (./dev test installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


def open_page(browser: Browser, viewport: dict[str, int]) -> Iterator[Page]:
    """A page in a fresh context; script errors and Content-Security-Policy violations fail the
    test. A page answered with a 4xx on purpose (a refused sign-in) is not an error of the page."""
    from playwright.sync_api import ConsoleMessage

    context = browser.new_context(viewport=viewport, accept_downloads=True)  # type: ignore[arg-type]
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", on_console)
    yield page
    context.close()
    assert errors == [], errors


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A phone-sized page (390 x 844)."""
    yield from open_page(browser, PHONE)


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    yield from open_page(browser, DESKTOP)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
